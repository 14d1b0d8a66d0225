"""hypergen_ws.client.PublishClient against a stub HTTP server (the live-server test uses a real one)."""
from __future__ import annotations

import pytest

from hypergen_ws.client import PublishClient, PublishError


def test_send_posts_the_group_and_data_with_the_bearer_key(stub):
    client = PublishClient(stub.url, "k1", timeout=5)
    assert client.send("hgws.room", {"text": "hé"}) == {"published": "message", "group": "g"}
    method, path, headers, body = stub.requests[-1]
    assert (method, path) == ("POST", "/hypergen_ws/publish/")
    assert headers["Authorization"] == "Bearer k1"
    assert headers["Content-Type"] == "application/json"
    assert body == {"group": "hgws.room", "data": {"text": "hé"}}


def test_command_and_consumer_label_variants(stub):
    client = PublishClient(stub.url, "k1")
    client.command("grp", [["alert", 1]])
    client.send_to_consumer("chat.send_message", "hi", kwargs={"room_name": "vip"})
    client.command_to_consumer("chat.send_message", [["x"]], kwargs={"room_name": "vip"})
    client.send_to_consumer("notifications.listen", None)
    assert [r[3] for r in stub.requests] == [
        {"group": "grp", "commands": [["alert", 1]]},
        {"consumer": "chat.send_message", "kwargs": {"room_name": "vip"}, "data": "hi"},
        {"consumer": "chat.send_message", "kwargs": {"room_name": "vip"}, "commands": [["x"]]},
        {"consumer": "notifications.listen", "kwargs": {}, "data": None},
    ]


def test_stats_gets_the_stats_endpoint(stub):
    stub.answer(200, {"pid": 1, "consumers": {}})
    assert PublishClient(stub.url, "k").stats() == {"pid": 1, "consumers": {}}
    assert stub.requests[-1][:2] == ("GET", "/hypergen_ws/stats/")


@pytest.mark.parametrize("suffix", ["", "publish/", "publish", "stats/"])
def test_url_may_name_the_include_point_or_an_endpoint(stub, suffix):
    base = stub.url.rstrip("/") if suffix == "" else stub.url + suffix
    client = PublishClient(base, "k")
    assert client.base_url == stub.url
    client.send("g", 1)
    assert stub.requests[-1][1] == "/hypergen_ws/publish/"


@pytest.mark.parametrize("status, error", [(400, 'Unknown field(s) \'x\''), (401, "No access key"),
                                           (403, "Wrong access key"), (404, "No consumer is labelled"),
                                           (413, "over the limit"), (503, "Publishing failed")])
def test_non_2xx_raises_with_the_servers_error_text(stub, status, error):
    stub.answer(status, {"error": error})
    with pytest.raises(PublishError) as info:
        PublishClient(stub.url, "k").send("g", 1)
    assert str(info.value) == f"{status}: {error}"
    assert info.value.status == status and info.value.error == error


def test_a_404_without_json_hints_at_the_url_include(stub):
    stub.answer(404, b"<h1>Not Found</h1>", "text/html")
    with pytest.raises(PublishError, match=r"answered 404 without an error message\. Is path\('hypergen_ws/'"):
        PublishClient(stub.url, "k").send("g", 1)


def test_a_2xx_that_is_not_json_says_so(stub):
    stub.answer(200, b"<html>login page</html>", "text/html")
    with pytest.raises(PublishError, match="not JSON; is it the hypergen_ws endpoint"):
        PublishClient(stub.url, "k").send("g", 1)


def test_unreachable_server_has_no_status():
    with pytest.raises(PublishError, match="Could not reach http://127.0.0.1:9/x/publish/") as info:
        PublishClient("http://127.0.0.1:9/x/", "k", timeout=2).send("g", 1)
    assert info.value.status is None


@pytest.mark.parametrize("url", ["127.0.0.1:8000/hypergen_ws/", "ftp://host/x/", "http:///x"])
def test_bad_url_is_refused_at_construction(url):
    with pytest.raises(ValueError, match="must be an http"):
        PublishClient(url, "k")


def test_empty_key_is_refused():
    with pytest.raises(ValueError, match="key is empty"):
        PublishClient("http://127.0.0.1/", "")


def test_data_that_is_not_json_fails_before_sending(stub):
    with pytest.raises(TypeError, match="must be JSON"):
        PublishClient(stub.url, "k").send("g", {1, 2})
    with pytest.raises(TypeError, match="must be JSON"):
        PublishClient(stub.url, "k").send("g", float("nan"))
    assert stub.requests == []
