"""Whether the server reads larger websocket messages than hypergen_ws takes (docs/security.rst, "Frame sizes").

A server reads a whole message into memory before the application sees it, up to its own limit: uvicorn's
``--ws-max-size`` is 16 MiB by default, daphne's ``--websocket-max-message-size`` 1 MiB. hypergen_ws refuses a
frame over ``MAX_MESSAGE_SIZE`` only once the server handed it over, so a server whose limit is higher lets an
anonymous client make the process hold that much per socket (fifteen 15 MB frames at a time kept a uvicorn
process at over 1 GB). At the first connection of a process, :func:`check` reads the running server's limit from
the connection (``hypergen_ws.backends.uvicorn`` and ``.daphne``) and logs one WARNING when it is higher than
``MAX_MESSAGE_SIZE``, or when the limit of a known server cannot be read; another server is not checked.
"""
from __future__ import annotations

import logging
import math
from typing import Any

from ..core import conf
from ..core.logs import fields
from . import daphne, uvicorn

logger = logging.getLogger("hypergen_ws")

_checked = False


def check(send: Any) -> None:
    """Compare the limit of the server behind ``send`` (an accepted socket) with ``MAX_MESSAGE_SIZE``, once per
    process: the first connection on a known server decides."""
    global _checked
    if _checked:
        return
    found = uvicorn.incoming_limit(send) or daphne.incoming_limit(send)
    if found is None:
        return
    _checked = True
    server_limit, setting = found
    package_limit = int(conf.get("MAX_MESSAGE_SIZE"))
    how = setting.format(size=package_limit)
    if server_limit is None:
        logger.warning("hypergen_ws: the server's websocket message size limit could not be read; make sure it is "
                       "at most MAX_MESSAGE_SIZE (%s bytes): %s.", package_limit, how,
                       extra=fields("server_frame_limit", code="unknown"))
    elif server_limit > package_limit:
        shown = "of any size" if math.isinf(server_limit) else f"of up to {int(server_limit)} bytes"
        logger.warning(
            "hypergen_ws: the server reads websocket messages %s into memory before hypergen_ws refuses "
            "those over MAX_MESSAGE_SIZE (%s bytes), so any client, logged in or not, can make this process hold "
            "that much per socket. %s.", shown, package_limit, how[0].upper() + how[1:],
            extra=fields("server_frame_limit", code=str(int(server_limit)) if math.isfinite(server_limit) else "none"))
