"""Redis memory used by hypergen_ws per group: history (stream + sequence hash) and presence entries.

Starts a throwaway redis-server, fills groups through the real store code (``RedisStore.append`` and the presence
Lua scripts), and prints ``MEMORY USAGE`` of the keys, per group and per frame, plus ``used_memory`` deltas over
many groups (which include Redis' per-key overhead). Asserts nothing.

    python benchmarks/history_memory.py
    python benchmarks/history_memory.py --groups 1000 --sizes 10 100 1000 --payloads 100 1000
"""
from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "testproject.settings")

import django  # noqa: E402

django.setup()

from redis import asyncio as aioredis  # noqa: E402

from hypergen_ws.core.protocol import message_frame  # noqa: E402
from hypergen_ws.backends.redis.store import RedisStore  # noqa: E402
from tests.support.servers import RedisServer  # noqa: E402


async def measure(url: str, groups: int, sizes: list[int], payloads: list[int]) -> list[dict]:
    store = RedisStore([{"address": url}], "hgws")
    redis = aioredis.Redis.from_url(url)
    rows = []
    for payload in payloads:
        text = message_frame({"text": "x" * payload})
        for size in sizes:
            await redis.flushall()
            before = int((await redis.info("memory"))["used_memory"])
            for g in range(groups):
                group = f"hgws.chat.send_message.room.r{g:06d}"
                for _ in range(size):
                    await store.append(group, text, size)
            after = int((await redis.info("memory"))["used_memory"])
            seq_key, hist_key = store.keys("hgws.chat.send_message.room.r000000")
            stream = int(await redis.memory_usage(hist_key, samples=0))
            meta = int(await redis.memory_usage(seq_key, samples=0))
            rows.append({"frame_bytes": len(text), "history": size, "stream_key": stream, "seq_key": meta,
                         "per_group": stream + meta, "per_frame": round(stream / size, 1),
                         "used_memory_per_group": round((after - before) / groups)})
    await redis.flushall()
    # presence: one hash field per (user, process) plus one per user in the totals
    from hypergen_ws.backends.redis.scripts import JOIN

    users = 1000
    before = int((await redis.info("memory"))["used_memory"])
    for u in range(users):
        info = json.dumps({"id": f"u:{u}", "user_id": u, "username": f"user{u:05d}", "count": 1,
                           "since": 1760000000.123})
        await redis.eval(JOIN, 3, "hgws:presence:g", "hgws:pcount:g", "hgws:pgroups:host:1234:abcd",
                         f"u:{u}|host:1234:abcd", info, f"u:{u}", 1, "g")
    after = int((await redis.info("memory"))["used_memory"])
    presence = {"users": users, "bytes_per_user": round((after - before) / users),
                "presence_key": int(await redis.memory_usage("hgws:presence:g", samples=0)),
                "pcount_key": int(await redis.memory_usage("hgws:pcount:g", samples=0))}
    await redis.aclose()
    return rows + [presence]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--groups", type=int, default=200)
    parser.add_argument("--sizes", type=int, nargs="+", default=[10, 100, 1000])
    parser.add_argument("--payloads", type=int, nargs="+", default=[100, 1000])
    args = parser.parse_args()
    with RedisServer() as server:
        results = asyncio.run(measure(server.url, args.groups, args.sizes, args.payloads))
    print(f"{'frame B':>8} {'history':>8} {'stream key':>11} {'seq key':>8} {'per group':>10} {'per frame':>10} "
          f"{'used_memory/group':>18}")
    for row in results[:-1]:
        print(f"{row['frame_bytes']:>8} {row['history']:>8} {row['stream_key']:>11} {row['seq_key']:>8} "
              f"{row['per_group']:>10} {row['per_frame']:>10} {row['used_memory_per_group']:>18}")
    print("presence:", results[-1])
    out = ROOT / "benchmarks" / "results" / "history_memory.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps(results, indent=2))
    print(f"written: {out}")


if __name__ == "__main__":
    main()
