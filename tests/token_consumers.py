"""Consumers for the connection-token tests (tests/test_tokens.py), and the application that routes them as a
project's asgi.py does: SameOriginValidator(AuthMiddlewareStack(URLRouter(...)))."""
from __future__ import annotations

from channels.auth import AuthMiddlewareStack
from channels.routing import URLRouter

from hypergen_ws import autoconsumers, command, consumer
from hypergen_ws.security import SameOriginValidator


@consumer(perm="auth.view_user", app_label="tests")
def whoami(consumer, request, text=""):
    """Says who the caller is, and what its session and cookies are."""
    command("me", request.user.username, text, request.session.session_key, sorted(request.COOKIES))


@consumer(perm="auth.view_user", app_label="tests", cross_origin=True)
def anywhere(consumer, request):
    command("me", request.user.username)


@consumer(perm="auth.view_user", app_label="tests", cross_origin=["https://app.example.com"])
def app_only(consumer, request):
    command("me", request.user.username)


def anyone(token):
    """A TOKEN_AUTHENTICATOR (sync): ``user:<username>`` is that user."""
    from django.contrib.auth.models import User  # the models need the app registry
    if token.startswith("user:"):
        return User.objects.filter(username=token[5:]).first()
    return None


async def aanyone(token):
    """A TOKEN_AUTHENTICATOR (async), with an expiry."""
    from channels.db import database_sync_to_async
    user = await database_sync_to_async(anyone)(token)
    return None if user is None else (user, 4102444800.0)


application = SameOriginValidator(AuthMiddlewareStack(URLRouter(autoconsumers(__name__))))
