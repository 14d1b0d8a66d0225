"""The session check and sessions that move to a new key (hypergen_ws.features.session_check, hypergen_ws.middleware,
hypergen_ws.core.sessions): a password change closes the sockets of the user's other sessions with 4401; the
session that changed it (``update_session_auth_hash()``) keeps its sockets. In one process, through Django's own
password change view and test client; across daphne and uvicorn: tests/e2e/test_live_auth.py."""
from __future__ import annotations

import pytest
from channels.db import database_sync_to_async
from django.conf import settings as django_settings
from django.contrib.auth.models import User
from django.test import Client

from hypergen_ws.core.sessions import follow_login, open_key, seal_key
from tests import sample_consumers as sc
from tests.test_access import connect, login_session, said
from tests.users import make_user

pytestmark = pytest.mark.django_db(transaction=True)


@database_sync_to_async
def set_password(user: User, password: str) -> None:
    """``set_password()`` and ``save()``, as a shell or an admin form would: no view, no session updated."""
    fresh = User.objects.get(pk=user.pk)
    fresh.set_password(password)
    fresh.save()


@database_sync_to_async
def logged_in_client(user: User) -> Client:
    """A browser (Django's test client) logged in as ``user`` (password = username)."""
    client = Client()
    assert client.login(username=user.username, password=user.username)
    return client


def session_of(client: Client):
    from django.contrib.sessions.backends.db import SessionStore

    return SessionStore(session_key=client.cookies[django_settings.SESSION_COOKIE_NAME].value)


@database_sync_to_async
def change_password(client: Client, old: str, new: str) -> str:
    """Django's PasswordChangeView (it calls update_session_auth_hash()); returns the session's new key."""
    before = client.cookies[django_settings.SESSION_COOKIE_NAME].value
    response = client.post("/accounts/password_change/", {"old_password": old, "new_password1": new,
                                                          "new_password2": new})
    assert response.status_code == 302, response.content[:500]
    after = client.cookies[django_settings.SESSION_COOKIE_NAME].value
    assert after != before, "update_session_auth_hash() gives the session a new key"
    return after


async def test_a_password_change_closes_the_sockets_of_every_session_of_the_user(settings):
    settings.HYPERGEN_WS = {"SESSION_CHECK_INTERVAL": 0.1}
    sam, kim = await make_user("t_sam", "auth.view_user"), await make_user("t_kim", "auth.view_user")
    laptop, phone = await login_session(sam), await login_session(sam)
    sams = [await connect(sc.guarded, sam, session=laptop), await connect(sc.listen_only, sam, session=laptop),
            await connect(sc.guarded, sam, session=phone)]
    kims = await connect(sc.guarded, kim, session=await login_session(kim))
    await set_password(sam, "a new one")  # no session kept it: Django rejects both at their next request
    assert [await comm.wait_closed(timeout=10) for comm in sams] == [4401] * 3
    assert await said(kims, "another user stays") == [["said", "t_kim", "another user stays"]]
    await kims.disconnect()


async def test_update_session_auth_hash_keeps_the_sockets_of_the_session_that_changed_the_password(settings):
    settings.HYPERGEN_WS = {"SESSION_CHECK_INTERVAL": 0.1}
    sam = await make_user("t_sam", "auth.view_user")
    laptop = await logged_in_client(sam)
    phone = await login_session(sam)
    mine = [await connect(sc.guarded, sam, session=session_of(laptop)),
            await connect(sc.listen_only, sam, session=session_of(laptop))]
    other = [await connect(sc.guarded, sam, session=phone), await connect(sc.listen_only, sam, session=phone)]
    await change_password(laptop, "t_sam", "Another-passw0rd")
    # The other browser's sockets close at the second check that finds them failing; the laptop's sockets,
    # whose session moved to a new key, pass those same checks.
    assert [await comm.wait_closed(timeout=10) for comm in other] == [4401, 4401]
    assert await said(mine[0], "still here") == [["said", "t_sam", "still here"]]
    await mine[1].assert_nothing(0.5)  # (four more checks)
    assert await said(mine[0], "and here") == [["said", "t_sam", "and here"]]
    # The laptop logs out later: its sockets, now of the new session, close like any others.
    await database_sync_to_async(laptop.post)("/accounts/logout/")
    assert [await comm.wait_closed() for comm in mine] == [4401, 4401]


async def test_without_the_middleware_the_session_that_changed_the_password_loses_its_sockets(settings):
    settings.HYPERGEN_WS = {"SESSION_CHECK_INTERVAL": 0.1}
    settings.MIDDLEWARE = [m for m in settings.MIDDLEWARE if m != "hypergen_ws.middleware.FollowSessionMiddleware"]
    sam = await make_user("t_sam", "auth.view_user")
    laptop = await logged_in_client(sam)
    comm = await connect(sc.guarded, sam, session=session_of(laptop))
    await change_password(laptop, "t_sam", "Another-passw0rd")
    assert await comm.wait_closed(timeout=10) == 4401  # its old key is gone, as far as the check can tell


def test_a_sealed_key_opens_only_with_the_old_key():
    sealed = seal_key("n3wkey", "oldkey")
    assert "n3wkey" not in sealed and open_key(sealed, "oldkey") == "n3wkey"
    assert open_key(sealed, "another") != "n3wkey"
    assert open_key("not hex", "oldkey") is None


async def test_a_session_is_followed_only_when_it_lets_the_same_user_in():
    sam, kim = await make_user("t_sam", "auth.view_user"), await make_user("t_kim", "auth.view_user")
    sams, kims = await login_session(sam), await login_session(kim)
    follow = database_sync_to_async(follow_login)
    assert (await follow(sams.session_key, sam.pk))[1].user_id == sam.pk
    assert await follow(kims.session_key, sam.pk) is None, "another user's session"
    assert await follow("no-such-session", sam.pk) is None
    await set_password(sam, "changed")
    assert await follow(sams.session_key, sam.pk) is None, "a session of the old password"
