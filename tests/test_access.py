"""Live authorization in one process (hypergen_ws.features.access): logouts, ended sessions, disconnect_user(),
recheck_permissions(), the cap on sockets per user. Across processes: tests/e2e/test_live_auth.py."""
from __future__ import annotations

import pytest
from channels.auth import AuthMiddlewareStack
from channels.db import database_sync_to_async
from django.conf import settings
from django.contrib.auth import BACKEND_SESSION_KEY, HASH_SESSION_KEY, SESSION_KEY, logout
from django.contrib.auth.models import User
from django.contrib.sessions.backends.db import SessionStore
from django.test import RequestFactory

from hypergen_ws import adisconnect_user, arecheck_permissions, disconnect_user
from hypergen_ws.features import connlimit
from hypergen_ws.features.access import tables
from hypergen_ws.testing import ConsumerCommunicator
from tests import sample_consumers as sc
from tests import wsutil
from tests.users import make_user


#: The sample consumers behind the session and auth middleware, as in a project: a socket with a session cookie
#: belongs to that session.
application = AuthMiddlewareStack(wsutil.application)


async def connect(consumer, user=None, session=None) -> ConsumerCommunicator:
    """An accepted socket to one of the sample consumers as ``user`` (anonymous by default), in ``session`` (by
    its cookie) when given."""
    cookie = {"cookie": f"{settings.SESSION_COOKIE_NAME}={session.session_key}"} if session is not None else None
    comm = ConsumerCommunicator(consumer, application=application, user=user, headers=cookie)
    await comm.connect()
    assert comm.accepted
    return comm


async def said(comm: ConsumerCommunicator, text: str) -> list:
    """Call ``sc.guarded`` with ``text``: the commands of the frame before the reply."""
    result = await comm.call(text)
    assert result.reply is not None and [f["type"] for f in result.frames] == ["commands", "reply"], result.frames
    return result.commands


pytestmark = pytest.mark.django_db(transaction=True)


@database_sync_to_async
def login_session(user: User) -> SessionStore:
    """A saved session in which ``user`` is logged in, as Django's login() leaves it."""
    store = SessionStore()
    store[SESSION_KEY] = str(user.pk)
    store[BACKEND_SESSION_KEY] = "django.contrib.auth.backends.ModelBackend"
    store[HASH_SESSION_KEY] = user.get_session_auth_hash()
    store.save()
    return store


@database_sync_to_async
def log_out(user: User, session: SessionStore) -> None:
    """Django's logout() in a view of the session: sends user_logged_out, then flushes the session."""
    request = RequestFactory().post("/accounts/logout/")
    request.user = user
    request.session = SessionStore(session_key=session.session_key)
    logout(request)


async def test_a_logout_closes_every_socket_of_the_user_in_every_browser_listen_only_ones_too():
    sam, kim = await make_user("t_sam", "auth.view_user"), await make_user("t_kim", "auth.view_user")
    session, other_session = await login_session(sam), await login_session(sam)
    mine = [await connect(sc.guarded, sam, session=session),
            await connect(sc.listen_only, sam, session=session),
            await connect(sc.guarded, sam, session=other_session),  # the same user, another browser
            await connect(sc.listen_only, sam, session=other_session)]
    kims = await connect(sc.guarded, kim, session=await login_session(kim))
    await log_out(sam, session)
    assert [await comm.wait_closed() for comm in mine] == [4401] * 4
    assert await said(kims, "another user stays") == [["said", "t_kim", "another user stays"]]
    await kims.disconnect()


async def test_with_logout_closes_session_a_logout_closes_only_the_sockets_of_its_session(settings):
    settings.HYPERGEN_WS = {"LOGOUT_CLOSES": "session"}
    sam = await make_user("t_sam", "auth.view_user")
    session, other_session = await login_session(sam), await login_session(sam)
    mine = [await connect(sc.guarded, sam, session=session),
            await connect(sc.listen_only, sam, session=session)]
    elsewhere = await connect(sc.guarded, sam, session=other_session)  # the same user, another browser
    await log_out(sam, session)
    assert [await comm.wait_closed() for comm in mine] == [4401, 4401]
    assert await said(elsewhere, "still logged in") == [["said", "t_sam", "still logged in"]]
    await elsewhere.disconnect()


async def test_a_session_that_ends_without_a_logout_closes_its_sockets(settings):
    settings.HYPERGEN_WS = {"SESSION_CHECK_INTERVAL": 0.05}
    sam = await make_user("t_sam", "auth.view_user")
    session = await login_session(sam)
    comm = await connect(sc.listen_only, sam, session=session)
    await database_sync_to_async(SessionStore(session_key=session.session_key).flush)()  # no signal
    assert await comm.wait_closed() == 4401


async def test_disconnect_user_closes_every_socket_of_the_user_only():
    sam, kim = await make_user("t_sam", "auth.view_user"), await make_user("t_kim", "auth.view_user")
    sams = [await connect(sc.guarded, sam), await connect(sc.listen_only, sam)]
    kims = await connect(sc.guarded, kim)
    await adisconnect_user(sam)
    assert [await comm.wait_closed() for comm in sams] == [4401, 4401]
    assert await said(kims, "here") == [["said", "t_kim", "here"]]
    another = await connect(sc.listen_only, kim)
    await adisconnect_user(kim.pk, code=4000)  # a pk works too, and any code 1000 or 3000-4999
    assert [await comm.wait_closed() for comm in (kims, another)] == [4000, 4000]
    with pytest.raises(ValueError, match="use 1000 or a code from 3000 to 4999"):
        await adisconnect_user(kim, code=1011)
    with pytest.raises(TypeError, match="Pass a user"):
        await adisconnect_user(None)
    with pytest.raises(RuntimeError, match="adisconnect_user"):
        disconnect_user(kim)


async def test_recheck_permissions_closes_only_sockets_that_no_longer_pass():
    sam = await make_user("t_sam", "auth.view_user")
    guarded = await connect(sc.guarded, sam)
    public = await connect(sc.listen_only, sam)

    @database_sync_to_async
    def revoke():
        sam.user_permissions.clear()

    await arecheck_permissions(sam)  # nothing changed yet: nothing closes
    assert await said(guarded, "before") == [["said", "t_sam", "before"]]
    await revoke()
    await arecheck_permissions()
    assert await guarded.wait_closed() == 4403
    await public.assert_nothing(0.2)  # NO_PERM_REQUIRED: it stays
    await public.disconnect()


async def test_sockets_per_user_are_capped_when_asked(settings):
    settings.HYPERGEN_WS = {"MAX_CONNECTIONS_PER_USER": 2}
    sam = await make_user("t_sam", "auth.view_user")
    first, second = await connect(sc.guarded, sam), await connect(sc.listen_only, sam)
    third = await connect(sc.guarded, sam)
    assert await third.wait_closed() == 1008
    await first.disconnect()
    fourth = await connect(sc.guarded, sam)
    assert await said(fourth, "in") == [["said", "t_sam", "in"]]
    anonymous = [await connect(sc.listen_only) for _ in range(3)]  # each anonymous socket is its own user
    for comm in [second, fourth, *anonymous]:
        await comm.disconnect()
    assert not any(tables.by_hub.values()), "gone sockets are forgotten"
    assert not any(connlimit.tables.by_hub.values())


async def test_the_documented_ban_and_revoke_views_close_what_they_say():
    from django.test import RequestFactory

    from tests.support import pages

    views = pages.load("security.rst", "accounts/views.py", package="tests")
    ban, revoke = views.ban, views.revoke

    sam, kim = await make_user("t_sam", "auth.view_user"), await make_user("t_kim", "auth.view_user")
    sam_sockets = [await connect(sc.guarded, sam), await connect(sc.listen_only, sam)]
    kim_guarded, kim_public = await connect(sc.guarded, kim), await connect(sc.listen_only, kim)
    request = RequestFactory().post("/")
    await database_sync_to_async(revoke)(request, kim.pk, "view_user")
    assert await kim_guarded.wait_closed() == 4403
    await kim_public.assert_nothing(0.2)
    await database_sync_to_async(ban)(request, sam.pk)
    assert [await comm.wait_closed() for comm in sam_sockets] == [4401, 4401]
    await kim_public.disconnect()
