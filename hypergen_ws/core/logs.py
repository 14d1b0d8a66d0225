"""The fields every log line of hypergen_ws carries, for search (docs/operations.rst, "Logs").

hypergen_ws logs to one logger, ``hypergen_ws``. Every call passes ``extra=fields(event, ...)``, so every record has
these attributes (``None`` where they do not apply), which JSON formatters put into each line:

``event``      what happened, one of :data:`EVENTS` (a stable name to search and alert on)
``consumer``   the consumer label, e.g. ``chat.send_message``
``group``      the group name
``user_id``    the primary key of the socket's user (``None`` for anonymous sockets)
``code``       the close code, error code, frame type or outcome, as a string

The message text stays for humans and may change; the event names and fields are the interface.
"""
from __future__ import annotations

import logging

from .identity import Identity
from .state import ConnectionState

__all__ = ["EVENTS", "FIELDS", "LOGGER_NAME", "fields", "logger"]

LOGGER_NAME = "hypergen_ws"
logger = logging.getLogger(LOGGER_NAME)

#: The attributes :func:`fields` gives every record.
FIELDS = ("event", "consumer", "group", "user_id", "code")

#: What the lines of a failure that is part of an outage of the channel layer say about their level.
_OUT = " (DEBUG while the channel layer is out)"

#: Every event: its level and when it is logged.
EVENTS: dict[str, tuple[str, str]] = {
    # connections and calls
    "connection_refused": ("WARNING", "the permission check refused a connection (the message names the user and what "
                                      "the consumer requires); code: the close code (4401, 4403)"),
    "consumer_without_perm": ("ERROR", "a consumer without perm= refused a connection (it refuses everyone)"),
    "on_connect_refused": ("WARNING", "an on_connect hook raised PermissionDenied; code: 4403"),
    "on_connect_error": ("ERROR", "an on_connect hook raised (with the traceback); code: server_error"),
    "on_disconnect_error": ("ERROR", "an on_disconnect hook raised (with the traceback)"),
    "on_disconnect_publish_failed": ("ERROR", "publishing what on_disconnect issued failed"),
    "bad_frame": ("WARNING", "a client sent a frame that is not valid; code: bad_request, or the close code (1009)"),
    "call_refused": ("WARNING", "the permission check refused a call, or the function raised PermissionDenied; code: "
                                "permission_denied"),
    "call_undeliverable": ("WARNING", "the result of a call could not be published; code: unavailable" + _OUT),
    "consumer_error": ("ERROR", "a consumer function raised (with the traceback); code: server_error"),
    "arrival_failed": ("ERROR", "a feature failed looking at an arriving frame (with the traceback); the frame is "
                                "handled"),
    "cleanup_failed": ("ERROR", "a feature failed to clean up after a socket; code: the feature"),
    "connection_expired": ("INFO", "a connection's lifetime (expires=) is over; code: 4408"),
    "slow_client_closed": ("WARNING", "a client fell SEND_QUEUE_LIMIT frames behind and is closed; code: 1013"),
    "slow_close_failed": ("DEBUG", "the close frame to a slow client (or one that answers no ping) could not be "
                                   "written"),
    "ping_unanswered": ("INFO", "a socket answered no ping within PING_TIMEOUT and is closed; code: 4410"),
    "sockets_restarted": ("INFO", "the server shuts down: every socket was told to reconnect within "
                                  "RECONNECT_SPREAD and closed; code: 1012"),
    "shutdown_failed": ("ERROR", "telling the sockets to reconnect before a shutdown failed (with the traceback); "
                                 "the server shuts down as it would without it"),
    "stop_listening_failed": ("DEBUG", "the server could not stop listening at SIGTERM: it takes new connections "
                                       "until its own shutdown starts"),
    "setting_invalid": ("ERROR", "a setting is not valid, so what it configures is off (once per value; the "
                                 "system check hypergen_ws.E060 says the same); code: the setting"),
    "send_failed": ("DEBUG", "writing to a socket failed (the client went away); its queued frames are dropped"),
    # the channel layer
    "layer_receive_failed": ("WARNING", "receiving from the channel layer failed (ERROR for a group's channel); "
                                        "retried every second" + _OUT),
    "layer_message_ignored": ("WARNING", "a channel-layer message with a reserved or missing type was ignored; "
                                         "code: its type"),
    "layer_message_unhandled": ("WARNING", "a channel-layer message reached a consumer without a handler for it; "
                                           "code: its type"),
    "layer_message_undeliverable": ("WARNING", "a channel-layer message could not be handed to a local socket; "
                                               "code: its type"),
    "local_message_dropped": ("WARNING", "a message for a local socket was dropped: its channel is full; code: its "
                                         "type"),
    "group_leave_failed": ("WARNING", "leaving a group on the channel layer failed (the membership expires)" + _OUT),
    "group_subscribe_failed": ("WARNING", "subscribing to a group on the channel layer again failed" + _OUT),
    "layer_capacity_failed": ("WARNING", "the capacity of hypergen_ws's channels could not be set on a layer"),
    "server_frame_limit": ("WARNING", "the server reads larger websocket messages than MAX_MESSAGE_SIZE, or its "
                                      "limit cannot be read (once per process); code: its limit in bytes, none, or "
                                      "unknown"),
    "fast_path_fallback": ("WARNING", "a fast path of a server, layer or asgiref falls back to the plain one (once); "
                                      "code: the package"),
    "daphne_producer_failed": ("DEBUG", "registering the write backpressure on a daphne connection failed"),
    # history, presence, Redis
    "history_gap_unfilled": ("WARNING", "the history to fill a gap in a group's frames could not be read" + _OUT),
    "history_unavailable": ("WARNING", "the history could not be read for a connecting client (it gets a resync)"
                                       + _OUT),
    "resync": ("INFO", "a reconnecting client gets a resync frame; code: the reason"),
    "history_not_shared": ("WARNING", "history runs on a layer that cannot share seq numbers across processes"),
    "presence_write_failed": ("WARNING", "a presence entry could not be written (retried at a later heartbeat)"),
    "presence_remove_failed": ("WARNING", "a presence entry could not be removed (fixed at a later heartbeat)"),
    "presence_list_failed": ("WARNING", "the presence list for a new socket could not be read"),
    "presence_frame_failed": ("WARNING", "a presence join/leave frame could not be published"),
    "heartbeat_failed": ("WARNING", "a heartbeat to Redis failed (WARNING at the 1st, 10th and every 100th in a "
                                    "row, else DEBUG); code: the number in a row" + _OUT),
    "layer_unavailable": ("WARNING", "the channel layer (Redis) failed an operation: an outage starts; what fails "
                                     "until it ends is counted, not logged above DEBUG (once per outage and "
                                     "process); code: what failed first"),
    "layer_available": ("INFO", "the channel layer (Redis) answers again: the outage is over, with its length and "
                                "the count of what failed, by kind; code: how many failed"),
    "redis_data_lost": ("WARNING", "Redis lost its data: subscriptions are restored, followers get a resync"),
    "redis_server_changed": ("WARNING", "another Redis server answers (a Sentinel failover or a restart): histories "
                                        "start a new epoch and followers get a resync"),
    "redis_info_unavailable": ("WARNING", "INFO cannot be read from Redis, so a failover to a replica goes unnoticed "
                                          "(once per store)"),
    "process_dead": ("INFO", "another process stopped sending heartbeats; its entries are removed; code: its id"),
    # security and limits (docs/security.rst)
    "socket_closed": ("INFO", "a socket was closed because its user logged out, its session ended, disconnect_user() "
                              "or recheck_permissions(); code: the close code"),
    "session_check_failed": ("WARNING", "checking the sessions of open sockets failed (tried again)"),
    "logout_not_propagated": ("WARNING", "a logout could not reach the sockets of other processes (their session "
                                         "check closes them)"),
    "too_many_connections": ("WARNING", "a socket was refused: its user has MAX_CONNECTIONS_PER_USER open (across "
                                        "the processes on Redis); code: 1008"),
    "connection_count_unavailable": ("WARNING", "Redis could not count a user's sockets: MAX_CONNECTIONS_PER_USER "
                                                "counts this process's only until a heartbeat reaches Redis (once "
                                                "per outage)"),
    "connection_count_restored": ("INFO", "Redis answers again: MAX_CONNECTIONS_PER_USER counts across the "
                                          "processes again"),
    "rate_limited": ("INFO", "a connection goes over its rate limit (once per burst); code: rate_limited"),
    "rate_limit_exceeded": ("WARNING", "a connection kept sending over its rate limit and is closed; code: 1008"),
    "origin_refused": ("WARNING", "a websocket handshake from a foreign origin was refused; code: 403"),
    "token_refused": ("WARNING", "a socket's token was refused (malformed, forged, expired, revoked, or its user deleted "
                                 "or inactive; the message says which) and the socket closed with 4401"),
    "token_refreshed": ("DEBUG", "an open socket took a new token (a {\"type\": \"token\"} frame)"),
    "socket_followed_session": ("INFO", "a socket follows its session to the new key of update_session_auth_hash()"),
    "session_follow_failed": ("WARNING", "the new key of a session could not reach every process (the session check "
                                         "closes its sockets there)"),
    "client_server_silent": ("WARNING", "the Python client heard nothing for ping_interval + ping_timeout; it "
                                        "reconnects"),
    "client_bad_frame": ("WARNING", "the Python client ignored a frame that is not JSON"),
    "client_recovering": ("WARNING", "the Python client saw a seq skipped and reconnects with the last one; code: the "
                                     "seq it got"),
    "client_refresh_failed": ("WARNING", "the Python client's get_token() failed for a refresh (with the traceback)"),
    "token_revoked": ("INFO", "an open token socket was closed with 4401: its user was deleted or deactivated, or "
                              "changed their password"),
    "token_expired": ("INFO", "a socket's token expired without a refresh; closed with 4401"),
    "cross_origin_refused": ("WARNING", "a token socket from another site's page was refused: its consumer does not "
                                        "allow that origin (@consumer(cross_origin=...)); code: 4403"),
    "no_route": ("WARNING", "a websocket path no consumer matched was refused; code: 403"),
    "body_refused": ("WARNING", "an HTTP request body over its view's limit was refused before it was read (daphne); "
                                "code: 413"),
    "control_listen_failed": ("WARNING", "listening to control messages on the channel layer failed (tried again "
                                         "at the next connect)"),
    "control_failed": ("ERROR", "a control message (close, recheck) could not be handled (with the traceback)"),
    "group_join_deferred": ("WARNING", "a socket could not join its group at connect (the channel layer is down): "
                                       "accepted with a resync, it joins later; code: unavailable" + _OUT),
    "group_join_pending": ("DEBUG", "a socket's join was not done within its connect's budget (CONNECT_TIMEOUT): "
                                    "accepted with a resync, the join goes on in the background"),
    "group_joined_late": ("INFO", "a socket joined its group once the channel layer was back"),
    "group_join_failed": ("ERROR", "joining a socket's groups in the background raised an unexpected error (with "
                                   "the traceback); the socket is closed with 1011 and reconnects"),
    "layer_message_failed": ("ERROR", "a channel-layer message to a socket's own channel failed in its handler (with "
                                      "the traceback); the socket is closed"),
    "frame_of_retired_epoch": ("INFO", "a late frame of a history the group's feed left (an epoch before a loss "
                                       "of data) was dropped; code: its seq"),
    "frame_out_of_sequence": ("WARNING", "a frame with a seq the group's history never reached was skipped; the "
                                         "followers get a resync; code: its seq"),
    "dead_process_cleanup_failed": ("WARNING", "a dead process could not be taken out of a group on the channel "
                                               "layer; code: its id"),
    "history_forget_failed": ("DEBUG", "the record of a room nothing was published to could not be dropped"),
    "redis_disconnect_failed": ("DEBUG", "closing idle Redis connections after a failure failed"),
    "close_frame_failed": ("DEBUG", "a close frame could not be written to a daphne connection; code: the close "
                                    "code"),
    # HTTP and operations
    "publish_key_refused": ("WARNING", "an HTTP request to publish/, stats/ or metrics/ had a wrong access key; "
                                       "code: 403"),
    "http_publish_failed": ("ERROR", "an HTTP publish failed in the channel layer (with the traceback); code: 503"
                                     + _OUT),
    "http_published": ("DEBUG", "an HTTP publish was done; code: message or commands"),
    "stats_read_failed": ("WARNING", "reading the stats for stats/ failed because Redis is down or did not answer "
                                     "within PUBLISH_TIMEOUT (ERROR with the traceback for any other failure); "
                                     "code: 503"),
    "dashboard_update_failed": ("WARNING", "publishing a dashboard update failed"),
    "dashboard_stats_failed": ("WARNING", "reading every process's stats for the dashboard failed (WARNING at the "
                                          "1st and every 60th in a row, else DEBUG); code: the number in a row"),
    "publish_listener_failed": ("ERROR", "a publish listener (hypergen_ws.core.observers) raised (with the traceback); "
                                         "the publish goes on"),
}


def fields(event: str, *, consumer: str | None = None, group: str | None = None, user: object = None,
           state: ConnectionState | None = None, code: str | int | None = None) -> dict[str, object]:
    """The ``extra`` of a log call: ``logger.info("...", extra=fields("resync", consumer=..., code=...))``.

    ``state`` (a connection's) gives the user id and, unless ``group`` is given, its primary group; ``user`` (a
    Django user, or a connection's :class:`~hypergen_ws.core.identity.Identity`) gives the user id when there is no
    state. ``event`` is one of :data:`EVENTS` (a test checks
    every call in the package).
    """
    user_id: object = None
    if state is not None:
        if group is None:
            group = state.primary_group
        if state.identity is not None:
            user_id = state.identity.user_id
    elif isinstance(user, Identity):
        user_id = user.user_id
    elif user is not None and getattr(user, "is_authenticated", False):
        user_id = getattr(user, "pk", None)
    return {"event": event, "consumer": consumer, "group": group, "user_id": user_id,
            "code": None if code is None else str(code)}
