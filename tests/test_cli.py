"""``python -m hypergen_ws`` (hypergen_ws.cli, hypergen_ws.__main__) against a stub HTTP server."""
from __future__ import annotations

import io
import json
import re
import subprocess
import sys

import pytest

from hypergen_ws.cli import EXIT_OK, EXIT_REFUSED, EXIT_UNREACHABLE, EXIT_USAGE, KEY_ENV, main, parse_kwargs


def run(*argv: str, stdin: str = "") -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = main(list(argv), stdout=out, stderr=err, stdin=io.StringIO(stdin))
    return code, out.getvalue(), err.getvalue()


def test_publish_data_to_a_group(stub):
    code, out, err = run("publish", "--url", stub.url, "--key", "k", "--group", "hgws.x", "--data", '{"a": 1}')
    assert (code, err) == (EXIT_OK, "")
    assert out == "Published message to group g.\n"
    assert stub.requests[-1][2]["Authorization"] == "Bearer k"
    assert stub.requests[-1][3] == {"group": "hgws.x", "data": {"a": 1}}


def test_publish_commands_to_a_consumer_with_kwargs_and_the_key_from_the_environment(stub, monkeypatch):
    monkeypatch.setenv(KEY_ENV, "from-env")
    code, _, _ = run("publish", "--url", stub.url, "--consumer", "chat.send_message", "--kwarg", "room_name=vip",
                     "--kwarg", "n=a=b", "--commands", '[["alert", "hi"]]')
    assert code == EXIT_OK
    _, _, headers, body = stub.requests[-1]
    assert headers["Authorization"] == "Bearer from-env"
    assert body == {"consumer": "chat.send_message", "kwargs": {"room_name": "vip", "n": "a=b"},
                    "commands": [["alert", "hi"]]}


def test_data_from_stdin(stub):
    code, _, _ = run("publish", "--url", stub.url, "--key", "k", "--group", "g", "--data", "-", stdin='"hi"\n')
    assert code == EXIT_OK and stub.requests[-1][3] == {"group": "g", "data": "hi"}


def test_refused_request_prints_the_servers_error_and_exits_1(stub):
    stub.answer(403, {"error": "Wrong access key: it is not one of ..."})
    code, out, err = run("publish", "--url", stub.url, "--key", "bad", "--group", "g", "--data", "1")
    assert code == EXIT_REFUSED and out == ""
    assert err == "error: 403: Wrong access key: it is not one of ...\n"


def test_unreachable_server_exits_3():
    code, _, err = run("publish", "--url", "http://127.0.0.1:9/", "--key", "k", "--group", "g", "--data", "1",
                       "--timeout", "2")
    assert code == EXIT_UNREACHABLE and "Could not reach" in err


@pytest.mark.parametrize("argv, fragment", [
    (["--group", "g", "--data", "{bad"], "--data is not valid JSON"),
    (["--group", "g", "--data", "hi"], "A plain string needs JSON quotes too"),
    (["--group", "g", "--commands", '{"a": 1}'], "--commands must be a JSON list"),
    (["--group", "g", "--kwarg", "a=b", "--data", "1"], "--kwarg goes with --consumer"),
    (["--consumer", "c.d", "--kwarg", "novalue", "--data", "1"], "must look like NAME=VALUE"),
    (["--consumer", "c.d", "--kwarg", "a=1", "--kwarg", "a=2", "--data", "1"], "--kwarg a is given twice"),
])
def test_usage_errors_exit_2_and_say_what_to_fix(stub, argv, fragment):
    code, _, err = run("publish", "--url", stub.url, "--key", "k", *argv)
    assert code == EXIT_USAGE and fragment in err
    assert stub.requests == []


def test_missing_key_and_bad_url_exit_2(stub, monkeypatch):
    monkeypatch.delenv(KEY_ENV, raising=False)
    code, _, err = run("publish", "--url", stub.url, "--group", "g", "--data", "1")
    assert code == EXIT_USAGE and f"pass --key KEY or set the environment variable {KEY_ENV}" in err
    code, _, err = run("publish", "--url", "localhost:8000", "--key", "k", "--group", "g", "--data", "1")
    assert code == EXIT_USAGE and "must be an http(s) URL" in err


@pytest.mark.parametrize("argv", [[], ["publish"], ["publish", "--url", "http://x/", "--data", "1"],
                                  ["publish", "--url", "http://x/", "--group", "g"],
                                  ["publish", "--url", "http://x/", "--group", "g", "--consumer", "c", "--data", "1"]])
def test_argparse_usage_errors_exit_2(argv, capsys):
    with pytest.raises(SystemExit) as info:
        main(argv)
    assert info.value.code == EXIT_USAGE
    assert "usage:" in capsys.readouterr().err


def test_stats_table_and_json(stub):
    snapshot = {"scope": "process", "rates": {"messages_in": 0, "messages_out": 1.5},
                "processes": [{"id": "web1:7", "host": "web1", "pid": 7, "uptime": 3.0, "beat": 0}],
                "totals": {"connections": 2, "messages_out": 5},
                "consumers": {"chat.send_message": {"connections": 2, "messages_out": 5}},
                "groups": {"hgws.chat.send_message.room_name.vip": {"connections": 2, "messages_out": 5}},
                "events": {"refusals": {"chat.send_message": {"4403": 1}}}}
    stub.answer(200, snapshot)
    code, out, _ = run("stats", "--url", stub.url, "--key", "k")
    assert code == EXIT_OK
    assert "process 7 on web1" in out and "chat.send_message" in out and "hgws.chat.send_message.room_name.vip" in out
    assert "1.5 msgs/s out" in out
    assert re.search(r"refusals\s+chat.send_message\s+4403\s+1", out), out
    code, out, _ = run("stats", "--url", stub.url, "--key", "k", "--json")
    assert json.loads(out) == snapshot
    assert stub.requests[-1][:2] == ("GET", "/hypergen_ws/stats/")


def test_stats_of_a_cluster_per_process(stub):
    row = {"consumers": {"a.b": {"connections": 1}}, "groups": {}, "events": {}, "totals": {"connections": 1}}
    stub.answer(200, {"scope": "cluster", "rates": {}, "totals": {"connections": 2}, "consumers": {}, "groups": {},
                      "events": {}, "processes": [{"id": "web1:7:aa", "pid": 7, "uptime": 9, "beat": 1.5, **row},
                                                  {"id": "web2:8:bb", "pid": 8, "uptime": 9, "beat": 0.5, **row}]})
    code, out, _ = run("stats", "--url", stub.url, "--key", "k", "--per-process")
    assert code == EXIT_OK
    assert "cluster: 2 live processes" in out
    assert "---- web1:7:aa ----" in out and "---- web2:8:bb ----" in out
    assert stub.requests[-1][:2] == ("GET", "/hypergen_ws/stats/?per_process=1")


def test_parse_kwargs():
    assert parse_kwargs(["a=1", "b=", "c=x=y"]) == {"a": "1", "b": "", "c": "x=y"}


def test_python_dash_m_runs_without_django_settings(stub):
    env = {"PATH": "/usr/bin:/bin", KEY_ENV: "k"}
    result = subprocess.run([sys.executable, "-m", "hypergen_ws", "publish", "--url", stub.url, "--group", "g",
                             "--data", "[1]"], capture_output=True, text=True, env=env, timeout=30,
                            cwd=str(__import__("pathlib").Path(__file__).resolve().parent.parent))
    assert result.returncode == 0, result.stderr
    assert result.stdout == "Published message to group g.\n"
    assert stub.requests[-1][3] == {"group": "g", "data": [1]}
