"""Views of docs/security.rst ("Live authorization"): what an app calls when it bans a user or takes a
permission away. tests/test_access.py runs them."""
from __future__ import annotations

from django.contrib.auth.models import Permission, User
from django.http import HttpRequest, HttpResponse

from hypergen_ws import disconnect_user, recheck_permissions


def ban(request: HttpRequest, user_id: int) -> HttpResponse:
    user = User.objects.get(pk=user_id)
    user.is_active = False
    user.save()
    disconnect_user(user)                  # every socket of the user, in every process
    return HttpResponse("banned")


def revoke(request: HttpRequest, user_id: int, codename: str) -> HttpResponse:
    user = User.objects.get(pk=user_id)
    user.user_permissions.remove(Permission.objects.get(codename=codename))
    recheck_permissions(user)              # sockets that needed it close with 4403, the others stay
    return HttpResponse("revoked")
