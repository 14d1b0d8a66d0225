"""The checks that read the project's code (hypergen_ws.code_checks): a ``@consumer`` in a module nothing imports
(W049), and one error per mistake when the consumers cannot be imported (E007, not E041 too)."""
from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from django.core.checks import run_checks

from hypergen_ws import code_checks, setup_checks

SOCKETS = '''from hypergen_ws import NO_PERM_REQUIRED, consumer


@consumer(perm=NO_PERM_REQUIRED)
def ping(consumer, request):
    return [["pong"]]
'''


@pytest.fixture
def app(tmp_path: Path, settings: Any) -> Iterator[Path]:
    """An installed app ``roomsapp`` in a fresh directory, whose files a test writes."""
    package = tmp_path / "roomsapp"
    package.mkdir()
    (package / "__init__.py").write_text("")
    sys.path.insert(0, str(tmp_path))
    try:
        settings.INSTALLED_APPS = [*settings.INSTALLED_APPS, "roomsapp"]
        yield package
    finally:
        settings.INSTALLED_APPS = [a for a in settings.INSTALLED_APPS if a != "roomsapp"]
        sys.path.remove(str(tmp_path))
        for name in [n for n in sys.modules if n == "roomsapp" or n.startswith("roomsapp.")]:
            del sys.modules[name]


def test_a_consumer_in_a_module_nothing_imports_is_reported(app: Path) -> None:
    (app / "sockets.py").write_text(SOCKETS)
    (app / "consumers").mkdir()
    (app / "consumers" / "__init__.py").write_text("")
    (app / "consumers" / "rooms.py").write_text(SOCKETS)
    warnings = code_checks.check_consumer_modules()
    assert [w.obj for w in warnings] == ["roomsapp.consumers.rooms", "roomsapp.sockets"]
    assert all(w.id == "hypergen_ws.W049" for w in warnings)
    assert warnings[1].msg == (
        "roomsapp/sockets.py defines a @consumer, but nothing imports roomsapp.sockets: autoconsumers() imports only "
        "the consumers and views modules of each installed app (roomsapp.consumers, roomsapp.views), so its "
        "consumers have no route and no label.")
    assert warnings[1].hint == ("Move them to roomsapp.consumers, or import the module there "
                                "('from . import sockets  # noqa: F401').")


def test_looking_up_a_consumer_of_a_module_nothing_imports_says_which_modules_are_searched(app: Path) -> None:
    """``manage.py hypergen_ws_publish --consumer``, the publish endpoint and the test helpers look consumers up by
    label: for one in ``roomsapp/sockets.py`` the error says where consumers are found, and how to be found."""
    from hypergen_ws.core import registry

    (app / "sockets.py").write_text(SOCKETS)
    [warning] = code_checks.check_consumer_modules()
    assert warning.id == "hypergen_ws.W049" and warning.obj == "roomsapp.sockets"
    with pytest.raises(LookupError) as excinfo:
        registry.get("roomsapp.ping")
    message = str(excinfo.value)
    assert message.startswith("No consumer is labelled 'roomsapp.ping'. Known consumers: ")
    assert message.endswith("Consumers are found in the consumers and views modules of the installed apps (e.g. "
                            "roomsapp.consumers); one defined in another module is found only once one of those "
                            "imports it.")


def test_an_imported_module_a_decorator_of_another_name_and_tests_are_not_reported(app: Path) -> None:
    (app / "sockets.py").write_text(SOCKETS)
    (app / "consumers.py").write_text("from . import sockets  # noqa: F401\n")
    (app / "tasks.py").write_text("from celery import shared_task as consumer\n\n\n@consumer\ndef job():\n    pass\n")
    (app / "tests.py").write_text(SOCKETS)
    assert code_checks.check_consumer_modules() == []


def test_consumers_that_cannot_be_imported_are_one_error_not_two(app: Path, settings: Any) -> None:
    """The mistake is E007's; asgi.py, which routes autoconsumers(), fails for the same reason: no E041 too."""
    (app / "consumers.py").write_text(SOCKETS.replace("@consumer(perm=NO_PERM_REQUIRED)",
                                                      '@consumer(perm=NO_PERM_REQUIRED, path="<room:slug>/")'))
    (app / "asgi.py").write_text("from channels.routing import URLRouter\nfrom hypergen_ws import autoconsumers\n\n"
                                 "application = URLRouter(autoconsumers())\n")
    settings.ASGI_APPLICATION = "roomsapp.asgi.application"
    ids = [message.id for message in run_checks()]
    assert ids.count("hypergen_ws.E007") == 1 and "hypergen_ws.E041" not in ids
    assert setup_checks.check_asgi_application() == []


def test_hypergen_ws_used_without_its_app_is_one_error_that_names_the_templates(settings: Any) -> None:
    from django.core.exceptions import ImproperlyConfigured

    from hypergen_ws import autoconsumers, installed

    assert installed.check_installed() == []
    settings.INSTALLED_APPS = [a for a in settings.INSTALLED_APPS if a != "hypergen_ws"]
    [error] = installed.check_installed()
    assert error.id == "hypergen_ws.E010" and "'hypergen_ws' is not in INSTALLED_APPS" in error.msg
    assert "chat/room.html" in error.msg and "({% load hypergen_ws %}), which Django cannot find" in error.msg
    assert error.hint == "Add 'hypergen_ws' to INSTALLED_APPS, after 'daphne' and 'channels' (see the quickstart)."
    assert "hypergen_ws.E010" in {m.id for m in run_checks()}, "registered once a public name was used"
    with pytest.raises(ImproperlyConfigured, match="'hypergen_ws' is not in INSTALLED_APPS: .*Add 'hypergen_ws'"):
        autoconsumers()
