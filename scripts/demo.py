#!/usr/bin/env python3
"""Run the hypergen_ws demo: ``python3 scripts/demo.py [runserver arguments]``.

Creates ``.venv`` in the repository if needed, installs the project into it (skipped when pyproject.toml did not
change since the last install), migrates the SQLite database (the migrations create the demo accounts) and starts
``manage.py runserver`` (daphne, so websockets work too) on 127.0.0.1:8000. Extra arguments go to runserver,
e.g. ``python3 scripts/demo.py 8001`` or ``python3 scripts/demo.py 127.0.0.1:8001 --noreload``.
Set ``REDIS_URL=redis://127.0.0.1:6379/0`` to use Redis as the channel layer.
"""
from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _bootstrap import REPO_ROOT, check_python, ensure_venv, run, venv_env  # noqa: E402

DEFAULT_ADDRPORT = "127.0.0.1:8000"

# Demo accounts created by the test project's migrations (testproject/chat/migrations). For local use only.
DEMO_LOGINS = (
    ("alice", "alice", "may chat (has the chat permission)"),
    ("bob", "bob", "may chat (has the chat permission)"),
    ("eve", "eve", "may read but not chat (no chat permission)"),
)


def browser_url(args: list[str]) -> str:
    """The address to open, from the runserver address/port argument if there is one."""
    addrport = next((arg for arg in args if not arg.startswith("-")), DEFAULT_ADDRPORT)
    host, _, port = addrport.rpartition(":")
    if not host or host in ("0.0.0.0", "0", "::", "[::]"):
        host = "127.0.0.1"
    return f"http://{host}:{port}/"


def banner(url: str) -> str:
    width = max(len(user) for user, _, _ in DEMO_LOGINS)
    lines = [
        "",
        "hypergen_ws demo",
        f"  open {url} in a browser (two windows, two users, to see the real-time updates)",
        "  demo accounts (username / password), for local use only:",
        *(f"    {user:<{width}} / {password:<{width}}  {about}" for user, password, about in DEMO_LOGINS),
        "  stop with Ctrl+C",
        "",
    ]
    return "\n".join(lines)


def main(argv: list[str]) -> int:
    check_python()
    python = ensure_venv("redis")
    env = venv_env()
    code = run([python, "manage.py", "migrate", "--noinput"], env=env)
    if code != 0:
        print(f"manage.py migrate failed (exit code {code})", file=sys.stderr)
        return code
    args = list(argv)
    if not any(not arg.startswith("-") for arg in args):
        args.insert(0, DEFAULT_ADDRPORT)
    print(banner(browser_url(args)), flush=True)
    try:
        return run([python, "manage.py", "runserver", *args], env=env)
    except KeyboardInterrupt:
        return 0


if __name__ == "__main__":
    if not (REPO_ROOT / "manage.py").exists():
        sys.exit(f"manage.py not found in {REPO_ROOT}")
    sys.exit(main(sys.argv[1:]))
