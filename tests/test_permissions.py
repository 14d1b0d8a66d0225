"""Permission specs compiled to async checks."""
from __future__ import annotations

import pytest
from django.contrib.auth.models import AnonymousUser

from hypergen_ws.backends.django_auth import forget_cached_permissions
from hypergen_ws.core.permissions import MISSING, NO_PERM_REQUIRED, Permission

pytestmark = pytest.mark.django_db(transaction=True)


class FakeUser:
    is_authenticated = True

    def __init__(self, *perms):
        self.perms = set(perms)

    def has_perm(self, perm):
        return perm in self.perms

    def has_perms(self, perms):
        return all(p in self.perms for p in perms)


async def test_strings_lists_and_any_perm():
    user = FakeUser("a.x")
    assert await Permission("a.x").allows(user, {})
    assert not await Permission(["a.x", "a.y"]).allows(user, {})
    assert await Permission(["a.x", "a.y"], any_perm=True).allows(user, {})
    assert not await Permission("a.x").allows(AnonymousUser(), {})


async def test_public_and_missing():
    assert await Permission(NO_PERM_REQUIRED).allows(AnonymousUser(), {})
    assert not await Permission(MISSING).allows(FakeUser("a.x"), {})
    assert Permission(NO_PERM_REQUIRED).public and Permission(MISSING).missing


async def test_sync_and_async_callables_get_url_kwargs():
    seen = []

    def sync_check(user, *, room):
        seen.append(room)
        return room == "ok"

    async def async_check(user, *, room):
        return room == "ok"

    for check in (sync_check, async_check):
        assert await Permission(check).allows(AnonymousUser(), {"room": "ok"})
        assert not await Permission(check).allows(AnonymousUser(), {"room": "no"})
    assert seen == ["ok", "no"]


def test_describe():
    assert Permission(["a.x", "a.y"], any_perm=True).describe() == "a.x or a.y"
    assert Permission(["a.x", "a.y"]).describe() == "a.x and a.y"
    assert Permission(NO_PERM_REQUIRED).describe() == "NO_PERM_REQUIRED"


def test_forget_cached_permissions():
    user = FakeUser()
    user._perm_cache = {"x"}
    forget_cached_permissions(user)
    assert not hasattr(user, "_perm_cache")


@pytest.mark.parametrize("spec", [3, [], ["ok.x", 4], "nodot", "a.b.c"])
def test_invalid_specs(spec):
    from django.core.exceptions import ImproperlyConfigured

    with pytest.raises(ImproperlyConfigured):
        Permission(spec)
