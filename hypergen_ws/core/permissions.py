"""Permission specs of ``@consumer(perm=...)``, compiled once into an async check.

A spec is a permission string (``"chat.can_chat"``), a list of them (all required, or any one with
``any_perm=True``), ``NO_PERM_REQUIRED``, or a callable ``(user, **url_kwargs) -> bool`` (sync or async) for
object-level checks. The check runs at connect, before the socket joins any group, and again before every call.
"""
from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable, Mapping
from enum import Enum
from typing import Any

from channels.db import database_sync_to_async
from django.core.exceptions import ImproperlyConfigured


class _NoPermRequired(Enum):
    NO_PERM_REQUIRED = "NO_PERM_REQUIRED"

    def __repr__(self) -> str:
        return "NO_PERM_REQUIRED"


NO_PERM_REQUIRED = _NoPermRequired.NO_PERM_REQUIRED
"""Pass as ``perm`` to let everyone, anonymous users included, connect and call."""


class _Missing(Enum):
    MISSING = "MISSING"


MISSING = _Missing.MISSING

Check = Callable[[Any, Mapping[str, Any]], Awaitable[bool]]


class Permission:
    """A compiled permission spec: ``await permission.allows(user, url_kwargs)``."""

    def __init__(self, spec: Any, any_perm: bool = False, *, where: str = "@consumer") -> None:
        self.spec = spec
        self.any_perm = any_perm
        self.missing = spec is MISSING
        #: Whether checking runs async code of the app (an ``async def`` callable); sync checks run in a worker
        #: thread through ``database_sync_to_async``, which closes stale database connections itself.
        self.is_async = callable(spec) and inspect.iscoroutinefunction(spec)
        self._check = self._compile(spec, any_perm, where)

    @property
    def public(self) -> bool:
        """True when no permission at all is required."""
        return self.spec is NO_PERM_REQUIRED

    def describe(self) -> str:
        """A one-line description for listings and logs."""
        if self.missing:
            return "MISSING (everyone is denied)"
        if self.public:
            return "NO_PERM_REQUIRED"
        if callable(self.spec):
            return f"callable {getattr(self.spec, '__qualname__', repr(self.spec))}"
        perms = [self.spec] if isinstance(self.spec, str) else list(self.spec)
        return (" or " if self.any_perm else " and ").join(perms)

    async def allows(self, user: Any, url_kwargs: Mapping[str, Any]) -> bool:
        """Whether ``user`` may connect to / call the consumer for ``url_kwargs``."""
        return await self._check(user, url_kwargs)

    @staticmethod
    def _compile(spec: Any, any_perm: bool, where: str) -> Check:
        if spec is MISSING:
            async def deny(user: Any, url_kwargs: Mapping[str, Any]) -> bool:
                return False

            return deny
        if spec is NO_PERM_REQUIRED:
            async def allow(user: Any, url_kwargs: Mapping[str, Any]) -> bool:
                return True

            return allow
        if callable(spec):
            if inspect.iscoroutinefunction(spec):
                async def call_async(user: Any, url_kwargs: Mapping[str, Any]) -> bool:
                    return bool(await spec(user, **url_kwargs))

                return call_async
            sync_check = database_sync_to_async(lambda user, kw: bool(spec(user, **kw)))

            async def call_sync(user: Any, url_kwargs: Mapping[str, Any]) -> bool:
                return bool(await sync_check(user, dict(url_kwargs)))

            return call_sync
        perms = [spec] if isinstance(spec, str) else spec
        if not isinstance(perms, (list, tuple)) or not perms or not all(isinstance(p, str) for p in perms):
            raise ImproperlyConfigured(
                f"{where}: perm={spec!r} is not a permission spec. Pass a permission string like 'chat.can_chat', "
                "a non-empty list of them, NO_PERM_REQUIRED, or a callable (user, **url_kwargs) -> bool."
            )
        for p in perms:
            if p.count(".") != 1 or not all(p.split(".")):
                raise ImproperlyConfigured(
                    f"{where}: permission {p!r} must look like '<app_label>.<codename>', e.g. 'chat.can_chat'."
                )
        perms = list(perms)

        def has(user: Any) -> bool:
            if not getattr(user, "is_authenticated", False):
                return False
            if any_perm:
                return any(user.has_perm(p) for p in perms)
            return bool(user.has_perms(perms))

        sync_has = database_sync_to_async(has)

        async def check(user: Any, url_kwargs: Mapping[str, Any]) -> bool:
            return bool(await sync_has(user))

        return check


def describe_user(user: Any) -> str:
    """Who a connection belongs to, for log lines: ``an anonymous user`` or ``user 'ann' (id 3)``."""
    if user is None or not getattr(user, "is_authenticated", False):
        return "an anonymous user"
    get_username = getattr(user, "get_username", None)
    name = get_username() if callable(get_username) else str(user)
    pk = getattr(user, "pk", None)
    return f"user {name!r}" + (f" (id {pk})" if pk is not None else "")
