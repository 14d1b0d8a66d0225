"""The pytest side of hypergen_ws.testing: the fixtures (entry point ``pytest11``) and the opt-in plugin.

The runs here are pytest runs of their own, in a subprocess, on test files written for them (``pytester``).
"""
from __future__ import annotations

import pytest

from hypergen_ws.testing import fixtures
from tests.support.servers import REPO_ROOT

HISTORY_TESTS = """
from hypergen_ws import get_history, group_send

GROUP = "hgws.tests.isolated"


def test_a_publishes_with_history():
    group_send(GROUP, "left behind", history=5)
    assert len(get_history(GROUP)) == 1


def test_b_starts_clean():
    assert get_history(GROUP) == []
"""

FIXTURE_TESTS = """
import pytest
from channels.routing import URLRouter

from hypergen_ws import agroup_send, autoconsumers, group_send
from testproject.notifications.consumers import listen
from tests import sample_consumers


@pytest.fixture
def hgws_application():
    return URLRouter(autoconsumers(sample_consumers))


def test_published(hgws_published):
    group_send(listen.group_name(), {"n": 1})
    hgws_published.assert_published(listen.group_name(), data={"n": 1})


@pytest.mark.django_db(transaction=True)
async def test_communicator(hgws_communicator):
    async with hgws_communicator(sample_consumers.echo, room="plugin") as comm:
        assert (await comm.call("hi")).commands == [["hypergen.append", "messages", "<li>hi</li>"]]
    async with hgws_communicator(sample_consumers.guarded) as comm:
        assert comm.close_code == 4401


async def test_communicator_without_database_access(hgws_communicator):
    pass


@pytest.mark.django_db
async def test_communicator_inside_the_tests_transaction(hgws_communicator):
    pass
"""


@pytest.fixture
def inner(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> pytest.Pytester:
    """A directory for a pytest run of its own, with the test project importable and set up."""
    monkeypatch.setenv("PYTHONPATH", str(REPO_ROOT))
    monkeypatch.setenv("DJANGO_SETTINGS_MODULE", "testproject.settings")
    monkeypatch.delenv("PYTEST_DISABLE_PLUGIN_AUTOLOAD", raising=False)
    pytester.makeini("[pytest]\nasyncio_mode = auto\nasyncio_default_fixture_loop_scope = function\n")
    return pytester


def test_the_fixtures_are_loaded_through_the_entry_point(request: pytest.FixtureRequest) -> None:
    from importlib.metadata import entry_points

    [entry] = [ep for ep in entry_points(group="pytest11") if ep.value.startswith("hypergen_ws")]
    assert entry.name == entry.value == "hypergen_ws.testing.fixtures"
    assert request.config.pluginmanager.get_plugin("hypergen_ws.testing.fixtures") is fixtures


#: The inner runs keep the order of their files (test_b after test_a), with or without pytest-randomly.
IN_ORDER = ("-p", "no:cacheprovider", "-p", "no:randomly")


def test_without_the_plugin_nothing_is_reset_between_tests(inner: pytest.Pytester) -> None:
    inner.makepyfile(test_history=HISTORY_TESTS)
    result = inner.runpytest_subprocess(*IN_ORDER)
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines(["*test_b_starts_clean*"])


@pytest.mark.parametrize("how", ["-p", "conftest"])
def test_the_opt_in_plugin_resets_around_every_test(inner: pytest.Pytester, how: str) -> None:
    inner.makepyfile(test_history=HISTORY_TESTS)
    if how == "conftest":
        inner.makeconftest('pytest_plugins = ["hypergen_ws.testing"]\n')
        result = inner.runpytest_subprocess(*IN_ORDER)
    else:
        result = inner.runpytest_subprocess(*IN_ORDER, "-p", "hypergen_ws.testing")
    result.assert_outcomes(passed=2)


def test_the_fixtures_in_a_project_and_the_error_of_a_test_without_database_access(inner: pytest.Pytester) -> None:
    inner.makepyfile(test_fixtures=FIXTURE_TESTS)
    result = inner.runpytest_subprocess("-p", "no:cacheprovider", "-p", "hypergen_ws.testing")
    result.assert_outcomes(passed=2, errors=2)
    result.stdout.fnmatch_lines([  # pytest-django runs the tests in a transaction first
        "*ERROR at setup of test_communicator_without_database_access*",
        "*hgws_communicator needs database access: Channels closes stale database connections every time a "
        "consumer handles a message*Mark the test with @pytest.mark.django_db(transaction=True), or ask for the "
        "transactional_db fixture.*",
    ])
    result.stdout.fnmatch_lines([
        "*ERROR at setup of test_communicator_inside_the_tests_transaction*",
        "*hgws_communicator needs a transactional database: with @pytest.mark.django_db alone the test runs inside "
        "a transaction, and a consumer runs its database code in another thread*",
    ])


def test_with_plugin_autoloading_off_the_conftest_line_brings_the_fixtures(inner: pytest.Pytester,
                                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PYTEST_DISABLE_PLUGIN_AUTOLOAD", "1")
    inner.makepyfile(test_fixtures=FIXTURE_TESTS)
    plugins = ["-p", "no:cacheprovider", "-p", "pytest_django.plugin", "-p", "pytest_asyncio.plugin"]
    without = inner.runpytest_subprocess(*plugins)
    without.assert_outcomes(errors=4)
    without.stdout.fnmatch_lines(["*fixture 'hgws_published' not found*"])
    inner.makeconftest('pytest_plugins = ["hypergen_ws.testing"]\n')
    result = inner.runpytest_subprocess(*plugins)
    result.assert_outcomes(passed=2, errors=2)


def test_the_helpers_and_the_fixtures_type_import_without_pytest() -> None:
    """``from hypergen_ws.testing import CommunicatorFactory`` (for annotations) works where pytest is absent."""
    import os
    import subprocess
    import sys

    code = ("import sys; sys.modules['pytest'] = None\n"  # `import pytest` raises ImportError from here on
            "import django; django.setup()\n"
            "from hypergen_ws.testing import CommunicatorFactory, ConsumerCommunicator\n")
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "testproject.settings", "PYTHONPATH": str(REPO_ROOT)}
    result = subprocess.run([sys.executable, "-c", code + "print(CommunicatorFactory.__name__)"], env=env,
                            capture_output=True, text=True, timeout=60, cwd=REPO_ROOT)
    assert result.returncode == 0 and result.stdout.strip() == "CommunicatorFactory", result.stderr
    result = subprocess.run([sys.executable, "-c", code + "import hypergen_ws.testing.fixtures"], env=env,
                            capture_output=True, text=True, timeout=60, cwd=REPO_ROOT)
    assert result.returncode != 0 and "pytest" in result.stderr, "the fixtures module itself does need pytest"
