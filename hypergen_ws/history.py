"""Sequence numbers, epochs and per-group history (docs/history.rst, docs/delivery.rst).

A frame published with history is stamped once, at the publish, with its group's next sequence number and
the group's epoch, by inserting them at the front of the already encoded text::

    {"seq":42,"epoch":187364019283,"type":"message","data":{...}}

Groups of a ``@consumer(history=N)`` keep history by default; ``group_send(..., history=True/False)`` and the
other publishers override it per call. Frames published without history carry no seq and are never replayed.
"""
from __future__ import annotations

import asyncio
import json
import re
import time
from collections import OrderedDict
from typing import TYPE_CHECKING, Any

from . import conf
from .groups import check_group_name
from .stores import Entry, Snapshot, get_store

if TYPE_CHECKING:
    from .decorators import Consumer

STAMP = re.compile(r'\{"seq":(\d+),"epoch":(\d+),')
_KNOWN_LIMIT = 10_000
_known: OrderedDict[str, int] = OrderedDict()
_labels: dict[str, Consumer] = {}
_labels_size = -1


def stamp(text: str, seq: int, epoch: int) -> str:
    """``text`` (an encoded JSON object) with ``"seq"`` and ``"epoch"`` inserted first."""
    return f'{{"seq":{seq},"epoch":{epoch},{text[1:]}'


def read_stamp(text: str) -> tuple[int, int] | None:
    """``(seq, epoch)`` of a stamped frame, or None."""
    match = STAMP.match(text)
    return (int(match[1]), int(match[2])) if match else None


def unstamp(text: str) -> str:
    """``text`` without its stamp (unchanged when it has none)."""
    match = STAMP.match(text)
    return "{" + text[match.end():] if match else text


# ---- which groups keep history ----------------------------------------------------------------------------

def remember_group(group: str, size: int) -> None:
    """Record that ``group`` keeps ``size`` frames (0: none), e.g. when a consumer computes or joins it.

    When consumers with different sizes share a group, the largest wins.
    """
    _known[group] = max(size, _known.get(group, 0))
    _known.move_to_end(group)
    while len(_known) > _KNOWN_LIMIT:
        _known.popitem(last=False)


def forget_groups() -> None:
    """Forget the history sizes remembered for groups and consumers; for tests, between them
    (``hypergen_ws.testing.reset()``): a consumer a test defines may reuse a label with another size."""
    global _labels, _labels_size
    _known.clear()
    _labels, _labels_size = {}, -1


def _consumer_for_label(label: str) -> Consumer | None:
    global _labels, _labels_size
    from . import registry

    if len(registry._consumers) != _labels_size:
        consumers = registry.all_consumers()
        labels = {}
        for spec in consumers:
            try:
                labels[spec.label] = spec
            except Exception:  # an app label that cannot be resolved (yet)
                continue
        _labels, _labels_size = labels, len(consumers)
    return _labels.get(label)


def declared_size(group: str) -> int:
    """The history size declared for ``group`` by its consumer (0 when none or unknown)."""
    size = _known.get(group)
    if size is not None:
        return size
    if group.startswith("hgws."):
        parts = group.split(".", 3)
    elif group.startswith("hgwsh."):
        parts = ["", *group[6:].split(".", 2)]
    else:
        return 0
    spec = _consumer_for_label(".".join(parts[1:3])) if len(parts) >= 3 else None
    return spec.history if spec is not None else 0


def history_size(group: str, history: bool | int | None) -> int:
    """How many frames to keep for a publish: the consumer's declaration, or the per-call override."""
    if history is None:
        return declared_size(group)
    if history is False:
        return 0
    if history is True:
        return declared_size(group) or int(conf.get("HISTORY_SIZE"))
    if isinstance(history, int) and history > 0:
        return history
    raise TypeError(f"history must be True, False, None or a positive int, not {history!r}.")


def fresh_entries(snapshot: Snapshot, now: float | None = None) -> list[Entry]:
    """The snapshot's entries that are younger than ``HISTORY_TTL``."""
    limit = (now or time.time()) - float(conf.get("HISTORY_TTL"))
    return [e for e in snapshot.entries if e[1] >= limit]


# ---- publishing ---------------------------------------------------------------------------------------------

async def apublish(layer: Any, group: str, text: str, size: int) -> int:
    """Stamp, store and send ``text`` to ``group`` (async); return its seq. Bounded by ``PUBLISH_TIMEOUT``."""
    from .fanout import FRAME_TYPE
    from .recovery import publish_memory

    store = get_store(layer)
    if _bypasses_layer(layer):
        return publish_memory(store, group, text, size)  # type: ignore[arg-type]
    timeout = float(conf.get("PUBLISH_TIMEOUT"))
    try:
        async with asyncio.timeout(timeout):  # not wait_for: on 3.11 it can swallow a cancellation
            seq, epoch = await store.append(group, text, size)
            message = {"type": FRAME_TYPE, "text": stamp(text, seq, epoch), "seq": seq, "epoch": epoch}
            await layer.group_send(group, message)
    except TimeoutError:
        raise TimeoutError(
            f"Publishing to group {group!r} did not finish within {timeout} s. Is Redis reachable? "
            "HYPERGEN_WS['PUBLISH_TIMEOUT'] sets the limit."
        ) from None
    return seq


def publish_sync(layer: Any, group: str, text: str, size: int) -> int:
    """Sync variant of :func:`apublish` (no running event loop in this thread)."""
    if _bypasses_layer(layer):
        from .recovery import publish_memory

        return publish_memory(get_store(layer), group, text, size)  # type: ignore[arg-type]
    from .publish import background_loop

    return background_loop().run(apublish(layer, group, text, size), f"Publishing to group {group!r}")


def _bypasses_layer(layer: Any) -> bool:
    from channels.layers import InMemoryChannelLayer

    return layer is None or isinstance(layer, InMemoryChannelLayer)


# ---- public API ---------------------------------------------------------------------------------------------

def _refuse_in_loop(name: str) -> None:
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return
    raise RuntimeError(f"{name}() was called inside a running event loop; use `await a{name}(...)` in async code.")


def _run_sync(coro: Any, what: str) -> Any:
    store = get_store()
    if store.kind == "memory":
        # Memory-store coroutines never suspend: run them here.
        try:
            coro.send(None)
        except StopIteration as done:
            return done.value
        raise RuntimeError(f"{what} suspended unexpectedly")  # pragma: no cover
    from .publish import background_loop

    return background_loop().run(coro, what)


async def aget_history(group: str) -> list[dict[str, Any]]:
    """The frames kept for ``group``, oldest first, decoded, each with its ``seq`` and ``epoch``."""
    snapshot = await get_store().read(check_group_name(group), 0)
    return [dict(json.loads(text), seq=seq, epoch=snapshot.epoch) for seq, _ts, text in fresh_entries(snapshot)]


def get_history(group: str) -> list[dict[str, Any]]:
    """Sync variant of :func:`aget_history`."""
    _refuse_in_loop("get_history")
    return _run_sync(aget_history(group), f"Reading the history of {group!r}")


async def aget_position(group: str) -> tuple[int, int]:
    """``(seq, epoch)`` of the last frame published to ``group`` with history (seq 0 before the first).

    Render it into a page and open the socket with ``?hgws_seq=<seq>&hgws_epoch=<epoch>`` to get what was
    published between the page load and the connect (docs/delivery.rst).
    """
    snapshot = await get_store().read(check_group_name(group), None)
    return snapshot.seq, snapshot.epoch


def get_position(group: str) -> tuple[int, int]:
    """Sync variant of :func:`aget_position`."""
    _refuse_in_loop("get_position")
    return _run_sync(aget_position(group), f"Reading the position of {group!r}")


async def aflush_history(group: str | None = None) -> None:
    """Forget the history of ``group``, or of every group: the next publish starts a new epoch at seq 1.

    Clients that reconnect with a position of the old epoch get a ``resync`` frame.
    """
    await get_store().flush(None if group is None else check_group_name(group))


def flush_history(group: str | None = None) -> None:
    """Sync variant of :func:`aflush_history`."""
    _refuse_in_loop("flush_history")
    _run_sync(aflush_history(group), "Flushing history")
