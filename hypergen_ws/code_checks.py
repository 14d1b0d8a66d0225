"""System checks that read the project's code: permissions named by consumers, and consumers no route can reach.

* E046: a ``perm`` string names a permission that no installed model declares (``Meta.permissions`` or the
  default add/change/delete/view), so every user but superusers is refused. The models say it before any
  migration runs, so a plain ``manage.py check`` reports it; ``check --database default`` also accepts the
  permissions the database has (made by a data migration, or by hand);
* W049: a module of an installed app defines a ``@consumer`` but nothing imports it: ``autoconsumers()`` imports
  only each app's ``consumers`` and ``views`` modules, so that consumer has no route.

Messages name a consumer by its label (``chat.send_message``), the way ``hypergen_ws_consumers`` lists it.
"""
from __future__ import annotations

import difflib
import re
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path

from django.apps import AppConfig, apps
from django.contrib.auth import get_permission_codename
from django.contrib.auth.models import Permission
from django.core.checks import CheckMessage, Error, Tags, Warning, register
from django.db import DatabaseError, connections, router
from django.db.migrations.executor import MigrationExecutor

from .core import registry
from .core.permissions import NO_PERM_REQUIRED
from .decorators import Consumer

__all__ = ["check_consumer_modules", "check_permissions_exist", "unimported_consumer_modules"]

#: A line that applies hypergen_ws's decorator: ``@consumer(...)`` or ``@hypergen_ws.consumer(...)``.
DECORATOR = re.compile(r"^\s*@(?:hypergen_ws\.)?consumer\b", re.M)
#: The module takes ``consumer`` from hypergen_ws (not a decorator of the same name from elsewhere).
FROM_HYPERGEN_WS = re.compile(r"^\s*(?:from\s+hypergen_ws\s+import\s[^\n]*\bconsumer\b|import\s+hypergen_ws\b)",
                              re.M)
#: Directories of an app that hold no modules autoconsumers() should see.
SKIPPED_DIRECTORIES = frozenset({"migrations", "tests", "templates", "static", "node_modules", "__pycache__"})


def _consumers() -> list[Consumer]:
    return [spec for spec in registry.all_consumers() if isinstance(spec, Consumer)]


def _discovered() -> bool:
    """Import the apps' consumers; False when that fails (``hypergen_ws.E007`` says why)."""
    try:
        registry.discover()
    except Exception:
        return False
    return True


@register(Tags.compatibility)
def check_permissions_exist(app_configs: Sequence[AppConfig] | None = None, databases: Sequence[str] | None = None,
                            **kwargs: object) -> list[CheckMessage]:
    """E046: ``perm=`` names a permission that no model declares (nor, with ``--database``, the database has)."""
    if not _discovered():
        return []
    known = _declared_permissions()
    alias = router.db_for_read(Permission)
    consult_database = bool(databases) and alias in (databases or ())
    pending_migrations = False
    if consult_database:
        try:
            known |= {f"{app_label}.{codename}" for app_label, codename
                      in Permission.objects.using(alias).values_list("content_type__app_label", "codename")}
            pending_migrations = _migrations_pending(alias)
        except DatabaseError:  # not migrated yet: the models' declarations are all there is
            pass
    labels = {config.label for config in apps.get_app_configs()}
    errors: list[CheckMessage] = []
    for spec in _consumers():
        for perm in _perm_strings(spec):
            if perm in known or pending_migrations:  # a data migration still to run may create it
                continue
            errors.append(Error(
                f"requires the permission {perm!r}, which does not exist: every user except superusers is "
                "refused (4403).",
                hint=_hint(perm, known, labels, consult_database), obj=spec.label, id="hypergen_ws.E046",
            ))
    return errors


def _hint(perm: str, known: set[str], labels: set[str], consulted_database: bool) -> str:
    close = difflib.get_close_matches(perm, sorted(known), n=1, cutoff=0.8)
    app_label = perm.partition(".")[0]
    if close:
        hint = f"Did you mean perm='{close[0]}'?"
    elif app_label not in labels:
        hint = (f"No installed app has the label {app_label!r}; the part before the dot is the app label of the "
                "model that declares the permission.")
    else:
        hint = ("Declare it in a model's Meta.permissions = [('codename', 'Description')], then run makemigrations "
                "and migrate; or fix the perm string.")
    if not consulted_database:
        hint += (" If the permission exists only in the database (made by a data migration or by hand), "
                 "'manage.py check --database default' finds it there.")
    return hint


def _perm_strings(spec: Consumer) -> Iterator[str]:
    perm = spec.permission.spec
    if perm is NO_PERM_REQUIRED or spec.permission.missing or callable(perm):
        return
    if isinstance(perm, str):
        yield perm
    elif isinstance(perm, (list, tuple)):
        yield from (p for p in perm if isinstance(p, str))


def _declared_permissions() -> set[str]:
    """``app_label.codename`` of every permission the installed models declare (created by ``migrate``)."""
    declared: set[str] = set()
    for model in apps.get_models():
        opts = model._meta
        codenames = [get_permission_codename(action, opts) for action in opts.default_permissions]
        codenames += [codename for codename, _ in opts.permissions]
        declared.update(f"{opts.app_label}.{codename}" for codename in codenames)
    return declared


def _migrations_pending(alias: str) -> bool:
    """Whether migrations are waiting to run, which may create permissions (as data migrations)."""
    executor = MigrationExecutor(connections[alias])
    return bool(executor.migration_plan(executor.loader.graph.leaf_nodes()))


# -- consumers in modules nothing imports ---------------------------------------------------------------------


def _project_apps() -> list[AppConfig]:
    """The installed apps whose code is the project's: not hypergen_ws, not installed packages."""
    return [config for config in apps.get_app_configs()
            if config.name != "hypergen_ws" and not any(part in ("site-packages", "dist-packages")
                                                       for part in Path(config.path).parts)]


def unimported_consumer_modules() -> list[tuple[AppConfig, str, Path]]:
    """``(app, module name, file)`` of each module of a project app that applies hypergen_ws's ``@consumer`` but
    that no one imported (after ``autoconsumers()``' discovery)."""
    found = []
    for config in _project_apps():
        root = Path(config.path)
        for path in sorted(root.rglob("*.py")):
            relative = path.relative_to(root)
            if SKIPPED_DIRECTORIES.intersection(relative.parts[:-1]) or relative.name.startswith(("test", "conftest")):
                continue
            parts = [*relative.parts[:-1], relative.stem] if relative.stem != "__init__" else [*relative.parts[:-1]]
            name = ".".join([config.name, *parts])
            if name in sys.modules:
                continue
            try:
                text = path.read_text(encoding="utf-8")
            except (OSError, UnicodeDecodeError):
                continue
            if DECORATOR.search(text) and FROM_HYPERGEN_WS.search(text):
                found.append((config, name, path))
    return found


@register(Tags.compatibility)
def check_consumer_modules(app_configs: Sequence[AppConfig] | None = None, **kwargs: object) -> list[CheckMessage]:
    """W049: a module defines a ``@consumer`` that no route reaches, because nothing imports the module."""
    if not _discovered():
        return []
    warnings: list[CheckMessage] = []
    for config, name, path in unimported_consumer_modules():
        where = Path(config.path).name + "/" + path.relative_to(config.path).as_posix()
        searched = ", ".join(f"{config.name}.{module}" for module in registry.DISCOVERED_MODULES)
        warnings.append(Warning(
            f"{where} defines a @consumer, but nothing imports {name}: autoconsumers() imports only the "
            f"{' and '.join(registry.DISCOVERED_MODULES)} modules of each installed app ({searched}), so its "
            "consumers have no route and no label.",
            hint=f"Move them to {config.name}.consumers, or import the module there "
                 f"('from . import {name.rsplit('.', 1)[-1]}  # noqa: F401').",
            obj=name, id="hypergen_ws.W049",
        ))
    return warnings
