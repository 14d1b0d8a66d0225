"""Where a client is in its group's frames, and how long it waits before it reconnects: the same rules as the
JavaScript client's (``_track`` and ``backoff`` in hypergen-ws.js, docs/delivery.rst)."""
from __future__ import annotations

import random as _random
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from ..core import protocol

__all__ = ["DROP", "HANDLE", "Position", "backoff"]

HANDLE = "handle"
DROP = "drop"


def backoff(attempt: int, base: float, factor: float, cap: float,
            random: Callable[[], float] = _random.random) -> float:
    """Seconds before reconnect attempt ``attempt`` (0 for the first), with "equal jitter":
    ``d = min(cap, base * factor ** attempt)``, then ``d / 2 + random() * d / 2``."""
    capped = min(cap, base * factor ** min(attempt, 64))
    return capped / 2 + random() * capped / 2


#: How many epochs a client remembers the highest seq it handed over in.
EPOCHS_KEPT = 8


@dataclass(slots=True)
class Position:
    """The last ``seq`` and ``epoch`` handled, and whether this socket's ``sync``/``resync`` frame came.

    ``handled`` keeps, for the last :data:`EPOCHS_KEPT` epochs, the highest seq handed over in each: a frame at or
    below it is never handed over again, whatever the server sends (a late copy of an epoch left, or a range
    replayed after a history went back to an older copy). Frames dropped that way while the position is below
    that mark (after a ``resync`` that moved it back) may have been new ones under a reused seq, so the first
    frame handed over after them is preceded by a ``resync`` (``rolled_back``)."""

    last_seq: int | None = None
    epoch: int | None = None
    synced: bool = False
    handled: dict[int, int] = field(default_factory=dict)
    doubt: bool = False

    def reset_socket(self) -> None:
        """A new socket: until its ``sync``/``resync`` frame, frames are taken as they come."""
        self.synced = False

    def track(self, frame: dict[str, Any]) -> str | tuple[str, Any]:
        """What to do with a frame: :data:`HANDLE`, :data:`DROP` (a duplicate), ``("resync", frame)`` (a new
        epoch, or the end of a range handed over before: the frame to report first, then handle this one) or
        ``("recover", seq)`` (a seq was skipped: reconnect at once with the last one; the server replays the
        rest)."""
        kind = frame.get("type")
        if kind in ("sync", "resync"):
            self.synced = True
            self.last_seq = frame["seq"] if _is_int(frame.get("seq")) else None
            self.epoch = frame["epoch"] if _is_int(frame.get("epoch")) else None
            self.doubt = self.doubt and kind == "sync"
            return HANDLE
        seq: Any = frame.get("seq")
        epoch: Any = frame.get("epoch")
        if not _is_int(seq):
            return HANDLE
        last = self.last_seq
        if self.synced and _is_int(epoch) and seq <= self.handled.get(epoch, -1):
            # Handed over once already: never again. The position still moves when this is the next frame (so
            # that the gap check goes on), and the frames skipped so are reported once they are passed.
            if epoch == self.epoch and last is not None and seq == last + 1:
                self.last_seq, self.doubt = seq, True
            return DROP
        verdict: str | tuple[str, Any] = HANDLE
        if self.synced and last is not None and self.epoch is not None and _is_int(epoch):
            if epoch != self.epoch:
                verdict = "resync", {"type": "resync", "reason": "epoch_changed", "seq": seq, "epoch": epoch}
            elif seq <= last:
                return DROP
            elif seq > last + 1:
                return "recover", seq
            elif self.doubt:
                verdict = "resync", {"type": "resync", "reason": "rolled_back", "seq": seq, "epoch": epoch}
        self.last_seq, self.doubt = seq, False
        if _is_int(epoch):
            self.epoch = epoch
            if self.synced:
                self._handed_over(seq, epoch)
        return verdict

    def _handed_over(self, seq: int, epoch: int) -> None:
        top = self.handled.pop(epoch, seq)
        self.handled[epoch] = max(top, seq)
        while len(self.handled) > EPOCHS_KEPT:
            del self.handled[next(iter(self.handled))]

    def url(self, url: str) -> str:
        """The URL of the next socket: with the recovery position once there is one."""
        if self.last_seq is None or self.epoch is None:
            return url
        parts = urlsplit(url)
        query = [(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True)
                 if k not in (protocol.SEQ_PARAM, protocol.EPOCH_PARAM)]
        query += [(protocol.SEQ_PARAM, str(self.last_seq)), (protocol.EPOCH_PARAM, str(self.epoch))]
        return urlunsplit(parts._replace(query=urlencode(query)))


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)
