"""SameOriginValidator in front of channels' AuthMiddlewareStack fills the websocket's scope in one step."""
from __future__ import annotations

from typing import Any

import pytest
from channels.auth import AuthMiddlewareStack
from channels.sessions import CookieMiddleware

from hypergen_ws.security import SameOriginValidator

pytestmark = pytest.mark.django_db(transaction=True)


def _scope(cookie: str | None = None) -> dict[str, Any]:
    headers = [(b"host", b"testserver"), (b"origin", b"http://testserver")]
    if cookie is not None:
        headers.append((b"cookie", cookie.encode()))
    return {"type": "websocket", "path": "/ws/", "headers": headers, "scheme": "ws", "subprotocols": []}


async def _seen(app: Any, scope: dict[str, Any]) -> tuple[dict[str, Any], Any]:
    seen: dict[str, Any] = {}

    async def inner(scope: dict[str, Any], receive: Any, send: Any) -> None:
        seen.update(scope)
        seen["_send"] = send

    async def receive() -> dict[str, Any]:
        return {"type": "websocket.connect"}

    async def send(message: dict[str, Any]) -> None:
        pass

    validator = SameOriginValidator(app(inner))
    await validator(scope, receive, send)
    return seen, send


@pytest.mark.asyncio
async def test_an_anonymous_socket_without_a_session_cookie_gets_a_lazy_anonymous_user() -> None:
    from django.contrib.auth.models import AnonymousUser

    seen, send = await _seen(AuthMiddlewareStack, _scope())
    assert seen["cookies"] == {}
    assert seen["session"].session_key is None
    assert isinstance(seen["user"], AnonymousUser) and not seen["user"].is_authenticated
    assert seen["_send"] is send, "a websocket gets the server's own send"


@pytest.mark.asyncio
async def test_a_logged_in_session_cookie_gives_its_user_as_the_stack_does() -> None:
    from asgiref.sync import sync_to_async
    from django.contrib.auth.models import User
    from django.contrib.sessions.backends.db import SessionStore

    def login() -> str:
        user = User.objects.create_user("ada", password="pw")
        store = SessionStore()
        store["_auth_user_id"] = str(user.pk)
        store["_auth_user_backend"] = "django.contrib.auth.backends.ModelBackend"
        store["_auth_user_hash"] = user.get_session_auth_hash()
        store.create()
        assert store.session_key is not None
        return store.session_key

    key = await sync_to_async(login)()
    seen, _ = await _seen(AuthMiddlewareStack, _scope(f"sessionid={key}; other=1"))
    assert seen["cookies"] == {"sessionid": key, "other": "1"}
    assert seen["session"].session_key == key
    assert seen["user"].is_authenticated and seen["user"].get_username() == "ada"
    stack, _ = await _seen(lambda inner: _MyCookies(AuthMiddlewareStack(inner).inner), _scope(f"sessionid={key}"))
    assert stack["user"].get_username() == "ada", "the stack itself (not shortcut) finds the same user"


class _MyCookies(CookieMiddleware):  # type: ignore[misc]
    pass


def test_only_the_exact_stack_is_shortcut() -> None:
    async def inner(scope: Any, receive: Any, send: Any) -> None:
        pass

    assert SameOriginValidator(AuthMiddlewareStack(inner)).past_auth_stack is inner
    assert SameOriginValidator(_MyCookies(AuthMiddlewareStack(inner).inner)).past_auth_stack is None
