"""The chaos runs' blackhole proxy: one per client, in the running event loop (:mod:`tests.support.proxy`)."""
from __future__ import annotations

from ..proxy import BlackholeProxy

__all__ = ["BlackholeProxy"]
