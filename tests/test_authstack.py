"""SameOriginValidator in front of channels' AuthMiddlewareStack fills the websocket's scope in one step."""
from __future__ import annotations

import contextvars
from typing import Any

import pytest
from channels.auth import AuthMiddlewareStack
from channels.sessions import CookieMiddleware

from hypergen_ws.security import SameOriginValidator

pytestmark = pytest.mark.django_db(transaction=True)

#: What the applications the routing tests reach saw, in order.
_SEEN: contextvars.ContextVar[list[dict[str, Any]]] = contextvars.ContextVar("seen")


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


async def _route(routes: Any, path: str, shortcut: bool = True) -> list[dict[str, Any]]:
    from channels.routing import URLRouter

    stack = AuthMiddlewareStack(URLRouter(routes))
    validator = SameOriginValidator(stack if shortcut else _MyCookies(stack.inner))
    assert (validator.router is not None) is shortcut

    async def receive() -> dict[str, Any]:
        return {"type": "websocket.connect"}

    async def send(message: dict[str, Any]) -> None:
        pass

    seen: list[dict[str, Any]] = []
    scope = dict(_scope(), path=path, root_path="")
    token = _SEEN.set(seen)
    try:
        await validator(scope, receive, send)
    finally:
        _SEEN.reset(token)
    assert "path_remaining" not in scope and "url_route" not in scope, "the server's scope is not changed"
    return seen



def _app(name: str) -> Any:
    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        _SEEN.get().append({"app": name, "path_remaining": scope.get("path_remaining"),
                            "url_route": scope.get("url_route"), "anonymous": scope["user"].is_anonymous})
    return app


@pytest.mark.asyncio
async def test_the_validator_routes_as_urlrouter_does_in_the_same_copy_of_the_scope() -> None:
    from channels.routing import URLRouter
    from django.urls import path, re_path

    routes = [path("ws/other/", _app("other")), path("ws/<int:room>/", _app("room"), {"extra": 1}),
              re_path(r"^nested/", URLRouter([path("deep/<str:name>/", _app("deep"))]))]
    for url in ("/ws/7/", "/nested/deep/ada/", "/ws/other/"):
        shortcut, stack = await _route(routes, url), await _route(routes, url, shortcut=False)
        assert shortcut == stack and len(shortcut) == 1 and shortcut[0]["anonymous"], url
    assert (await _route(routes, "/ws/7/"))[0]["url_route"] == {"args": (), "kwargs": {"room": 7, "extra": 1}}
    with pytest.raises(ValueError, match="No route found for path 'ws/none/'"):
        await _route(routes, "/ws/none/")
    with pytest.raises(ValueError, match="No route found for path 'nested/none/'"):
        await _route(routes, "/nested/none/")


@pytest.mark.asyncio
async def test_a_route_whose_application_raises_resolver404_passes_to_the_next_as_in_urlrouter() -> None:
    from django.urls import path
    from django.urls.exceptions import Resolver404

    async def refuses(scope: dict[str, Any], receive: Any, send: Any) -> None:
        _SEEN.get().append({"app": "refuses"})
        raise Resolver404("not here")

    routes = [path("ws/<int:room>/", refuses), path("ws/<int:room>/", _app("next"))]
    shortcut, stack = await _route(routes, "/ws/3/"), await _route(routes, "/ws/3/", shortcut=False)
    assert [seen["app"] for seen in shortcut] == ["refuses", "next"] and shortcut == stack


@pytest.mark.asyncio
async def test_a_route_to_as_asgi_gets_its_consumer_made_with_the_initkwargs() -> None:
    from channels.consumer import AsyncConsumer
    from django.urls import path

    class Recorder(AsyncConsumer):  # type: ignore[misc]
        def __init__(self, flavour: str = "none") -> None:
            self.flavour = flavour

        async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
            _SEEN.get().append({"app": type(self).__name__, "flavour": self.flavour,
                                "url_route": scope["url_route"]})

    routes = [path("ws/<str:name>/", Recorder.as_asgi(flavour="mint"))]
    shortcut, stack = await _route(routes, "/ws/ada/"), await _route(routes, "/ws/ada/", shortcut=False)
    assert shortcut == stack == [{"app": "Recorder", "flavour": "mint",
                                  "url_route": {"args": (), "kwargs": {"name": "ada"}}}]
