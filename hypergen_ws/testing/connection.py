"""How a test's socket reaches a consumer: the application, the consumer, the user, the headers, and the errors a
test setup causes (docs/testing.rst)."""
from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any, cast

from asgiref.typing import ASGIApplication
from channels.routing import get_default_application
from django.core.exceptions import ImproperlyConfigured
from django.db import connections
from django.utils.functional import LazyObject

from ..backends.routers import protocol_mapping
from ..core import registry

if TYPE_CHECKING:
    from django.contrib.auth.base_user import AbstractBaseUser
    from django.contrib.auth.models import AnonymousUser

    from ..decorators import Consumer

    User = AbstractBaseUser | AnonymousUser
    _UserProxy = LazyObject[User]
else:
    _UserProxy = LazyObject

__all__ = ["GivenUser", "Headers", "header_list", "resolve", "transaction_closed_by_consumers",
           "websocket_application"]

#: What Django's test client calls itself; ``setup_test_environment()`` adds it to ``ALLOWED_HOSTS``.
TEST_HOST = "testserver"
#: pytest-django's error for database access in a test without it.
DB_BLOCKED = "Database access not allowed"
DB_HELP = (
    "The consumer touched the database, and this test has no database access. A consumer closes stale database "
    "connections around its sync code and before its async code (as Channels does), so it uses the database even "
    "when that code does not. Give the test database access: @pytest.mark.django_db(transaction=True) (transaction=True: the "
    "consumer runs its database code in another thread, which sees only committed data), or the "
    "transactional_db fixture."
)
IN_TRANSACTION = (
    "The test runs inside a transaction of database {alias!r} (django.test.TestCase, or an atomic() block): "
    "Channels closes stale database connections every time a consumer handles a message, which closes this one "
    "and breaks the test's transaction. Use django.test.TransactionTestCase, or "
    "@pytest.mark.django_db(transaction=True). (An in-memory SQLite test database ignores the close.)"
)

#: ``headers=``: a dict of names and values, or Channels' list of ``(name, value)`` pairs.
Headers = Mapping[str, str] | Iterable[tuple[bytes | str, bytes | str]]


class GivenUser(_UserProxy):
    """``scope["user"]`` for ``user=``: Channels' ``AuthMiddleware`` keeps a user already in the scope but writes
    the session's user into its ``_wrapped``; this proxy (what a consumer gets in production is one too) keeps
    the given user."""

    def __init__(self, user: User) -> None:
        self.__dict__["_wrapped"] = user

    def _setup(self) -> None:  # pragma: no cover - the user is set in __init__
        raise AssertionError("GivenUser has its user from the start")

    def __setattr__(self, name: str, value: Any) -> None:
        if name != "_wrapped":
            super().__setattr__(name, value)


def websocket_application() -> ASGIApplication:
    """The websocket part of ``ASGI_APPLICATION`` (the whole application when it is not a
    ``ProtocolTypeRouter``)."""
    try:
        application = get_default_application()
    except ImproperlyConfigured as exc:
        raise ImproperlyConfigured(
            f"{exc} ConsumerCommunicator connects through ASGI_APPLICATION: set it, or pass "
            "application=URLRouter(autoconsumers(...)).") from exc
    mapping = protocol_mapping(application)
    if mapping is not None:
        if "websocket" not in mapping:
            raise ImproperlyConfigured(
                "ASGI_APPLICATION has no 'websocket' entry; add 'websocket': "
                "AuthMiddlewareStack(URLRouter(websocket_urlpatterns)) to its ProtocolTypeRouter.")
        websocket: ASGIApplication = mapping["websocket"]
        return websocket
    return application  # type: ignore[no-any-return]  # channels has no type hints


def resolve(consumer: Consumer | str) -> Consumer:
    """A decorated consumer, or the one with that label (``"chat.send_message"``)."""
    found: object = consumer
    if isinstance(consumer, str):
        try:
            found = registry.get(consumer)
        except LookupError:
            registry.discover()  # the consumers of installed apps are imported on first use
            found = registry.get(consumer)
    # Checked by what it has: importing the decorator here would import Django's auth models before Django is set
    # up, when pytest loads the plugin.
    if callable(getattr(found, "reverse", None)) and hasattr(found, "consumer_class"):
        return cast("Consumer", found)
    raise TypeError(f"ConsumerCommunicator takes a @consumer function or its label like 'chat.send_message', not "
                    f"{consumer!r}.")


def transaction_closed_by_consumers() -> str | None:
    """The alias of a database whose connection, in the thread where consumers run sync code, is inside a
    transaction that Channels' connection cleanup would close; None when there is none."""
    for connection in connections.all(initialized_only=True):
        if not connection.in_atomic_block:
            continue
        if connection.vendor == "sqlite" and connection.is_in_memory_db():  # type: ignore[attr-defined]
            continue  # its close() does nothing
        return connection.alias
    return None


def header_list(given: Headers | None) -> list[tuple[bytes, bytes]]:
    items = given.items() if isinstance(given, Mapping) else (given or [])
    out: list[tuple[bytes, bytes]] = []
    for name, value in items:
        name_b = name.encode("latin-1") if isinstance(name, str) else name
        value_b = value.encode("latin-1") if isinstance(value, str) else value
        out.append((name_b.lower(), value_b))
    names = {name for name, _ in out}
    if b"host" not in names:
        out.append((b"host", TEST_HOST.encode()))
    if b"origin" not in names:
        out.append((b"origin", f"http://{TEST_HOST}".encode()))
    return out
