"""``python -m hypergen_ws listen URL --token TOKEN``: print a consumer's frames as JSON lines until interrupted.

For operators watching a group live, and as the smallest client of :func:`hypergen_ws.client.connect`: it
reconnects and recovers like any client, and prints a ``resync`` frame when frames were lost.
"""
from __future__ import annotations

import asyncio
import json
from collections.abc import Mapping
from typing import TextIO

from .connection import connect
from .errors import HypergenClientError

__all__ = ["listen"]


async def listen(url: str, token: str | None, out: TextIO, *, headers: Mapping[str, str] | None = None,
                 open_timeout: float = 10.0) -> None:
    """Print every frame of the socket at ``url`` to ``out``, one JSON object per line, until cancelled. Raises
    the refusal (4401, 4403, 4404) or ``TimeoutError`` when the first socket does not open."""
    async with connect(url, token, headers=headers, open_timeout=open_timeout) as conn:
        async for frame in conn.frames():
            out.write(json.dumps(frame, ensure_ascii=False, separators=(",", ":")) + "\n")
            out.flush()


def run(url: str, token: str | None, out: TextIO, err: TextIO, *, headers: Mapping[str, str] | None = None,
        open_timeout: float = 10.0) -> int:
    """:func:`listen` as a command: 0 after Ctrl-C, 1 when the server refused the socket, 2 for a URL that is not
    a websocket URL, 3 when it could not be reached."""
    try:
        asyncio.run(listen(url, token, out, headers=headers, open_timeout=open_timeout))
    except KeyboardInterrupt:
        return 0
    except ValueError as exc:
        err.write(f"error: {exc}\n")
        return 2
    except HypergenClientError as exc:
        err.write(f"error: {exc}\n")
        return 1
    except (TimeoutError, OSError) as exc:
        err.write(f"error: {exc}\n")
        return 3
    return 0
