"""Settings of hypergen_ws: one dict, ``settings.HYPERGEN_WS``, every key optional."""
from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

DEFAULTS: dict[str, Any] = {
    # Prefix of every generated websocket route, no leading slash.
    "URL_PREFIX": "ws/",
    # Which entry of CHANNEL_LAYERS consumers and publishers use.
    "CHANNEL_LAYER": "default",
    # Largest text frame (characters) a browser may send; larger frames close the socket with 1009.
    "MAX_MESSAGE_SIZE": 1024 * 1024,
    # Deepest JSON nesting accepted in a browser frame.
    "MAX_DEPTH": 32,
    # Frames buffered for one connection before it is closed as too slow (code 1013).
    "SEND_QUEUE_LIMIT": 1000,
    # Messages that may wait in the channel layer for one process's group channel before the layer drops more
    # (channels_redis and the in-memory layer default to 100 per channel; docs/scaling.rst).
    "GROUP_CAPACITY": 100_000,
    # Whether error frames carry exception details; None follows settings.DEBUG.
    "ERROR_DETAILS": None,
    # Seconds a sync publisher waits for the channel layer before raising.
    "PUBLISH_TIMEOUT": 10.0,
    # Seconds a connect may wait for Redis in all (the per-user cap, joining the group, the history, presence)
    # before the socket is accepted and told "unavailable" (at most PUBLISH_TIMEOUT); below the server's
    # handshake timeout (daphne: 5 s), or the server drops the handshake while Redis is frozen.
    "CONNECT_TIMEOUT": 2.5,
    # Whether group_send / consumer_command (and the async variants) called inside transaction.atomic() wait for
    # the commit when they are not given on_commit= (docs/transactions.rst).
    "PUBLISH_ON_COMMIT": False,
    # Access keys of the HTTP publish endpoint (docs/publishing.rst), a list so keys can be rotated;
    # empty: the endpoint refuses every request.
    "PUBLISH_KEYS": [],
    # Largest request body (bytes) the HTTP publish endpoint accepts; larger requests get 413.
    "PUBLISH_MAX_BODY_SIZE": 1024 * 1024,
    # Largest request body (bytes) BodyLimit lets through to a view without a max_body_size of its own; larger
    # requests get 413 before the body is read (docs/security.rst). None: settings.DATA_UPLOAD_MAX_MEMORY_SIZE.
    "MAX_BODY_SIZE": None,
    # History (docs/history.rst): frames kept per group when history=True names no size.
    "HISTORY_SIZE": 100,
    # Seconds a frame stays in a group's history.
    "HISTORY_TTL": 600,
    # Seconds a group's sequence counter and epoch survive without a publish (at least HISTORY_TTL).
    "SEQUENCE_TTL": 86400,
    # Prefix of the Redis keys hypergen_ws writes (history, presence, groups).
    "REDIS_PREFIX": "hgws",
    # Presence and groups across processes (docs/presence.rst): seconds between two heartbeats of a server
    # process in Redis (not the ping/pong of a socket), and seconds after its last heartbeat when a process counts
    # as dead and its entries are removed.
    "PROCESS_HEARTBEAT_INTERVAL": 3.0,
    "PROCESS_TTL": 10.0,
    # Security and limits (docs/security.rst): frames one connection may send ("20/s", "100/min"; None: no
    # limit) and how many at once (None: twice the rate per second), for consumers that name no rate=.
    "RATE_LIMIT": "20/s",
    "RATE_BURST": None,
    # What the anonymous sockets of one client address may send together, in one server process, to consumers with
    # a rate limit (None: no such limit), and how much at once (None: twice the rate per second).
    "ANONYMOUS_RATE_LIMIT": "100/s",
    "ANONYMOUS_RATE_BURST": None,
    # Sockets one user may have open (None: no limit), counted across every server process on Redis; more are
    # closed with 1008.
    "MAX_CONNECTIONS_PER_USER": None,
    # What a logout (user_logged_out) closes with 4401: "user" every socket of that user in every process, or
    # "session" only the sockets of the session that logged out.
    "LOGOUT_CLOSES": "user",
    # Seconds between checks that the sessions of open sockets still exist (flushed or expired sessions close
    # their sockets with 4401); None switches the check off.
    "SESSION_CHECK_INTERVAL": 1.0,
    # Connection tokens (docs/clients.rst): seconds an issue_token() token lives when it names no max_age; a
    # dotted path to a callable (token) -> user | None (sync or async) for tokens of another library (DRF,
    # simplejwt, OAuth); and whether a token may come in the socket URL's query string (?hgws_token=...), which
    # lands in access logs (off: only the Authorization header and the subprotocol form).
    "TOKEN_MAX_AGE": 3600,
    "TOKEN_AUTHENTICATOR": None,
    "TOKEN_QUERY_STRING": False,
    # Monitoring (docs/operations.rst): Prometheus metrics (None: on when prometheus_client is installed), the
    # groups (most connections first) each process reports to the cluster-wide stats, and the seconds between two
    # updates of the dashboard page.
    "METRICS": None,
    "STATS_TOP_GROUPS": 100,
    "DASHBOARD_INTERVAL": 1.0,
    # The protocol heartbeat (docs/protocol.rst): seconds a socket may be quiet before the server sends it a ping
    # (None: no pings), and seconds the client has to answer before the server closes it with 4410.
    "PING_INTERVAL": 25.0,
    "PING_TIMEOUT": 10.0,
    # Deploys (docs/scaling.rst): the window, in seconds, over which clients of a server that shuts down spread
    # their reconnects (0: all at once).
    "RECONNECT_SPREAD": 5.0,
}


#: Old names of settings that were renamed: old name -> new name. The old name still works when the new one is
#: not given; the check ``hypergen_ws.W009`` asks for the new one.
RENAMED: dict[str, str] = {
    "HEARTBEAT_INTERVAL": "PROCESS_HEARTBEAT_INTERVAL",
}
_OLD_NAMES = {new: old for old, new in RENAMED.items()}


def get(name: str) -> Any:
    """Return the setting ``name`` from ``settings.HYPERGEN_WS`` (or its old name, see :data:`RENAMED`) or its
    default."""
    if name not in DEFAULTS:
        raise KeyError(f"hypergen_ws has no setting {name!r}; known settings: {', '.join(sorted(DEFAULTS))}")
    user = getattr(settings, "HYPERGEN_WS", None) or {}
    if not isinstance(user, dict):
        raise ImproperlyConfigured(
            f"settings.HYPERGEN_WS must be a dict, not {type(user).__name__}; for example HYPERGEN_WS = {{'URL_PREFIX': 'ws/'}}."
        )
    if name in user:
        return user[name]
    old = _OLD_NAMES.get(name)
    return user[old] if old is not None and old in user else DEFAULTS[name]


def unknown_keys() -> list[str]:
    """Keys of ``settings.HYPERGEN_WS`` that hypergen_ws does not know (typos); old names are known."""
    user = getattr(settings, "HYPERGEN_WS", None) or {}
    return sorted(k for k in user if k not in DEFAULTS and k not in RENAMED) if isinstance(user, dict) else []


def renamed_keys() -> list[tuple[str, str]]:
    """``(old name, new name)`` of each setting that ``settings.HYPERGEN_WS`` gives by an old name."""
    user = getattr(settings, "HYPERGEN_WS", None) or {}
    return [(old, new) for old, new in RENAMED.items() if old in user] if isinstance(user, dict) else []


def _seconds(name: str, value: Any, *, zero: bool = False) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not (value >= 0 if zero else value > 0) \
            or value == float("inf"):
        raise ImproperlyConfigured(
            f"HYPERGEN_WS[{name!r}] is {value!r}; use a number of seconds{' (0 or more)' if zero else ' above 0'}, "
            f"or remove the key for the default, {DEFAULTS[name]}.")
    return float(value)


def liveness(only: str | None = None) -> tuple[float | None, float, float]:
    """``(PING_INTERVAL or None, PING_TIMEOUT, RECONNECT_SPREAD)``; raises ``ImproperlyConfigured`` naming the fix
    for a value that is not a number of seconds (with ``only``, checks that one setting and returns the defaults
    for the others)."""
    def read(name: str, zero: bool = False) -> float:
        return _seconds(name, get(name) if only in (None, name) else DEFAULTS[name], zero=zero)

    interval = get("PING_INTERVAL") if only in (None, "PING_INTERVAL") else DEFAULTS["PING_INTERVAL"]
    return (None if interval is None else _seconds("PING_INTERVAL", interval), read("PING_TIMEOUT"),
            read("RECONNECT_SPREAD", zero=True))


def error_details() -> bool:
    """Whether error frames may include exception details."""
    value = get("ERROR_DETAILS")
    return bool(settings.DEBUG) if value is None else bool(value)
