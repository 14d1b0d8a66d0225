"""Users for the tests that need one, with the permissions they name."""
from __future__ import annotations

from channels.db import database_sync_to_async
from django.contrib.auth.models import Permission, User


@database_sync_to_async
def make_user(name: str, *perms: str) -> User:
    """A user ``name`` (password ``name``) with ``perms`` (``"app_label.codename"``), read back fresh."""
    user = User.objects.create_user(name, password=name)
    for perm in perms:
        app_label, codename = perm.split(".")
        user.user_permissions.add(Permission.objects.get(content_type__app_label=app_label, codename=codename))
    return User.objects.get(pk=user.pk)
