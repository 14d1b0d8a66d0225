"""Two async consumers that change the shared counter and morph ``#counter`` on every open page.

Each function has its own route (``/ws/counter/increment/`` and ``/ws/counter/decrement/``) and so its own group;
the page opens both sockets, so it gets every update exactly once, whichever button anybody pressed.
The returned string is the rendered fragment: with ``target_id="counter"`` it becomes
``["hypergen.morph", "counter", html]``, sent to the whole group.
"""
from __future__ import annotations

from typing import Any

from hypergen_ws import NO_PERM_REQUIRED, consumer

from .state import achange_counter, render_counter


@consumer(perm=NO_PERM_REQUIRED, target_id="counter")
async def increment(consumer: Any, request: Any) -> str:
    """Add one to the shared counter; everyone's page shows the new value."""
    return render_counter(await achange_counter(+1))


@consumer(perm=NO_PERM_REQUIRED, target_id="counter")
async def decrement(consumer: Any, request: Any) -> str:
    """Subtract one from the shared counter; everyone's page shows the new value."""
    return render_counter(await achange_counter(-1))
