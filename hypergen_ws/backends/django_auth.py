"""What Django's ``ModelBackend`` keeps on a user object: the one place that drops it.

``ModelBackend`` caches a user's permissions on the user object (``_perm_cache``, ``_user_perm_cache``,
``_group_perm_cache``; Django's docs say "re-fetch the user" instead). A socket whose user came from the scope
(another middleware, a test's ``user=``) keeps one user object for its life, so its permissions are read again
only once these are gone.
"""
from __future__ import annotations

from typing import Any

__all__ = ["forget_cached_permissions"]

_CACHES = ("_perm_cache", "_user_perm_cache", "_group_perm_cache")


def forget_cached_permissions(user: Any) -> None:
    """Drop the permission caches Django's ModelBackend keeps on a user object, so a check sees revocations."""
    for attr in _CACHES:
        if hasattr(user, attr):
            try:
                delattr(user, attr)
            except AttributeError:
                pass
