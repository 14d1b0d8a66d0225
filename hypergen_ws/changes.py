"""``@model_changes(Model)``: publish a model's saves and deletes to the groups a function names, after the commit.

.. code-block:: python

   @model_changes(Message, commands=message_commands)
   def message_groups(message, change):
       return send_message.group_name(room_name=message.room.slug)

Every ``post_save`` and ``post_delete`` of ``Message`` calls ``message_groups(instance, change)`` (``change`` is
``"created"``, ``"updated"`` or ``"deleted"``) and publishes to the groups it returns, with
``consumer_command(..., on_commit=True)`` (or ``group_send``): inside a transaction the frames wait for its commit
and are dropped on a rollback; outside one they go out at once. Groups and payload are computed when the signal
fires, while the instance and what it refers to are still in the database (a deleted row included); only the
sending waits. See docs/transactions.rst.

History keeps the current version of each row (docs/history.rst): every frame is tagged with the row and the
change (:meth:`ModelChanges.revision`); an update replaces the kept frame of the row's creation with the creation
frame of its new version and redacts its earlier updates, a delete redacts both.
"""
from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any, Generic, Literal, TypeVar, get_args

from django.db import models
from django.db.models.signals import post_delete, post_save

from .backends.base import Revision
from .core import protocol
from .core.groups import check_group_name
from .core.sync import refuse_in_loop
from .publish import publish_frame

M = TypeVar("M", bound=models.Model)
F = TypeVar("F")
Change = Literal["created", "updated", "deleted"]
#: Every kind of change, in the order they happen to a row.
CHANGES: tuple[Change, ...] = get_args(Change)

#: Names the groups a change goes to: one name, several, or None (nothing is published).
GroupsFunction = Callable[[M, Change], str | Iterable[str] | None]
#: The data of a ``{"type": "message"}`` frame (any JSON), or None to publish nothing for this change.
DataFunction = Callable[[M, Change], Any]
#: The commands of a ``{"type": "commands"}`` frame, or None (or ``[]``) to publish nothing for this change.
CommandsFunction = Callable[[M, Change], list[list[Any]] | None]


class ModelChanges(Generic[M]):
    """Publishes the saves and deletes of ``model`` to the groups ``groups(instance, change)`` returns.

    ``data(instance, change)`` gives the payload of a ``group_send``, ``commands(instance, change)`` the commands of a
    ``consumer_command`` (give one of them at most). Without either, every change sends the data
    ``{"model": "<app_label>.<model_name>", "pk": <pk>, "change": "created" | "updated" | "deleted"}``.
    ``changes`` limits which kinds of change are published; ``history`` is passed to the publisher.

    The signal receivers are connected when the object is made and stay connected until :meth:`disconnect`. Make it
    in a module that is imported at startup (an ``AppConfig.ready()``), or it misses changes made before.
    Raw saves (``loaddata``) are not published. Calling the object calls ``groups``.
    """

    def __init__(self, model: type[M], groups: GroupsFunction[M], *, data: DataFunction[M] | None = None,
                 commands: CommandsFunction[M] | None = None, changes: Iterable[Change] = CHANGES,
                 history: bool | int | None = None) -> None:
        self.model = _check_model(model)
        self.groups = _check_callable("groups", groups)
        if data is not None and commands is not None:
            raise TypeError(f"model_changes({model.__name__}): give data= or commands=, not both; a change is "
                            "published as one kind of frame.")
        self.data = _check_callable("data", data) if data is not None else None
        self.commands = _check_callable("commands", commands) if commands is not None else None
        self.changes = _check_changes(changes)
        self.history = history
        self.name = getattr(groups, "__qualname__", repr(groups))
        self._uid = f"hypergen_ws.model_changes.{id(self)}"
        post_save.connect(self._saved, sender=model, weak=False, dispatch_uid=self._uid)
        post_delete.connect(self._deleted, sender=model, weak=False, dispatch_uid=self._uid)

    def __repr__(self) -> str:
        return f"<ModelChanges {self.model._meta.label} -> {self.name}>"

    def __call__(self, instance: M, change: Change) -> str | Iterable[str] | None:
        return self.groups(instance, change)

    def disconnect(self) -> None:
        """Stop publishing this model's changes."""
        post_save.disconnect(sender=self.model, dispatch_uid=self._uid)
        post_delete.disconnect(sender=self.model, dispatch_uid=self._uid)

    def group_names(self, instance: M, change: Change) -> list[str]:
        """The groups ``groups(instance, change)`` names, as a list without repeats."""
        value = self.groups(instance, change)
        if value is None:
            return []
        names = [value] if isinstance(value, str) else value
        try:
            result = list(dict.fromkeys(names))
        except TypeError:
            result = None
        if result is None or not all(isinstance(name, str) for name in result):
            raise TypeError(
                f"{self.name}() returned {value!r} for the {change} {self.model._meta.label} {instance.pk!r}; "
                "return a group name (str), an iterable of group names, or None to publish nothing."
            )
        return result

    def publish(self, instance: M, change: Change, using: str | None = None) -> None:
        """Publish ``change`` of ``instance`` to its groups after the commit of ``using`` (at once outside one)."""
        if change not in self.changes:
            return
        refuse_in_loop("consumer_command" if self.commands is not None else "group_send")
        names = self.group_names(instance, change)
        if not names:
            return
        text = self.frame(instance, change)
        if text is None:
            return
        revision = self.revision(instance, change)
        for name in names:
            publish_frame(check_group_name(name), text, history=self.history, on_commit=True, using=using,
                          revision=revision)

    def frame(self, instance: M, change: Change) -> str | None:
        """The encoded frame of ``change`` (from ``commands``, ``data`` or :meth:`default_data`); None when the
        function says to publish nothing."""
        if self.commands is not None:
            commands = self.commands(instance, change)
            return protocol.commands_frame(protocol.check_commands(commands)) if commands else None
        data = self.data(instance, change) if self.data is not None else self.default_data(instance, change)
        return protocol.message_frame(data) if data is not None else None

    def revision(self, instance: M, change: Change) -> Revision:
        """How ``change`` revises the history of its groups: its frame is tagged ``<model>:<pk>:<change>``; an
        update replaces the kept frame of the row's creation with the creation frame of its new version (redacts
        it when creations are not published) and redacts the row's earlier updates; a delete redacts both."""
        row = f"{self.model._meta.label_lower}:{self.default_data(instance, change)['pk']}"
        created, updated = f"{row}:created", f"{row}:updated"
        if change == "created":
            return Revision(created)
        if change == "updated":
            new = self.frame(instance, "created") if "created" in self.changes else None
            return Revision(updated, {created: new, updated: None})
        return Revision(f"{row}:deleted", {created: None, updated: None})

    def default_data(self, instance: M, change: Change) -> dict[str, Any]:
        """``{"model": "chat.message", "pk": 3, "change": "created"}``: sent without ``data=`` or ``commands=``."""
        pk = instance.pk
        return {"model": self.model._meta.label_lower, "pk": pk if isinstance(pk, int | str) else str(pk),
                "change": change}

    def _saved(self, sender: type[M], instance: M, created: bool, raw: bool = False, using: str | None = None,
               **kwargs: Any) -> None:
        if not raw:
            self.publish(instance, "created" if created else "updated", using)

    def _deleted(self, sender: type[M], instance: M, using: str | None = None, **kwargs: Any) -> None:
        self.publish(instance, "deleted", using)


def model_changes(model: type[M], *, data: DataFunction[M] | None = None, commands: CommandsFunction[M] | None = None,
                  changes: Iterable[Change] = CHANGES,
                  history: bool | int | None = None) -> Callable[[GroupsFunction[M]], ModelChanges[M]]:
    """Decorate a function ``(instance, change) -> group name(s)`` to publish ``model``'s changes to those groups.

    Returns a :class:`ModelChanges` (see there for ``data``, ``commands``, ``changes`` and ``history``).
    """
    _check_model(model)

    def decorate(groups: GroupsFunction[M]) -> ModelChanges[M]:
        return ModelChanges(model, groups, data=data, commands=commands, changes=changes, history=history)

    return decorate


def _check_model(model: type[M]) -> type[M]:
    if not (isinstance(model, type) and issubclass(model, models.Model)):
        raise TypeError(f"model_changes() needs a model class, such as Message, not {model!r}.")
    if model._meta.abstract:
        raise TypeError(f"{model.__name__} is abstract: Django sends no signals for it. Use model_changes() on each "
                        "concrete model that inherits from it.")
    return model


def _check_callable(what: str, function: F) -> F:
    if not callable(function):
        raise TypeError(f"model_changes(): {what} must be a function (instance, change) -> ..., not {function!r}.")
    return function


def _check_changes(changes: Iterable[Change]) -> frozenset[Change]:
    if isinstance(changes, str):
        changes = (changes,)  # type: ignore[assignment]
    chosen = frozenset(changes)
    unknown = sorted(map(str, chosen - set(CHANGES)))
    if unknown or not chosen:
        raise ValueError(f"model_changes(): changes must name some of {', '.join(CHANGES)}; got {sorted(chosen)!r}.")
    return chosen
