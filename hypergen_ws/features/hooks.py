"""Connect and disconnect hooks of a consumer: ``@send_message.on_connect`` and ``@send_message.on_disconnect``.

A hook is called like the consumer function, without browser arguments: ``hook(consumer, request, **url_kwargs)``
(URL kwargs bound by name), sync or async. Hooks run only for sockets that passed the permission check.

* ``on_connect`` runs after the socket joined its group(s) and was accepted, before anything is written to it.
  Every ``command()`` it issues, and what it returns (like the consumer function: a list of commands, or a
  ``str`` with ``target_id``), goes to the new client only, as its first frame: the initial state. Group frames
  published while it runs are written after that frame. An exception is logged; the client gets a
  ``server_error`` frame and the socket is closed with 1011 (``PermissionDenied`` closes it with 4403).
* ``on_disconnect`` runs once for every socket that passed the permission check, whatever ended it: a normal
  close, a client that vanished, an exception that escaped the consumer, a failed ``on_connect``. It runs after
  the socket left its groups; what it issues with ``command()`` (or returns) goes to the group the socket was in
  (e.g. "ann left"), not to the gone socket. ``consumer.close_code`` holds the close code when the client sent
  one. Its exceptions are logged, never propagated.
"""
from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence
from typing import Any

from channels.db import database_sync_to_async
from django.core.exceptions import ImproperlyConfigured, PermissionDenied

from ..core import conf, protocol
from ..core.binding import Binder
from ..core.commands import collecting, stop_collecting
from ..core.logs import fields
from ..core.permissions import describe_user
from ..stats import counters
from ..delivery.publishing import apublish
from .base import Connection, Feature, Option, Options, Spec

logger = logging.getLogger("hypergen_ws")

CLOSE_INTERNAL_ERROR = protocol.CLOSE_INTERNAL_ERROR


#: The ``@consumer`` options this feature reads, with their defaults (``hypergen_ws.features``).
OPTIONS: dict[str, Option] = {}
#: What ``@consumer`` exposes about this feature while it is off (``declares()`` says it while on).
EXPOSES: dict[str, Any] = {}


def configure(options: Options) -> HooksFeature:
    """Always on: hooks are registered after ``@consumer`` ran (``@send_message.on_connect``)."""
    return HooksFeature()


class HooksFeature(Feature):
    """Runs the consumer's ``on_connect`` and ``on_disconnect`` hooks."""

    name = "hooks"

    async def connected(self, conn: Connection) -> None:
        await connected(conn)

    async def disconnected(self, conn: Connection) -> None:
        if conn.state.opened:
            await disconnected(conn, list(conn.state.last_groups))


class Hook:
    """One connect or disconnect hook, its signature checked once, when it is registered."""

    def __init__(self, func: Callable[..., Any], name: str, url_kwarg_names: Sequence[str], kind: str) -> None:
        if not callable(func):
            raise ImproperlyConfigured(f"@{name}.{kind} decorates a function, not {func!r}.")
        where = f"@{name}.{kind} on {func.__module__}.{func.__qualname__}"
        self.func = func
        self.kind = kind
        self.binder = Binder(func, url_kwarg_names, where)
        required = [p.name for p in self.binder.browser_params if p.default is p.empty]
        if required:
            kwargs = "".join(f", {k}" for k in url_kwarg_names)
            raise ImproperlyConfigured(
                f"{where} takes no browser arguments, but {', '.join(map(repr, required))} has no default. "
                f"Write def {func.__name__}(consumer, request{', *' + kwargs if kwargs else ''}): ..."
            )
        self.is_async = asyncio.iscoroutinefunction(func)
        self._call = func if self.is_async else database_sync_to_async(func)

    async def __call__(self, instance: Connection) -> Any:
        args, kwargs = self.binder.bind(instance, instance.request, [], instance.url_kwargs)
        return await self._call(*args, **kwargs)


async def _run(spec: Spec, hooks: list[Hook], instance: Connection) -> list[list[Any]]:
    commands, token = collecting()
    try:
        for hook in hooks:
            commands.extend(spec.result_commands(await hook(instance)))
    finally:
        stop_collecting(token)
    return list(commands)


async def connected(instance: Connection) -> None:
    """Run the ``on_connect`` hooks of a just accepted socket; their commands become its first frame.

    Called before the socket's outbox starts, so the frame goes ahead of group frames queued meanwhile.
    """
    spec = instance.spec
    if not spec.connect_hooks:
        return
    try:
        commands = await _run(spec, spec.connect_hooks, instance)
    except PermissionDenied as exc:
        logger.warning("Refused a websocket to %s (close %s, permission denied) for %s: on_connect raised "
                       "PermissionDenied(%r).", spec.label, protocol.CLOSE_PERMISSION_DENIED,
                       describe_user(instance.scope.get("user")), str(exc),
                       extra=fields("on_connect_refused", consumer=spec.label, state=instance.state,
                                    code=protocol.CLOSE_PERMISSION_DENIED))
        counters.event(counters.REFUSED, spec.label, protocol.CLOSE_PERMISSION_DENIED)
        instance.outbox.push_first({"type": "websocket.send", "text": protocol.error_frame(
            protocol.PERMISSION_DENIED, str(exc) or f"You may not connect to {spec.label}.")})
        instance.outbox.push({"type": "websocket.close", "code": protocol.CLOSE_PERMISSION_DENIED})
        return
    except Exception as exc:
        logger.exception("Error in on_connect of consumer %s", spec.label,
                         extra=fields("on_connect_error", consumer=spec.label, state=instance.state,
                                      code=protocol.SERVER_ERROR))
        counters.event(counters.ERROR, spec.label, protocol.SERVER_ERROR)
        detail = f"{type(exc).__name__}: {exc}" if conf.error_details() else "Internal server error."
        instance.outbox.push_first({"type": "websocket.send",
                                    "text": protocol.error_frame(protocol.SERVER_ERROR, detail)})
        instance.outbox.push({"type": "websocket.close", "code": CLOSE_INTERNAL_ERROR})
        return
    if commands:
        text = protocol.commands_frame(commands)
        counters.sent(spec.label, text)
        instance.outbox.push_first({"type": "websocket.send", "text": text})


async def disconnected(instance: Connection, groups: list[str]) -> None:
    """Run the ``on_disconnect`` hooks; publish what they issued to the first of ``groups``. Never raises."""
    spec = instance.spec
    if not spec.disconnect_hooks:
        return
    commands: list[list[Any]] = []
    for hook in spec.disconnect_hooks:
        try:
            commands.extend(await _run(spec, [hook], instance))
        except Exception:
            logger.exception("Error in on_disconnect of consumer %s (%s)", spec.label, hook.func.__qualname__,
                             extra=fields("on_disconnect_error", consumer=spec.label, state=instance.state))
    if commands and groups:
        try:
            await apublish(groups[0], protocol.commands_frame(commands))
        except Exception:
            logger.exception("Publishing what on_disconnect of %s issued failed", spec.label,
                             extra=fields("on_disconnect_publish_failed", consumer=spec.label, group=groups[0],
                                          state=instance.state))
