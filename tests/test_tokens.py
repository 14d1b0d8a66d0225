"""Connection tokens in one process (hypergen_ws.core.tokens, core.identity, features.tokens): how a client
presents one, what refuses one, the origin policy, revocation, refresh and expiry. On live servers:
tests/e2e/test_tokens_live.py."""
from __future__ import annotations

import base64
import logging

import pytest
from channels.db import database_sync_to_async
from channels.testing import WebsocketCommunicator
from django.conf import settings
from django.contrib.auth.models import Permission, User
from django.core import signing
from django.template import Context, Template
from django.test import AsyncClient, RequestFactory

from hypergen_ws import adisconnect_user, aissue_token, arecheck_permissions, issue_token
from hypergen_ws.core import tokens
from tests import token_consumers as tc
from tests.users import make_user

pytestmark = pytest.mark.django_db(transaction=True)

HOST = (b"host", b"testserver")
OWN = (b"origin", b"http://testserver")


def bearer(token: str) -> tuple[bytes, bytes]:
    return (b"authorization", f"Bearer {token}".encode())


def subprotocol_of(token: str) -> str:
    return "hypergen-ws.bearer." + base64.urlsafe_b64encode(token.encode()).decode().rstrip("=")


class Socket:
    """A raw websocket through ``tests.token_consumers.application`` (origin check, session and auth middleware)."""

    def __init__(self, consumer, *headers, query: str = "", subprotocols=None):
        self.comm = WebsocketCommunicator(tc.application, consumer.reverse() + (f"?{query}" if query else ""),
                                          headers=[HOST, *headers], subprotocols=subprotocols)
        self.subprotocol = None

    async def open(self) -> int | None:
        """Connect; None when it stays open, else the close code (HTTP 403 of the handshake: ``"handshake"``)."""
        accepted, detail = await self.comm.connect()
        if not accepted:
            return "handshake"
        self.subprotocol = detail
        if not self.comm.output_queue.empty():
            frame = await self.comm.receive_output()
            if frame["type"] == "websocket.close":
                return frame["code"]
            self.comm.output_queue.put_nowait(frame)
        return None

    async def call(self, *args):
        await self.comm.send_json_to({"args": list(args), "id": 1})
        frames = []
        while not frames or frames[-1].get("type") not in ("reply", "error"):
            frames.append(await self.comm.receive_json_from(timeout=5))
        return frames

    async def receive(self):
        return await self.comm.receive_json_from(timeout=5)

    async def closed(self) -> int:
        while True:
            message = await self.comm.receive_output(timeout=5)
            if message["type"] == "websocket.close":
                return message["code"]

    async def close(self):
        await self.comm.disconnect()


@database_sync_to_async
def login_session(user: User):
    """A saved session in which ``user`` is logged in, as Django's login() leaves it."""
    from django.contrib.auth import BACKEND_SESSION_KEY, HASH_SESSION_KEY, SESSION_KEY
    from django.contrib.sessions.backends.db import SessionStore
    store = SessionStore()
    store[SESSION_KEY] = str(user.pk)
    store[BACKEND_SESSION_KEY] = "django.contrib.auth.backends.ModelBackend"
    store[HASH_SESSION_KEY] = user.get_session_auth_hash()
    store.save()
    return store


async def viewer(name: str) -> User:
    return await make_user(name, "auth.view_user")


# ---- the token itself -------------------------------------------------------------------------------------------
async def test_a_token_is_signed_with_its_own_salt_and_fits_a_header_a_url_and_a_subprotocol():
    ann = await viewer("tk_ann")
    token = issue_token(ann, max_age=60)
    assert set(token) <= set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.")
    checked = tokens.check_token(token)
    assert checked.user_pk == ann.pk and checked.expires_at - checked.issued_at == pytest.approx(60, abs=0.01)
    # The same payload signed with Django's default salt is not a token.
    other = signing.Signer(sep=".").sign_object({"u": ann.pk, "t": 0, "e": 4102444800, "h": "x"})
    with pytest.raises(tokens.TokenRefused, match="forged"):
        tokens.check_token(other)
    with pytest.raises(tokens.TokenRefused, match="expired"):
        tokens.check_token(token, now=checked.expires_at + 1)
    assert tokens.check_token(await aissue_token(ann)).user_pk == ann.pk


async def test_issue_token_refuses_what_it_cannot_sign_for(settings):
    from django.contrib.auth.models import AnonymousUser
    with pytest.raises(ValueError, match="authenticated user"):
        issue_token(AnonymousUser())
    with pytest.raises(ValueError, match="positive number of seconds"):
        issue_token(await viewer("tk_neg"), max_age=-1)
    settings.HYPERGEN_WS = {"TOKEN_MAX_AGE": "long"}
    with pytest.raises(ValueError, match="TOKEN_MAX_AGE"):
        issue_token(await viewer("tk_bad"))


# ---- presenting it ----------------------------------------------------------------------------------------------
async def test_a_bearer_token_without_an_origin_opens_a_socket_as_its_user():
    ann = await viewer("tk_bear")
    socket = Socket(tc.whoami, bearer(issue_token(ann)))
    assert await socket.open() is None
    frames = await socket.call("hi")
    assert frames[0]["commands"][0][:3] == ["me", "tk_bear", "hi"]
    await socket.close()


async def test_without_an_origin_and_without_a_token_the_handshake_is_refused(caplog):
    socket = Socket(tc.whoami)
    assert await socket.open() == "handshake"
    assert "no Origin header" in caplog.text


@pytest.mark.parametrize("case", ["forged", "expired", "garbage", "malformed header", "other salt"])
async def test_a_bad_token_is_closed_with_4401_and_the_reason_in_the_log(case, caplog, monkeypatch):
    ann = await viewer(f"tk_bad_{case.replace(' ', '_')}")
    token = issue_token(ann)
    header = bearer(token)
    if case == "forged":
        header = bearer(token[:-3] + ("AAA" if not token.endswith("AAA") else "BBB"))
        reason = "forged"
    elif case == "expired":
        real = tokens.time.time
        monkeypatch.setattr(tokens.time, "time", lambda: real() - 7200)
        header = bearer(issue_token(ann, max_age=60))
        monkeypatch.setattr(tokens.time, "time", real)
        reason = "expired"
    elif case == "garbage":
        header = bearer("not-a-token")
        reason = "forged or not a hypergen_ws token"
    elif case == "malformed header":
        header = (b"authorization", token.encode())
        reason = "not 'Bearer <token>'"
    else:
        header = bearer(signing.Signer(salt="elsewhere", sep=".").sign_object({"u": ann.pk}))
        reason = "forged"
    caplog.set_level(logging.WARNING, "hypergen_ws")
    socket = Socket(tc.whoami, header)
    assert await socket.open() == 4401
    assert reason in caplog.text and "Refused a websocket" in caplog.text


async def test_a_token_issued_before_a_password_change_is_refused():
    ann = await viewer("tk_pw")
    token = issue_token(ann)
    socket = Socket(tc.whoami, bearer(token))
    assert await socket.open() is None  # open before the change
    await socket.close()

    @database_sync_to_async
    def change_password():
        user = User.objects.get(pk=ann.pk)
        user.set_password("another")
        user.save()
    await change_password()
    assert await Socket(tc.whoami, bearer(token)).open() == 4401
    assert await Socket(tc.whoami, bearer(issue_token(await database_sync_to_async(User.objects.get)(pk=ann.pk)))
                        ).open() is None


@pytest.mark.parametrize("fate", ["deleted", "inactive"])
async def test_a_token_of_a_deleted_or_inactive_user_is_refused(fate, caplog):
    ann = await viewer(f"tk_{fate}")
    token = issue_token(ann)
    if fate == "deleted":
        await database_sync_to_async(User.objects.filter(pk=ann.pk).delete)()
    else:
        await database_sync_to_async(User.objects.filter(pk=ann.pk).update)(is_active=False)
    assert await Socket(tc.whoami, bearer(token)).open() == 4401
    assert ("does not exist" if fate == "deleted" else "is inactive") in caplog.text


async def test_a_token_for_a_never_acts_as_the_session_of_b():
    ann, bob = await viewer("tk_a"), await viewer("tk_b")
    bobs = await login_session(bob)
    cookie = (b"cookie", f"{settings.SESSION_COOKIE_NAME}={bobs.session_key}; csrftoken=x".encode())
    socket = Socket(tc.whoami, OWN, cookie, bearer(issue_token(ann)))
    assert await socket.open() is None
    name, _, session_key, cookies = (await socket.call())[0]["commands"][0][1:]
    assert name == "tk_a" and session_key != bobs.session_key and cookies == []
    await socket.close()


async def test_the_subprotocol_form_is_selected_in_the_accept():
    ann = await viewer("tk_sub")
    socket = Socket(tc.whoami, OWN, subprotocols=["hypergen-ws", subprotocol_of(issue_token(ann))])
    assert await socket.open() is None
    assert socket.subprotocol == "hypergen-ws"
    assert (await socket.call())[0]["commands"][0][1] == "tk_sub"
    await socket.close()
    refused = Socket(tc.whoami, OWN, subprotocols=["hypergen-ws", "hypergen-ws.bearer.!!"])
    assert await refused.open() == 4401
    assert refused.subprotocol == "hypergen-ws"  # selected in the refusing accept too: a browser sees the 4401


async def test_a_query_string_token_needs_the_setting(settings, caplog):
    ann = await viewer("tk_query")
    query = f"hgws_token={issue_token(ann)}"
    assert await Socket(tc.whoami, query=query).open() == 4401
    assert "TOKEN_QUERY_STRING" in caplog.text
    settings.HYPERGEN_WS = {"TOKEN_QUERY_STRING": True}
    socket = Socket(tc.whoami, query=query)
    assert await socket.open() is None
    assert (await socket.call())[0]["commands"][0][1] == "tk_query"
    await socket.close()


# ---- origins ----------------------------------------------------------------------------------------------------
FOREIGN = (b"origin", b"https://evil.example.net")


async def test_a_cookie_from_a_foreign_origin_is_refused_and_a_token_only_where_the_consumer_allows_it():
    ann = await viewer("tk_cross")
    session = await login_session(ann)
    cookie = (b"cookie", f"{settings.SESSION_COOKIE_NAME}={session.session_key}".encode())
    assert await Socket(tc.anywhere, FOREIGN, cookie).open() == "handshake"
    token = issue_token(ann)
    assert await Socket(tc.whoami, FOREIGN, bearer(token)).open() == 4403
    assert await Socket(tc.app_only, FOREIGN, bearer(token)).open() == 4403
    allowed = Socket(tc.app_only, (b"origin", b"https://app.example.com"), bearer(token))
    assert await allowed.open() is None
    await allowed.close()
    anywhere = Socket(tc.anywhere, FOREIGN, subprotocols=["hypergen-ws", subprotocol_of(token)])
    assert await anywhere.open() is None
    assert (await anywhere.call())[0]["commands"] == [["me", "tk_cross"]]
    await anywhere.close()


def test_cross_origin_must_be_a_bool_or_a_list_of_origins():
    from django.core.exceptions import ImproperlyConfigured

    from hypergen_ws import consumer
    for bad in ("https://a.example", ["not an origin"], 3):
        with pytest.raises(ImproperlyConfigured, match="cross_origin"):
            consumer(perm="auth.view_user", app_label="tests", cross_origin=bad)(lambda consumer, request: None)


# ---- third-party tokens -----------------------------------------------------------------------------------------
@pytest.mark.parametrize("path", ["tests.token_consumers.anyone", "tests.token_consumers.aanyone"])
async def test_token_authenticator_takes_tokens_of_another_library(path, settings):
    await viewer("tk_ext")
    settings.HYPERGEN_WS = {"TOKEN_AUTHENTICATOR": path}
    socket = Socket(tc.whoami, bearer("user:tk_ext"))
    assert await socket.open() is None
    assert (await socket.call())[0]["commands"][0][1] == "tk_ext"
    await socket.close()
    assert await Socket(tc.whoami, bearer("user:nobody")).open() == 4401


# ---- revocation, refresh and expiry -----------------------------------------------------------------------------
async def test_disconnect_user_and_recheck_permissions_close_token_sockets():
    ann, bob = await viewer("tk_rev"), await viewer("tk_rev2")
    first, second = Socket(tc.whoami, bearer(issue_token(ann))), Socket(tc.whoami, bearer(issue_token(bob)))
    assert await first.open() is None and await second.open() is None
    await adisconnect_user(ann)
    assert await first.closed() == 4401
    assert (await second.call("bob stays"))[0]["commands"][0][1] == "tk_rev2"
    await database_sync_to_async(lambda: User.objects.get(pk=bob.pk).user_permissions.remove(
        Permission.objects.get(codename="view_user")))()
    await arecheck_permissions(bob)
    assert await second.closed() == 4403


@pytest.mark.parametrize("change", ["password", "deactivated", "deleted"])
async def test_an_open_token_socket_is_closed_when_its_user_changes_the_password_or_goes(change, settings, caplog):
    settings.HYPERGEN_WS = {"SESSION_CHECK_INTERVAL": 0.2}
    ann, bob = await viewer(f"tk_open_{change}"), await viewer(f"tk_stays_{change}")
    socket, other = Socket(tc.whoami, bearer(issue_token(ann))), Socket(tc.whoami, bearer(issue_token(bob)))
    assert await socket.open() is None and await other.open() is None

    @database_sync_to_async
    def apply():
        user = User.objects.get(pk=ann.pk)
        if change == "password":
            user.set_password("new one")
            user.save()
        elif change == "deactivated":
            User.objects.filter(pk=ann.pk).update(is_active=False)
        else:
            user.delete()
    await apply()
    assert await socket.closed() == 4401
    assert "no longer authenticates it" in caplog.text
    assert (await other.call("bob stays"))[0]["commands"][0][1] == f"tk_stays_{change}"
    await other.close()


async def test_a_logout_of_the_user_closes_its_token_sockets():
    from django.contrib.auth import logout
    from django.contrib.sessions.backends.db import SessionStore
    ann = await viewer("tk_logout")
    socket = Socket(tc.whoami, bearer(issue_token(ann)))
    assert await socket.open() is None
    session = await login_session(ann)

    @database_sync_to_async
    def log_out():
        request = RequestFactory().post("/logout/")
        request.user, request.session = ann, SessionStore(session_key=session.session_key)
        logout(request)
    await log_out()
    assert await socket.closed() == 4401


async def test_a_token_is_refreshed_by_a_frame_and_a_socket_whose_token_expires_is_closed(caplog):
    ann, bob = await viewer("tk_fresh"), await viewer("tk_other")
    socket = Socket(tc.whoami, bearer(issue_token(ann, max_age=1)))
    assert await socket.open() is None
    notice = await socket.receive()
    assert notice["type"] == "token" and notice["event"] == "expiring"
    await socket.comm.send_json_to({"type": "token", "token": issue_token(ann, max_age=600)})
    refreshed = await socket.receive()
    assert refreshed["event"] == "refreshed" and refreshed["expires_at"] > notice["expires_at"]
    assert (await socket.call("still"))[0]["commands"][0][:3] == ["me", "tk_fresh", "still"]
    await socket.comm.send_json_to({"type": "token", "token": issue_token(bob)})
    assert await socket.closed() == 4401
    assert "not for this socket's user" in caplog.text

    lapsing = Socket(tc.whoami, bearer(issue_token(ann, max_age=1)))
    assert await lapsing.open() is None
    assert (await lapsing.receive())["event"] == "expiring"
    assert await lapsing.closed() == 4401
    assert "token expired without a refresh" in caplog.text


# ---- the token view and the template tag ------------------------------------------------------------------------
async def test_the_token_view_gives_a_logged_in_user_a_token_and_refuses_anonymous_users():
    ann = await viewer("tk_view")
    client = AsyncClient()
    assert (await client.get("/hypergen_ws/token/")).status_code == 403
    await client.aforce_login(ann)
    response = await client.get("/hypergen_ws/token/")
    assert response.status_code == 200 and response["Cache-Control"] == "no-store, private"
    body = response.json()
    assert body["expires_in"] == 3600 and tokens.check_token(body["token"]).user_pk == ann.pk
    assert (await client.post("/hypergen_ws/token/")).status_code == 405
    socket = Socket(tc.whoami, bearer(body["token"]))
    assert await socket.open() is None
    await socket.close()


async def test_the_template_tag_renders_a_token_for_the_request_user():
    ann = await viewer("tk_tag")
    request = RequestFactory().get("/")
    request.user = ann
    template = Template("{% load hypergen_ws %}{% hypergen_ws_token %}")
    rendered = await database_sync_to_async(template.render)(Context({"request": request}))
    assert tokens.check_token(rendered).user_pk == ann.pk
    from django.contrib.auth.models import AnonymousUser
    request.user = AnonymousUser()
    assert await database_sync_to_async(template.render)(Context({"request": request})) == ""
