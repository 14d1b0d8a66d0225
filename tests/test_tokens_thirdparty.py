"""TOKEN_AUTHENTICATOR with a real third-party library: djangorestframework-simplejwt access tokens open sockets,
expire them, and are refused when forged (the recipe of docs/clients.rst, tests/examples/token_authenticators.py)."""
from __future__ import annotations

import re
from pathlib import Path

import pytest
from channels.db import database_sync_to_async
from rest_framework_simplejwt.tokens import AccessToken

from tests import token_consumers as tc
from tests.examples import token_authenticators
from tests.test_tokens import Socket, bearer, viewer

pytestmark = pytest.mark.django_db(transaction=True)
DOCS = Path(__file__).resolve().parent.parent / "docs" / "clients.rst"


@pytest.fixture
def simplejwt(settings):
    settings.HYPERGEN_WS = {"TOKEN_AUTHENTICATOR": "tests.examples.token_authenticators.simplejwt_user"}


async def test_a_simplejwt_access_token_opens_a_socket_as_its_user(simplejwt):
    ann = await viewer("jwt_ann")
    token = str(await database_sync_to_async(AccessToken.for_user)(ann))
    socket = Socket(tc.whoami, bearer(token))
    assert await socket.open() is None
    assert (await socket.call("jwt"))[0]["commands"][0][:3] == ["me", "jwt_ann", "jwt"]
    await socket.close()


async def test_a_forged_or_expired_simplejwt_token_is_refused(simplejwt, caplog):
    ann = await viewer("jwt_bad")
    token = await database_sync_to_async(AccessToken.for_user)(ann)
    assert await Socket(tc.whoami, bearer(str(token)[:-2] + "xx")).open() == 4401
    token.set_exp(lifetime=-AccessToken.lifetime * 2)  # expired before it is sent
    assert await Socket(tc.whoami, bearer(str(token))).open() == 4401
    assert "TOKEN_AUTHENTICATOR did not take it" in caplog.text


async def test_a_simplejwt_socket_is_asked_for_a_new_token_before_exp(simplejwt):
    ann = await viewer("jwt_exp")
    token = await database_sync_to_async(AccessToken.for_user)(ann)
    socket = Socket(tc.whoami, bearer(str(token)))
    assert await socket.open() is None
    await socket.comm.send_json_to({"type": "token", "token": str(token)})
    refreshed = await socket.receive()
    assert refreshed == {"type": "token", "event": "refreshed", "expires_at": float(token["exp"])}
    await socket.close()


def test_the_docs_show_the_recipes_that_run_here():
    page = DOCS.read_text()
    source = Path(token_authenticators.__file__).read_text()
    for name in ("simplejwt_user", "drf_token_user"):
        body = re.search(rf"^def {name}\(.*?(?=^\S|\Z)", source, re.S | re.M).group(0).strip()
        shown = "\n".join(line[4:] if line.startswith("    ") else line for line in page.splitlines())
        assert body in shown, f"docs/clients.rst does not show {name} as tests/examples/token_authenticators.py has it"
