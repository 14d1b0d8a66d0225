"""Recording what is published in a test: ``capture_publishes()``, ``assert_published()``, ``assert_not_published()``.

Every publish goes through one path (:mod:`hypergen_ws.core.observers`), whoever makes it: ``group_send``,
``consumer_command``, ``agroup_send``, ``aconsumer_command``, the HTTP endpoint, the ``hypergen_ws_publish``
management command, and a consumer's function sending to its group. A capture records each one there, at the
publish, so no socket needs to be in the group.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from enum import Enum
from types import TracebackType
from typing import Any, Literal

from ..core import observers

__all__ = ["Published", "Publishes", "assert_not_published", "assert_published", "capture_publishes"]

#: How many records a failure message lists before it says how many more there were.
SHOWN = 20


class _Unset(Enum):
    UNSET = "UNSET"

    def __repr__(self) -> str:
        return "UNSET"


UNSET = _Unset.UNSET


@dataclass(frozen=True, slots=True)
class Published:
    """One publish: its group, its kind, and the ``data`` (kind ``"data"``) or ``commands`` (kind
    ``"commands"``) it carried; ``text`` is the frame as it was encoded."""

    group: str
    kind: Literal["data", "commands"]
    data: Any = None
    commands: list[list[Any]] | None = None
    text: str = ""

    def describe(self) -> str:
        """``data {...}`` or ``commands [[...]]``, short enough for a failure message."""
        value = self.data if self.kind == "data" else self.commands
        return f"{self.kind} {_short(value)}"


def _short(value: Any, limit: int = 300) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[:limit - 3] + "..."


def record_of(publish: observers.Publish) -> Published | None:
    """The record of a ``message`` or ``commands`` frame; None for frames the library sends on its own
    (presence)."""
    frame = json.loads(publish.text)
    kind = frame.get("type") if isinstance(frame, dict) else None
    if kind == "message":
        return Published(publish.group, "data", data=frame.get("data"), text=publish.text)
    if kind == "commands":
        return Published(publish.group, "commands", commands=frame.get("commands"), text=publish.text)
    return None


def _check_group(group: Any, where: str) -> str:
    if isinstance(group, str):
        return group
    if callable(getattr(group, "group_name", None)):
        raise TypeError(f"{where} takes a group name, not the consumer {group!r}: pass "
                        f"{getattr(group, '__name__', 'consumer')}.group_name(...) with its URL kwargs.")
    raise TypeError(f"{where} takes a group name (a str), not {type(group).__name__}; build it with "
                    "<consumer>.group_name(**url_kwargs).")


class Publishes(list[Published]):
    """The records of a capture, in the order the publishes were made, with assertions on them."""

    def to(self, group: str) -> list[Published]:
        """The records of publishes to ``group``."""
        group = _check_group(group, "to()")
        return [record for record in self if record.group == group]

    def assert_published(self, group: str, *, data: Any = UNSET, commands: list[list[Any]] | _Unset = UNSET,
                         count: int | None = None) -> list[Published]:
        """Fail unless something was published to ``group``; return the matching records.

        With ``data=`` only publishes of that data match (``group_send``), with ``commands=`` only publishes of
        those commands (``consumer_command``, a consumer's function); values compare with ``==``, so
        ``unittest.mock.ANY`` matches anything in their place. ``count`` asks for exactly that many matches.
        """
        group = _check_group(group, "assert_published()")
        wanted = _wanted(data, commands)
        if count is not None and (isinstance(count, bool) or not isinstance(count, int) or count < 0):
            raise ValueError(f"count={count!r}; pass the number of matching publishes expected (0 or more), or "
                             "leave it out for one or more.")
        to_group = self.to(group)
        matching = [record for record in to_group if _matches(record, data, commands)]
        if (count is None and matching) or (count is not None and len(matching) == count):
            return matching
        if count is None:
            if not to_group:
                raise AssertionError(f"Nothing was published to group {group!r}{wanted}. {self._elsewhere()}")
            raise AssertionError(f"Nothing published to group {group!r} matches{wanted}. "
                                 f"Published to it:\n{_listing(to_group)}")
        shown = f":\n{_listing(matching)}" if matching else "."
        others = len(to_group) - len(matching)
        rest = f"\n{others} other publish(es) to the group did not match." if others else ""
        raise AssertionError(f"Expected {count} publish(es) to group {group!r}{wanted}, but there were "
                             f"{len(matching)}{shown}{rest}")

    def assert_not_published(self, group: str | None = None) -> None:
        """Fail if anything was published to ``group`` (to any group when it is None)."""
        if group is None:
            if self:
                raise AssertionError(f"Expected nothing to be published, but {len(self)} publish(es) were:\n"
                                     f"{_listing(self, with_group=True)}")
            return
        group = _check_group(group, "assert_not_published()")
        to_group = self.to(group)
        if to_group:
            raise AssertionError(f"Expected nothing to be published to group {group!r}, but {len(to_group)} "
                                 f"publish(es) were:\n{_listing(to_group)}")

    def _elsewhere(self) -> str:
        if not self:
            return ("Nothing was published at all while recording (publishes are recorded inside "
                    "capture_publishes(), assert_published() or the hgws_published fixture only).")
        counts: dict[str, int] = {}
        for record in self:
            counts[record.group] = counts.get(record.group, 0) + 1
        groups = ", ".join(f"{name!r} ({number})" for name, number in counts.items())
        return (f"Published to other groups: {groups}. Build the group name with "
                "<consumer>.group_name(**url_kwargs) and check the URL kwargs.")


def _wanted(data: Any, commands: list[list[Any]] | _Unset) -> str:
    if data is not UNSET and commands is not UNSET:
        raise TypeError("Pass data= or commands=, not both: a publish carries either data (group_send) or "
                        "commands (consumer_command).")
    if data is not UNSET:
        return f" with data {_short(data)}"
    if commands is not UNSET:
        return f" with commands {_short(commands)}"
    return ""


def _matches(record: Published, data: Any, commands: list[list[Any]] | _Unset) -> bool:
    if data is not UNSET:
        return record.kind == "data" and bool(data == record.data)
    if commands is not UNSET:
        return record.kind == "commands" and bool(commands == record.commands)
    return True


def _listing(records: list[Published], *, with_group: bool = False) -> str:
    lines = [f"  {'to ' + repr(r.group) + ': ' if with_group else ''}{r.describe()}" for r in records[:SHOWN]]
    if len(records) > SHOWN:
        lines.append(f"  ... and {len(records) - SHOWN} more")
    return "\n".join(lines)


class capture_publishes:
    """Record every publish made while the block runs, in any thread: ``with`` or ``async with``.

    ::

        with capture_publishes() as published:
            client.post("/chat/lobby/announce/", {"text": "hi"})
        published.assert_published(send_message.group_name(room_name="lobby"), commands=[...])

    The block gets a :class:`Publishes` list of :class:`Published` records (``group``, ``kind``, ``data`` /
    ``commands``), which keeps growing until the block ends. Captures may nest; each records everything.
    """

    def __init__(self) -> None:
        self.records = Publishes()
        self._active = False

    def _listen(self, publish: observers.Publish) -> None:
        record = record_of(publish)
        if record is not None:
            self.records.append(record)

    def start(self) -> Publishes:
        """Start recording (what ``with`` does); returns the records."""
        if self._active:
            raise RuntimeError("This capture_publishes() is already recording; make a new one to nest captures.")
        observers.add_listener(self._listen)
        self._active = True
        return self.records

    def stop(self) -> None:
        """Stop recording (what the end of the ``with`` block does)."""
        if self._active:
            observers.remove_listener(self._listen)
            self._active = False

    def __enter__(self) -> Publishes:
        return self.start()

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 traceback: TracebackType | None) -> None:
        self.stop()

    async def __aenter__(self) -> Publishes:
        return self.start()

    async def __aexit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                        traceback: TracebackType | None) -> None:
        self.stop()


class assert_published(capture_publishes):
    """Fail unless the block publishes to ``group`` (with ``data=`` / ``commands=``, ``count=`` times); ``with``
    or ``async with``. The block gets the records, like :class:`capture_publishes`.

    ::

        with assert_published(send_message.group_name(room_name="lobby"), commands=[["alert", "hi"]]):
            client.post("/chat/lobby/announce/", {"text": "hi"})
    """

    def __init__(self, group: str, *, data: Any = UNSET, commands: list[list[Any]] | _Unset = UNSET,
                 count: int | None = None) -> None:
        super().__init__()
        self.group = _check_group(group, "assert_published()")
        _wanted(data, commands)
        self.data, self.commands, self.count = data, commands, count

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 traceback: TracebackType | None) -> None:
        self.stop()
        if exc_type is None:
            self.records.assert_published(self.group, data=self.data, commands=self.commands, count=self.count)

    async def __aexit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                        traceback: TracebackType | None) -> None:
        self.__exit__(exc_type, exc, traceback)


class assert_not_published(capture_publishes):
    """Fail if the block publishes to ``group`` (to any group when it is None); ``with`` or ``async with``."""

    def __init__(self, group: str | None = None) -> None:
        super().__init__()
        self.group = None if group is None else _check_group(group, "assert_not_published()")

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 traceback: TracebackType | None) -> None:
        self.stop()
        if exc_type is None:
            self.records.assert_not_published(self.group)

    async def __aexit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                        traceback: TracebackType | None) -> None:
        self.__exit__(exc_type, exc, traceback)
