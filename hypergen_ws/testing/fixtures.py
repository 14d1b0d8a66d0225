"""The pytest fixtures of ``hypergen_ws.testing``.

pytest loads this module through the ``pytest11`` entry point of the installed package, so the fixtures are there
in every project that has hypergen_ws installed; they do nothing unless a test asks for them. For a reset around
every test, and for runs with plugin autoloading off, load :mod:`hypergen_ws.testing.plugin` with
``-p hypergen_ws.testing`` (docs/testing.rst).
"""
from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING, Any

import pytest
from asgiref.typing import ASGIApplication
from django.conf import settings

from .communicator import DEFAULT_TIMEOUT, ConsumerCommunicator
from .connection import Headers
from .factory import CommunicatorFactory
from .isolation import reset
from .publishes import Publishes, capture_publishes

if TYPE_CHECKING:
    from ..decorators import Consumer

    from .connection import User

__all__ = ["CommunicatorFactory", "hgws_application", "hgws_communicator", "hgws_published", "hgws_reset"]

#: pytest-django's fixtures that give a test a transactional database.
TRANSACTIONAL_FIXTURES = ("transactional_db", "django_db_reset_sequences", "live_server")
NEEDS_DB = (
    "{name} needs database access: Channels closes stale database connections every time a consumer handles a "
    "message, which fails in a test without it (or, worse, only after another test opened a connection). Mark "
    "the test with @pytest.mark.django_db(transaction=True), or ask for the transactional_db fixture."
)
NEEDS_TRANSACTION = (
    "{name} needs a transactional database: with @pytest.mark.django_db alone the test runs inside a transaction, "
    "and a consumer runs its database code in another thread, which does not see what the test wrote (a user, "
    "a permission), so it fails or denies for no visible reason. Mark the test with "
    "@pytest.mark.django_db(transaction=True), or ask for the transactional_db fixture."
)


@pytest.fixture
def hgws_reset() -> Iterator[None]:
    """Run the test without hypergen_ws state of other tests in the process (:func:`hypergen_ws.testing.reset`),
    and leave none behind."""
    reset()
    yield
    reset()


@pytest.fixture
def hgws_application() -> ASGIApplication | None:
    """The websocket application ``hgws_communicator`` connects through; None (the default) means the websocket
    part of ``ASGI_APPLICATION``. Override this fixture in a conftest.py or test module to use another one."""
    return None


@pytest.fixture
def hgws_communicator(request: pytest.FixtureRequest, hgws_reset: None,
                      hgws_application: ASGIApplication | None) -> CommunicatorFactory:
    """A factory of :class:`~hypergen_ws.testing.ConsumerCommunicator`: the same arguments, with ``application``
    defaulting to the ``hgws_application`` fixture. Use each with ``async with``."""
    require_database(request, "hgws_communicator")

    def make(consumer: Consumer | str, *, user: User | None = None, application: ASGIApplication | None = None,
             headers: Headers | None = None, query: str | Mapping[str, Any] | None = None,
             timeout: float = DEFAULT_TIMEOUT, answer_pings: bool = True, **url_kwargs: Any) -> ConsumerCommunicator:
        return ConsumerCommunicator(consumer, user=user, application=application or hgws_application,
                                    headers=headers, query=query, timeout=timeout, answer_pings=answer_pings,
                                    **url_kwargs)

    return make


@pytest.fixture
def hgws_published(hgws_reset: None) -> Iterator[Publishes]:
    """Every publish the test makes, recorded: a :class:`~hypergen_ws.testing.Publishes` list with
    ``assert_published(group, data=..., commands=...)`` and ``assert_not_published(group)``."""
    with capture_publishes() as published:
        yield published


def require_database(request: pytest.FixtureRequest, name: str) -> None:
    """Fail the test at once, saying what to add, when pytest-django gives it no transactional database."""
    plugins = request.config.pluginmanager
    has_pytest_django = plugins.has_plugin("django") or plugins.has_plugin("pytest_django.plugin")  # autoload, -p
    if not has_pytest_django or not settings.configured or not settings.DATABASES:
        return
    if any(fixture in request.fixturenames for fixture in TRANSACTIONAL_FIXTURES):
        return
    marker = request.node.get_closest_marker("django_db")
    if marker is not None and (marker.kwargs.get("transaction") or (marker.args and marker.args[0])):
        return
    has_db = marker is not None or "db" in request.fixturenames
    pytest.fail((NEEDS_TRANSACTION if has_db else NEEDS_DB).format(name=name), pytrace=False)
