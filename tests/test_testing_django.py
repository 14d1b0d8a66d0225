"""hypergen_ws.testing in Django's own test classes: TestCase and TransactionTestCase, sync and async tests."""
from __future__ import annotations

import pytest
from django.contrib.auth.models import Permission, User
from django.test import TestCase, TransactionTestCase

from hypergen_ws import group_send
from hypergen_ws.testing import ConsumerCommunicator, assert_published, capture_publishes, reset
from tests import sample_consumers as sc
from tests.support.servers import REPO_ROOT
from tests.wsutil import application


class TestCaseWithConsumers(TestCase):
    """TestCase: an async test runs in the test's thread and transaction, so the consumer sees its data."""

    ann: User

    @classmethod
    def setUpTestData(cls) -> None:
        cls.ann = User.objects.create_user("tc-ann")
        cls.ann.user_permissions.add(Permission.objects.get(content_type__app_label="auth", codename="view_user"))

    def setUp(self) -> None:
        reset()

    async def test_a_consumer_checks_the_permission_and_answers(self) -> None:
        async with ConsumerCommunicator(sc.guarded, user=self.ann, application=application) as comm:
            self.assertTrue(comm.connected)
            result = await comm.call("from a TestCase")
        self.assertEqual(result.commands, [["said", "tc-ann", "from a TestCase"]])

    def test_a_sync_test_captures_publishes(self) -> None:
        with capture_publishes() as published:
            group_send(sc.echo.group_name(room="tc"), {"n": 1})
        published.assert_published(sc.echo.group_name(room="tc"), data={"n": 1})


class TransactionTestCaseWithConsumers(TransactionTestCase):
    def setUp(self) -> None:
        reset()

    async def test_two_sockets_in_a_group(self) -> None:
        group = sc.echo.group_name(room="ttc")
        async with ConsumerCommunicator(sc.echo, application=application, room="ttc") as ann, \
                ConsumerCommunicator(sc.echo, application=application, room="ttc") as ben:
            with assert_published(group, commands=[["hypergen.append", "messages", "<li>hi</li>"]]):
                await ann.call("hi")
            self.assertEqual(await ben.receive_commands(), [["hypergen.append", "messages", "<li>hi</li>"]])

    async def test_a_denied_socket(self) -> None:
        async with ConsumerCommunicator(sc.guarded, application=application) as comm:
            self.assertFalse(comm.connected)
            self.assertEqual(comm.close_code, 4401)


FILE_DATABASE_TESTS = """
from django.test import TestCase, TransactionTestCase

from hypergen_ws.testing import ConsumerCommunicator, reset
from tests import sample_consumers as sc
from tests.wsutil import application


class InATransaction(TestCase):
    async def test_connect(self):
        async with ConsumerCommunicator(sc.echo, application=application, room="r"):
            pass


class Transactional(TransactionTestCase):
    def setUp(self):
        reset()

    async def test_connect(self):
        async with ConsumerCommunicator(sc.echo, application=application, room="r") as comm:
            assert (await comm.call("hi")).reply is not None
"""


def test_a_testcase_on_a_database_that_really_closes_gets_an_error_that_says_what_to_use(
        pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> None:
    """On a test database in a file (as on PostgreSQL), Channels' cleanup would close the TestCase's connection."""
    monkeypatch.setenv("PYTHONPATH", str(REPO_ROOT))
    monkeypatch.setenv("DJANGO_SETTINGS_MODULE", "testproject.settings")
    monkeypatch.setenv("HYPERGEN_WS_TEST_DB", str(pytester.path / "test.sqlite3"))
    pytester.makepyfile(test_file_database=FILE_DATABASE_TESTS)
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines([
        "*RuntimeError: The test runs inside a transaction of database 'default' (django.test.TestCase, or an "
        "atomic() block): Channels closes stale database connections every time a consumer handles a message*Use "
        "django.test.TransactionTestCase, or @pytest.mark.django_db(transaction=True).*",
        "*InATransaction::test_connect*",
    ])
