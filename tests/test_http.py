"""The HTTP publish and stats endpoints (hypergen_ws.http, hypergen_ws.urls)."""
from __future__ import annotations

import json

import pytest
from django.test import AsyncClient

from hypergen_ws import http as endpoint
from hypergen_ws.core import credentials
from hypergen_ws.testing import Publishes
from hypergen_ws.testing.fixtures import CommunicatorFactory
from tests import feature_consumers as fc
from tests import sample_consumers as sc  # noqa: F401  (registers tests.custom_group for the 400 case)

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.urls("tests.http_urls")]

KEY = "first-key-0123456789abcdef"
NEW_KEY = "rotated-key-0123456789abcdef"
URL = "/hypergen_ws/publish/"
STATS_URL = "/hypergen_ws/stats/"
LOBBY = fc.raw_json.group_name(room="lobby")


@pytest.fixture(autouse=True)
def _keys(settings):
    settings.HYPERGEN_WS = {"PUBLISH_KEYS": [KEY, NEW_KEY]}


async def post(body, *, key: str | None = KEY, raw: bytes | None = None, **headers):
    client = AsyncClient(enforce_csrf_checks=True)
    if key is not None:
        headers.setdefault("Authorization", f"Bearer {key}")
    data = raw if raw is not None else json.dumps(body).encode()
    return await client.post(URL, data=data, content_type="application/json", headers=headers)


@pytest.fixture
def hgws_application():
    return fc.application


# ---- good requests ------------------------------------------------------------------------------------------
async def test_data_to_a_group_by_name_reaches_every_member_and_only_them(
        hgws_communicator: CommunicatorFactory, hgws_published: Publishes) -> None:
    async with hgws_communicator(fc.raw_json, room="lobby") as a, hgws_communicator(fc.raw_json, room="lobby") as b, \
            hgws_communicator(fc.raw_json, room="vip") as other:
        response = await post({"group": LOBBY, "data": {"text": "hi", "n": [1, 2]}})
        assert response.status_code == 200
        assert response.json() == {"published": "message", "group": LOBBY}
        hgws_published.assert_published(LOBBY, data={"text": "hi", "n": [1, 2]}, count=1)
        for comm in (a, b):
            assert await comm.receive() == {"type": "message", "data": {"text": "hi", "n": [1, 2]}}
        await other.assert_nothing()


async def test_commands_to_a_group_named_by_consumer_label_and_kwargs(
        hgws_communicator: CommunicatorFactory, hgws_published: Publishes) -> None:
    vip = fc.raw_json.group_name(room="vip")
    async with hgws_communicator(fc.raw_json, room="vip") as a, hgws_communicator(fc.raw_json, room="lobby") as lobby:
        response = await post({"consumer": "tests.raw_json", "kwargs": {"room": "vip"},
                               "commands": [["hypergen.append", "messages", "<li>hi</li>"]]})
        assert response.status_code == 200, response.json()
        assert response.json() == {"published": "commands", "group": vip}
        hgws_published.assert_published(vip, commands=[["hypergen.append", "messages", "<li>hi</li>"]])
        assert await a.receive_commands() == [["hypergen.append", "messages", "<li>hi</li>"]]
        await lobby.assert_nothing()


async def test_consumer_without_url_kwargs_and_null_data(hgws_communicator: CommunicatorFactory) -> None:
    async with hgws_communicator(fc.raw_text) as a:
        response = await post({"consumer": "tests.raw_text", "data": None})
        assert response.status_code == 200
        assert await a.receive() == {"type": "message", "data": None}


async def test_rotated_keys_are_both_accepted(hgws_published):
    for key in (KEY, NEW_KEY):
        response = await post({"group": LOBBY, "data": key}, key=key)
        assert response.status_code == 200, response.json()
    assert [record.data for record in hgws_published] == [KEY, NEW_KEY]


async def test_csrf_is_not_required(hgws_published):
    response = await post({"group": LOBBY, "data": 1}, HTTP_COOKIE="csrftoken=abc")
    assert response.status_code == 200


# ---- bad requests: each gets a JSON error, the right status, and publishes nothing --------------------------
BAD_BODIES = [
    (b"{not json", 400, "not valid JSON"),
    (b"", 400, "The body is empty"),
    (b"[1, 2]", 400, "must be a JSON object"),
    (b"\xff\xfe", 400, "not valid JSON"),
    (b"[" * 100000 + b"]" * 100000, 400, "too deeply"),
    ({"group": LOBBY, "data": 1, "priority": "high"}, 400, "Unknown field(s) 'priority'"),
    ({"data": 1}, 400, 'exactly one of "group"'),
    ({"group": LOBBY, "consumer": "tests.raw_json", "data": 1}, 400, 'exactly one of "group"'),
    ({"group": LOBBY, "kwargs": {}, "data": 1}, 400, '"kwargs" goes with "consumer"'),
    ({"group": "not a valid name!", "data": 1}, 400, "Invalid group name"),
    ({"group": 42, "data": 1}, 400, "must be a str"),
    ({"group": LOBBY}, 400, 'exactly one of "data"'),
    ({"group": LOBBY, "data": 1, "commands": []}, 400, 'exactly one of "data"'),
    ({"group": LOBBY, "commands": "alert"}, 400, "Commands must be a list of lists"),
    ({"group": LOBBY, "commands": [[1]]}, 400, "Command #0"),
    ({"consumer": ["tests.raw_json"], "data": 1}, 400, '"consumer" must be a consumer label'),
    ({"consumer": "tests.raw_json", "kwargs": ["vip"], "data": 1}, 400, '"kwargs" must be an object'),
    ({"consumer": "tests.raw_json", "data": 1}, 400, "takes the URL kwargs (room)"),
    ({"consumer": "tests.raw_json", "kwargs": {"room": "a", "x": 1}, "data": 1}, 400, "do not fit tests.raw_json"),
    ({"consumer": "tests.raw_json", "kwargs": {"room": None}, "data": 1}, 400,
     "room=None must be a string"),
    ({"consumer": "tests.raw_json", "kwargs": {"room": True}, "data": 1}, 400, "room=True must be a string"),
    ({"consumer": "tests.raw_json", "kwargs": {"room": ["vip"]}, "data": 1}, 400, "must be a string"),
    ({"consumer": "tests.raw_json", "kwargs": {"room": "a/b"}, "data": 1}, 400, "do not match the URL pattern"),
    ({"consumer": "tests.raw_json", "kwargs": {"room": ""}, "data": 1}, 400, "do not match the URL pattern"),
    ({"consumer": "tests.custom_group", "data": 1}, 400, 'publish to the group by name with "group"'),
    (b'{"group": "' + LOBBY.encode() + b'", "data": NaN}', 400, "NaN is not JSON"),
    ({"consumer": "chat.nope", "data": 1}, 404, "No consumer is labelled 'chat.nope'. Known consumers:"),
]


@pytest.mark.parametrize("body, status, fragment", BAD_BODIES)
async def test_bad_request_bodies(body, status, fragment, hgws_communicator, hgws_published):
    async with hgws_communicator(fc.raw_json, room="lobby") as listener:
        raw = body if isinstance(body, bytes) else None
        response = await post(body, raw=raw)
        assert response.status_code == status
        assert response["Content-Type"] == "application/json"
        assert fragment in response.json()["error"]
        hgws_published.assert_not_published()
        await listener.assert_nothing(0.05)


async def test_null_kwargs_never_reach_the_room_named_none(
        hgws_communicator: CommunicatorFactory, hgws_published: Publishes) -> None:
    """`null` is not a URL value: it is refused, where it used to be published to the room "None"."""
    async with hgws_communicator(fc.raw_json, room="None") as room_none:
        response = await post({"consumer": "tests.raw_json", "kwargs": {"room": None}, "data": "x"})
        assert response.status_code == 400
        hgws_published.assert_not_published()
        await room_none.assert_nothing()
        response = await post({"consumer": "tests.raw_json", "kwargs": {"room": "None"}, "data": "x"})
        assert response.status_code == 200
        assert await room_none.receive() == {"type": "message", "data": "x"}


async def test_no_key_is_401_with_a_challenge(hgws_published):
    response = await post({"group": LOBBY, "data": 1}, key=None)
    assert response.status_code == 401
    assert response["WWW-Authenticate"].startswith("Bearer")
    assert "Authorization: Bearer <key>" in response.json()["error"]
    hgws_published.assert_not_published()


@pytest.mark.parametrize("header", ["Basic dXNlcjpwYXNz", "Bearer", "Bearer   ", KEY])
async def test_malformed_authorization_is_401(header, hgws_published):
    response = await post({"group": LOBBY, "data": 1}, key=None, Authorization=header)
    assert response.status_code == 401
    assert "Malformed Authorization header" in response.json()["error"]
    hgws_published.assert_not_published()


@pytest.mark.parametrize("key", ["wrong", KEY + "x", KEY[:-1], KEY.upper(), "é"])
async def test_wrong_key_is_403(key, hgws_published):
    response = await post({"group": LOBBY, "data": 1}, key=key)
    assert response.status_code == 403
    assert "Wrong access key" in response.json()["error"]
    hgws_published.assert_not_published()


async def test_keys_are_compared_with_compare_digest_against_every_key(monkeypatch, hgws_published):
    compared = []
    real = credentials.hmac.compare_digest

    def spy(a, b):
        compared.append(a)
        return real(a, b)

    monkeypatch.setattr(credentials.hmac, "compare_digest", spy)  # behind the identity room, the keys are compared here
    assert (await post({"group": LOBBY, "data": 1}, key=KEY)).status_code == 200
    assert compared == [KEY.encode(), NEW_KEY.encode()], "a match on the first key must not skip the others"


async def test_no_key_configured_refuses_everything(settings, hgws_published):
    settings.HYPERGEN_WS = {}
    response = await post({"group": LOBBY, "data": 1}, key=KEY)
    assert response.status_code == 403
    assert "no access key is configured" in response.json()["error"]
    assert "PUBLISH_KEYS" in response.json()["error"]
    settings.HYPERGEN_WS = {"PUBLISH_KEYS": []}
    assert (await post({"group": LOBBY, "data": 1}, key="")).status_code == 403
    hgws_published.assert_not_published()


@pytest.mark.parametrize("keys", [KEY, [KEY, ""], [KEY, None]])
async def test_misconfigured_keys_are_a_500_that_says_so(settings, keys, hgws_published):
    settings.HYPERGEN_WS = {"PUBLISH_KEYS": keys}
    response = await post({"group": LOBBY, "data": 1}, key=KEY)
    assert response.status_code == 500
    assert "HYPERGEN_WS['PUBLISH_KEYS']" in response.json()["error"]
    hgws_published.assert_not_published()


@pytest.mark.parametrize("method", ["get", "put", "delete", "patch"])
async def test_wrong_method_is_405_with_allow(method, hgws_published):
    client = AsyncClient()
    response = await getattr(client, method)(URL, headers={"Authorization": f"Bearer {KEY}"})
    assert response.status_code == 405
    assert response["Allow"] == "POST"
    assert f"Method {method.upper()} is not allowed here; use POST" in response.json()["error"]
    hgws_published.assert_not_published()


async def test_body_over_the_limit_is_413(settings, hgws_published):
    settings.HYPERGEN_WS = {"PUBLISH_KEYS": [KEY], "PUBLISH_MAX_BODY_SIZE": 100}
    small = await post({"group": LOBBY, "data": "x"})
    assert small.status_code == 200
    hgws_published.clear()
    response = await post({"group": LOBBY, "data": "x" * 200})
    assert response.status_code == 413
    assert "over the limit of 100 bytes" in response.json()["error"]
    assert "PUBLISH_MAX_BODY_SIZE" in response.json()["error"]
    hgws_published.assert_not_published()


async def test_body_over_the_limit_without_trusting_content_length(settings, rf, hgws_published):
    settings.HYPERGEN_WS = {"PUBLISH_KEYS": [KEY], "PUBLISH_MAX_BODY_SIZE": 100}
    body = json.dumps({"group": LOBBY, "data": "x" * 200}).encode()
    request = rf.post(URL, data=body, content_type="application/json", headers={"Authorization": f"Bearer {KEY}"})
    request.META["CONTENT_LENGTH"] = "50"  # a lying header: the body is still read with a bound
    response = await endpoint.publish(request)
    assert response.status_code in (400, 413)
    hgws_published.assert_not_published()


async def test_channel_layer_failure_is_503(monkeypatch):
    async def broken(group, data):
        raise ConnectionError("redis is down")

    monkeypatch.setattr(endpoint, "agroup_send", broken)
    response = await post({"group": LOBBY, "data": 1})
    assert response.status_code == 503
    assert "ConnectionError: redis is down" in response.json()["error"]


# ---- stats --------------------------------------------------------------------------------------------------
async def test_stats_endpoint_needs_the_key_and_returns_the_snapshot(hgws_communicator):
    client = AsyncClient()
    assert (await client.get(STATS_URL)).status_code == 401
    assert (await client.get(STATS_URL, headers={"Authorization": "Bearer nope"})).status_code == 403
    async with hgws_communicator(fc.raw_json, room="lobby"):
        response = await client.get(STATS_URL, headers={"Authorization": f"Bearer {NEW_KEY}"})
        assert response.status_code == 200
        snapshot = response.json()
        assert set(snapshot) == {"scope", "time", "processes", "totals", "rates", "consumers", "groups", "events"}
        assert snapshot["scope"] == "process" and len(snapshot["processes"]) == 1
        assert snapshot["consumers"]["tests.raw_json"]["connections"] == 1
        assert snapshot["groups"][LOBBY]["connections"] == 1
        assert "consumers" not in snapshot["processes"][0]
        rows = (await client.get(STATS_URL + "?per_process=1",
                                 headers={"Authorization": f"Bearer {NEW_KEY}"})).json()
        assert rows["processes"][0]["groups"][LOBBY]["connections"] == 1
    bad = await client.get(STATS_URL + "?per_process=maybe", headers={"Authorization": f"Bearer {NEW_KEY}"})
    assert bad.status_code == 400 and "?per_process=1" in bad.json()["error"]
    posted = await client.post(STATS_URL, headers={"Authorization": f"Bearer {KEY}"})
    assert posted.status_code == 405 and posted["Allow"] == "GET, HEAD"


# ---- system checks ------------------------------------------------------------------------------------------
@pytest.mark.parametrize("keys, ids", [
    ([KEY, NEW_KEY], []), ([], []), (KEY, ["hypergen_ws.E020"]), ([KEY, ""], ["hypergen_ws.E020"]),
    ([KEY, 3], ["hypergen_ws.E020"]), (["short"], ["hypergen_ws.W021"]),
])
def test_publish_keys_check(settings, keys, ids):
    from hypergen_ws.checks import check_publish_keys

    settings.HYPERGEN_WS = {"PUBLISH_KEYS": keys}
    assert [message.id for message in check_publish_keys()] == ids
