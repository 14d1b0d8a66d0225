"""Versions of the libraries the backends drive, for the checks above that depend on them.

The faces (``checks``, ``setup_checks``) never import redis-py, channels_redis or a server themselves: what they
need to know about one of them is asked here.
"""
from __future__ import annotations

__all__ = ["redis_py_version"]


def redis_py_version() -> str | None:
    """The installed redis-py's version (``"8.0.1"``), or None when redis-py is not installed."""
    try:
        import redis  # optional: installed with the Redis layer only
    except ImportError:
        return None
    return str(redis.__version__)
