"""HTTP endpoints: publish to a group, and read the server's traffic counters, with an access key.

Include them with ``path("hypergen_ws/", include("hypergen_ws.urls"))``:

* ``POST publish/`` with a JSON body: ``{"group": "<group name>", "data": <JSON>}``, or
  ``{"consumer": "chat.send_message", "kwargs": {"room_name": "vip"}, "commands": [["alert", "hi"]]}``
  (a group named by a consumer's label and URL kwargs; one of ``"data"`` and ``"commands"``).
  Answers ``200 {"published": "message" | "commands", "group": "<name>"}``.
* ``GET stats/``: :func:`hypergen_ws.get_stats`: on Redis the counters of every live server process, summed;
  ``?per_process=1`` adds each process's own tables.

Both need ``Authorization: Bearer <key>`` with one of ``HYPERGEN_WS["PUBLISH_KEYS"]`` (compared in constant time
against every key). With no key configured every request is refused. Every refused request gets
``{"error": "<what was wrong and how to fix it>"}``, publishes nothing, and has the status that says why:
400 malformed body or fields, 401 no key, 403 wrong key (or none configured), 404 unknown consumer label, 405 wrong
method (with ``Allow``), 413 body over ``HYPERGEN_WS["PUBLISH_MAX_BODY_SIZE"]``, 503 the channel layer failed.
The views are CSRF-exempt: the key, not a cookie, authenticates the caller.
"""
from __future__ import annotations

import json
import logging
from typing import Any

from django.http import HttpRequest, JsonResponse
from django.views.decorators.csrf import csrf_exempt

from .core import conf, protocol, registry
from .core.bodies import max_body_size
from .core.groups import check_group_name
from .core.identity import MalformedCredential, bearer_credential, matches_any_key
from .core.logs import fields
from .decorators import get_consumer
from .delivery import outage
from .stats.cluster import aget_stats
from .publish import aconsumer_command, agroup_send

logger = logging.getLogger("hypergen_ws")

FIELDS = frozenset({"group", "consumer", "kwargs", "data", "commands"})
EXAMPLE = '{"group": "<group name>", "data": {"text": "hi"}}'


class HttpError(Exception):
    """A refused request: the status, the message for ``{"error": ...}`` and extra headers."""

    def __init__(self, status: int, message: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.headers = headers or {}


def error_response(exc: HttpError) -> JsonResponse:
    """The JSON answer to a refused request."""
    response = JsonResponse({"error": exc.message}, status=exc.status)
    for name, value in exc.headers.items():
        response[name] = value
    response["Cache-Control"] = "no-store"
    return response


# ---- authentication -----------------------------------------------------------------------------------------
def configured_keys() -> list[bytes]:
    """``HYPERGEN_WS["PUBLISH_KEYS"]`` as bytes; ``HttpError(500)`` when the setting is not a list of strings."""
    keys = conf.get("PUBLISH_KEYS")
    if isinstance(keys, (str, bytes)) or not isinstance(keys, (list, tuple)):
        raise HttpError(500, "The server is misconfigured: HYPERGEN_WS['PUBLISH_KEYS'] must be a list of strings, "
                             "e.g. ['<a long random key>'], not a single string.")
    out = []
    for key in keys:
        if not isinstance(key, str) or not key:
            raise HttpError(500, "The server is misconfigured: every entry of HYPERGEN_WS['PUBLISH_KEYS'] must be "
                                 "a non-empty string.")
        out.append(key.encode("utf-8"))
    return out


def authenticate(request: HttpRequest) -> None:
    """Accept a request whose ``Authorization: Bearer <key>`` matches a configured key; else raise ``HttpError``."""
    keys = configured_keys()
    if not keys:
        raise HttpError(403, "Publishing over HTTP is disabled on this server: no access key is configured. Set "
                             "HYPERGEN_WS['PUBLISH_KEYS'] = ['<a long random key>'] in its settings.")
    challenge = {"WWW-Authenticate": 'Bearer realm="hypergen_ws"'}
    try:
        given = bearer_credential(request.headers.get("Authorization", ""))
    except MalformedCredential as exc:
        raise HttpError(401, str(exc), challenge) from None
    if given is None:
        raise HttpError(401, "No access key: send the header 'Authorization: Bearer <key>' with a key from the "
                             "server's HYPERGEN_WS['PUBLISH_KEYS'].", challenge)
    if not matches_any_key(given, keys):
        logger.warning("Refused an HTTP request to %s with a wrong access key", request.path,
                       extra=fields("publish_key_refused", code=403))
        raise HttpError(403, "Wrong access key: it is not one of the server's HYPERGEN_WS['PUBLISH_KEYS'] (was the "
                             "key rotated?).")


def _method(request: HttpRequest, allowed: tuple[str, ...]) -> None:
    if request.method not in allowed:
        raise HttpError(405, f"Method {request.method} is not allowed here; use {' or '.join(allowed)}.",
                        {"Allow": ", ".join(allowed)})


# ---- the publish request ------------------------------------------------------------------------------------
def read_body(request: HttpRequest) -> Any:
    """The decoded JSON body, at most ``PUBLISH_MAX_BODY_SIZE`` bytes."""
    limit = conf.get("PUBLISH_MAX_BODY_SIZE")
    too_big = HttpError(413, f"The body is over the limit of {limit} bytes; publish less per request or raise "
                             "HYPERGEN_WS['PUBLISH_MAX_BODY_SIZE'].")
    try:
        declared = int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        raise HttpError(400, "The Content-Length header is not a number.") from None
    if declared > limit:
        raise too_big
    body = request.read(limit + 1)
    if len(body) > limit:
        raise too_big
    if not body.strip():
        raise HttpError(400, f"The body is empty; send a JSON object like {EXAMPLE}.")
    try:
        return json.loads(body, parse_constant=_refuse_constant)
    except RecursionError:
        raise HttpError(400, "The body nests too deeply; flatten the data.") from None
    except ValueError as exc:
        raise HttpError(400, f"The body is not valid JSON ({exc}); send a JSON object like {EXAMPLE}.") from None


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON; send finite numbers only")


def resolve_group(body: dict[str, Any]) -> str:
    """The group named by ``"group"``, or by ``"consumer"`` and ``"kwargs"``."""
    if ("group" in body) == ("consumer" in body):
        raise HttpError(400, 'Name the group with exactly one of "group" (a group name) and "consumer" (a consumer '
                             'label like "chat.send_message", with "kwargs" for its URL kwargs).')
    if "group" in body:
        if "kwargs" in body:
            raise HttpError(400, '"kwargs" goes with "consumer", not with "group"; drop it or name a consumer.')
        try:
            return check_group_name(body["group"])
        except ValueError as exc:
            raise HttpError(400, f'"group": {exc}') from None
    label, kwargs = body["consumer"], body.get("kwargs", {})
    if not isinstance(label, str):
        raise HttpError(400, '"consumer" must be a consumer label like "chat.send_message".')
    if not isinstance(kwargs, dict):
        raise HttpError(400, f'"kwargs" must be an object of URL kwargs, like {{"room_name": "vip"}}, not '
                             f"{type(kwargs).__name__}.")
    registry.discover()
    try:
        spec = get_consumer(label)
    except LookupError as exc:
        raise HttpError(404, str(exc)) from None
    if spec.group_name_func is not None:
        raise HttpError(400, f"{label} picks its groups with group_name=..., so its group cannot be derived from "
                             'kwargs; publish to the group by name with "group".')
    try:
        return spec.group_name_from_url_kwargs(kwargs)
    except (TypeError, ValueError) as exc:
        raise HttpError(400, f'"kwargs" do not fit {label}: {exc}') from None


async def handle_publish(request: HttpRequest) -> dict[str, Any]:
    """Check, decode and publish one request; returns the answer's body."""
    _method(request, ("POST",))
    authenticate(request)
    body = read_body(request)
    if not isinstance(body, dict):
        raise HttpError(400, f"The body must be a JSON object like {EXAMPLE}, not {type(body).__name__}.")
    unknown = sorted(set(body) - FIELDS)
    if unknown:
        raise HttpError(400, f"Unknown field(s) {', '.join(map(repr, unknown))}; a publish request has \"group\" "
                             "or \"consumer\" (with \"kwargs\"), and \"data\" or \"commands\".")
    if ("data" in body) == ("commands" in body):
        raise HttpError(400, 'Send exactly one of "data" (any JSON, delivered as {"type": "message", "data": ...}) '
                             'and "commands" (a list like [["hypergen.append", "messages", "<li>hi</li>"]]).')
    commands = None
    if "commands" in body:
        try:
            commands = protocol.check_commands(body["commands"])
        except TypeError as exc:
            raise HttpError(400, f'"commands": {exc}') from None
    group = resolve_group(body)
    try:
        if commands is not None:
            await aconsumer_command(group, commands)
        else:
            await agroup_send(group, body["data"])
    except (TypeError, ValueError, RecursionError) as exc:
        raise HttpError(400, f"The payload cannot be published: {exc}") from None
    except Exception as exc:
        # An outage of the channel layer is logged once, as such (hypergen_ws.delivery.outage); anything else is a
        # bug, with its traceback.
        log = logger.debug if outage.is_outage(exc) else logger.error
        log("HTTP publish to group %s failed", group, exc_info=True,
            extra=fields("http_publish_failed", group=group, code=503))
        raise HttpError(503, f"Publishing failed ({type(exc).__name__}: {exc}); is the channel layer (Redis) "
                             "reachable? Retry later.") from None
    kind = "commands" if commands is not None else "message"
    logger.debug("Published %s to group %s over HTTP", kind, group,
                 extra=fields("http_published", group=group, code=kind))
    return {"published": kind, "group": group}


def publish_max_body_size() -> int:
    """``PUBLISH_MAX_BODY_SIZE``: the largest body of a publish request, in bytes."""
    return int(conf.get("PUBLISH_MAX_BODY_SIZE"))


# refused before it is read: BodyLimit, and daphne's own hook
@max_body_size(publish_max_body_size, "HYPERGEN_WS['PUBLISH_MAX_BODY_SIZE']")
@csrf_exempt
async def publish(request: HttpRequest) -> JsonResponse:
    """``POST publish/``: publish data or commands to a group (see the module docstring)."""
    try:
        answer = await handle_publish(request)
    except HttpError as exc:
        return error_response(exc)
    return JsonResponse(answer)


def flag(request: HttpRequest, name: str) -> bool:
    """A boolean query parameter: ``1``/``true``/``yes`` or ``0``/``false``/``no`` (absent: false)."""
    value = request.GET.get(name, "0").strip().lower()
    if value in ("1", "true", "yes"):
        return True
    if value in ("0", "false", "no", ""):
        return False
    raise HttpError(400, f"?{name}={value!r} is not a yes/no value; use ?{name}=1 or leave it out.")


@csrf_exempt
async def stats_view(request: HttpRequest) -> JsonResponse:
    """``GET stats/``: the traffic counters of every live server process (on Redis), or of this one."""
    try:
        _method(request, ("GET", "HEAD"))
        authenticate(request)
        per_process = flag(request, "per_process")
    except HttpError as exc:
        return error_response(exc)
    try:
        result = await aget_stats(per_process=per_process)
    except Exception as exc:
        # Redis down or frozen is an outage, not a bug: a WARNING without a traceback.
        down = outage.is_outage(exc)
        log = logger.warning if down else logger.error
        log("Reading the stats failed: %s: %s", type(exc).__name__, exc, exc_info=not down,
            extra=fields("stats_read_failed", code=503))
        return error_response(HttpError(503, f"Reading the stats failed ({type(exc).__name__}: {exc}); is Redis "
                                             "reachable? Retry later.", {"Retry-After": "5"}))
    response = JsonResponse(result)
    response["Cache-Control"] = "no-store"
    return response
