"""Clients of a hypergen_ws server from any Python process (docs/clients.rst, docs/publishing.rst).

* :func:`connect`: a websocket to a consumer, authenticated with a connection token, that reconnects and
  recovers what it missed (the extra ``client``, for the ``websockets`` package);
* :class:`PublishClient`: publish to a group through the HTTP endpoint, with the standard library only.
"""
from __future__ import annotations

from .connection import Connection, connect
from .errors import (CallResult, ConnectionClosed, Disconnected, HypergenClientError, NoRoute, NotAuthenticated,
                     PermissionDenied)
from .publish import PublishClient, PublishError

__all__ = ["CallResult", "Connection", "ConnectionClosed", "Disconnected", "HypergenClientError", "NoRoute",
           "NotAuthenticated", "PermissionDenied", "PublishClient", "PublishError", "connect"]
