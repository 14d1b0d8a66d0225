"""``manage.py hypergen_ws_publish``: publishing in-process through the channel layer."""
from __future__ import annotations

import io

import pytest
from asgiref.sync import sync_to_async
from django.core.management import call_command
from django.core.management.base import CommandError

from hypergen_ws.testing import ConsumerCommunicator
from tests import feature_consumers as fc
from tests import sample_consumers  # noqa: F401  (registers tests.custom_group)

pytestmark = pytest.mark.django_db(transaction=True)


def publish(*args: str) -> tuple[str, str]:
    out, err = io.StringIO(), io.StringIO()
    call_command("hypergen_ws_publish", *args, stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()


def test_in_memory_layer_is_an_error_because_other_processes_are_out_of_reach():
    with pytest.raises(CommandError) as info:
        publish("--group", "hgws.x", "--data", '{"a": 1}')
    message = str(info.value)
    assert message.startswith("Nothing was published: the channel layer is the in-memory layer")
    assert "cannot reach websocket clients of a server running in another process" in message
    assert "python -m hypergen_ws publish --url" in message and "pass --in-process" in message


def test_in_memory_layer_exits_non_zero_from_the_command_line(tmp_path):
    import os
    import subprocess
    import sys

    from tests.support.servers import REPO_ROOT

    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "testproject.settings", "PYTHONPATH": str(REPO_ROOT)}
    env.pop("REDIS_URL", None)
    result = subprocess.run([sys.executable, "manage.py", "hypergen_ws_publish", "--group", "hgws.x", "--data", "1"],
                            cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=60)
    assert result.returncode == 1
    assert "Published" not in result.stdout
    assert "CommandError: Nothing was published" in result.stderr


async def test_in_process_publishes_to_this_process_on_purpose():
    async with ConsumerCommunicator(fc.raw_json, application=fc.application, room="here") as a:
        out, err = await sync_to_async(publish)("--consumer", "tests.raw_json", "--kwarg", "room=here",
                                                "--commands", '[["alert", "in process"]]', "--in-process")
        assert out == f"Published commands to group {fc.raw_json.group_name(room='here')}.\n"
        assert "in-memory layer only (--in-process)" in err
        assert await a.receive() == {"type": "commands", "commands": [["alert", "in process"]]}


@pytest.mark.parametrize("args, fragment", [
    (["--consumer", "tests.nope", "--data", "1"], "No consumer is labelled 'tests.nope'"),
    (["--consumer", "tests.raw_json", "--data", "1"], "--kwarg values do not fit tests.raw_json"),
    (["--consumer", "tests.custom_group", "--data", "1"], "publish with --group instead"),
    (["--group", "bad name", "--data", "1"], "Invalid group name"),
    (["--group", "g", "--data", "{"], "--data is not valid JSON"),
    (["--group", "g", "--commands", "[1]"], "Command #0"),
    (["--group", "g", "--kwarg", "a=b", "--data", "1"], "--kwarg goes with --consumer"),
])
def test_errors_say_what_to_fix(args, fragment):
    with pytest.raises(CommandError) as info:
        publish(*args)
    assert fragment in str(info.value)


async def test_through_redis_the_command_reaches_websocket_clients(redis_layer):
    async with (ConsumerCommunicator(fc.raw_json, application=fc.application, room="cmd") as a,
                ConsumerCommunicator(fc.raw_json, application=fc.application, room="elsewhere") as other):
        out, err = await sync_to_async(publish)("--consumer", "tests.raw_json", "--kwarg", "room=cmd",
                                                "--commands", '[["alert", "via redis"]]')
        assert out == f"Published commands to group {fc.raw_json.group_name(room='cmd')}.\n"
        assert err == "", "no in-memory warning with Redis"
        assert await a.receive() == {"type": "commands", "commands": [["alert", "via redis"]]}
        await other.assert_nothing(0.2)
