"""The orchestrator's side of the client processes (``benchlib.clientproc``)."""
from __future__ import annotations

import asyncio
import json
import os
import sys
import tempfile

import numpy as np
import psutil

from benchlib.common import BENCH_DIR, process_cpu_seconds, subprocess_env


class ClientProcess:
    """One client process, spoken to with JSON lines."""

    def __init__(self, proc: asyncio.subprocess.Process, errlog) -> None:
        self.proc, self.errlog = proc, errlog
        self.ps = psutil.Process(proc.pid)

    @classmethod
    async def start(cls, module: str = "benchlib.clientproc", args: list[str] | None = None,
                    env: dict | None = None) -> ClientProcess:
        """Start ``python -m module *args`` (a client process by default)."""
        errlog = tempfile.NamedTemporaryFile("w+b", prefix="bench-proc-", suffix=".log", delete=False)
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", module, *(args or []), stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE, stderr=errlog, env=env or subprocess_env(), cwd=str(BENCH_DIR),
            limit=2**24)
        return cls(proc, errlog)

    async def call(self, wait: float, /, **msg) -> dict:
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.proc.stdin.write((json.dumps(msg) + "\n").encode())
        await self.proc.stdin.drain()
        line = await asyncio.wait_for(self.proc.stdout.readline(), wait)
        if not line:
            self.errlog.flush()
            with open(self.errlog.name, errors="replace") as fh:
                tail = fh.read()[-3000:]
            raise RuntimeError(f"{self.proc.pid} exited:\n{tail}")
        return json.loads(line)

    def cpu_seconds(self) -> float:
        return process_cpu_seconds(self.ps)

    async def stop(self) -> None:
        if self.proc.returncode is None:
            try:
                await self.call(10, cmd="quit")
            except Exception:  # noqa: BLE001 - stop it anyway
                pass
            try:
                await asyncio.wait_for(self.proc.wait(), 5)
            except asyncio.TimeoutError:
                self.proc.kill()
                await self.proc.wait()
        self.errlog.close()
        try:
            os.unlink(self.errlog.name)
        except OSError:
            pass


class ClientPool:
    """``total`` connections spread over ``procs`` client processes and over ``targets`` (round robin)."""

    def __init__(self, procs: list[ClientProcess], counts: list[int]) -> None:
        self.procs, self.counts = procs, counts

    @classmethod
    async def start(cls, total: int, procs: int) -> ClientPool:
        procs = max(1, min(procs, total))
        counts = [total // procs + (1 if i < total % procs else 0) for i in range(procs)]
        return cls(list(await asyncio.gather(*(ClientProcess.start() for _ in counts))), counts)

    async def all(self, timeout: float, **msg) -> list[dict]:
        return list(await asyncio.gather(*(p.call(timeout, **msg) for p in self.procs)))

    async def connect(self, targets: list[tuple[str, int, str]], concurrency: int, timeout: float = 30) -> dict:
        """Connect every client; return totals (ok, failed, retries, errors, seconds = the slowest process)."""
        per = max(1, concurrency // len(self.procs))
        replies = await asyncio.gather(*(
            p.call(timeout * 4 + 600, cmd="connect", targets=[list(t) for t in targets], count=n,
                   concurrency=per, timeout=timeout)
            for p, n in zip(self.procs, self.counts)))
        errors: dict[str, int] = {}
        for r in replies:
            for k, v in r["errors"].items():
                errors[k] = errors.get(k, 0) + v
        return {"ok": sum(r["ok"] for r in replies), "failed": sum(r["failed"] for r in replies),
                "retries": sum(r["retries"] for r in replies), "errors": errors,
                "seconds": max(r["seconds"] for r in replies), "client_cpu": sum(r["cpu"] for r in replies)}

    async def status(self) -> dict:
        """Summed counters of every process."""
        replies = await self.all(60, cmd="status")
        return _sum_status(replies)

    async def wait_for(self, key: str, target: int, idle: float, deadline: float) -> dict:
        """Poll until ``status[key] >= target``, no frame at all arrived for ``idle`` s, or ``deadline``.

        Progress is any frame (warm-up copies included), so a server still busy with earlier messages is
        waited for."""
        loop = asyncio.get_running_loop()
        last_value, last_change = -1, loop.time()
        while True:
            st = await self.status()
            now = loop.time()
            progress = st["received"] + st["warm"] + st["dupes"] + st["unknown"] + sum(st["other"].values())
            if progress != last_value:
                last_value, last_change = progress, now
            if st[key] >= target or now - last_change > idle or now > deadline:
                st["waited_until"] = "complete" if st[key] >= target else (
                    "idle" if now - last_change > idle else "deadline")
                return st
            await asyncio.sleep(0.1)

    async def latencies(self) -> tuple[np.ndarray, dict]:
        """Every recorded publish-to-arrival latency in nanoseconds, and the summed final status."""
        paths, replies = [], []
        for p in self.procs:
            fd, path = tempfile.mkstemp(prefix="bench-lat-", suffix=".bin")
            os.close(fd)
            paths.append(path)
            replies.append(await p.call(120, cmd="report", path=path))
        arrays = [np.fromfile(path, dtype=np.int64) for path in paths]
        for path in paths:
            os.unlink(path)
        lat = np.concatenate(arrays) if arrays else np.empty(0, dtype=np.int64)
        return lat, _sum_status(replies)

    def cpu_seconds(self) -> list[float]:
        return [p.cpu_seconds() for p in self.procs]

    async def stop(self) -> None:
        try:
            await self.all(30, cmd="close")
        except Exception:  # noqa: BLE001 - stopping anyway
            pass
        await asyncio.gather(*(p.stop() for p in self.procs))


def _sum_status(replies: list[dict]) -> dict:
    out: dict = {"received": 0, "warm": 0, "dupes": 0, "unknown": 0, "open": 0, "closed": 0, "other": {},
                 "close_codes": {}, "first_ns": 0, "last_ns": 0}
    for r in replies:
        for k in ("received", "warm", "dupes", "unknown", "open", "closed"):
            out[k] += r[k]
        for k in ("other", "close_codes"):
            for kk, v in r[k].items():
                out[k][kk] = out[k].get(kk, 0) + v
        if r["first_ns"]:
            out["first_ns"] = min(out["first_ns"] or r["first_ns"], r["first_ns"])
        out["last_ns"] = max(out["last_ns"], r["last_ns"])
    return out
