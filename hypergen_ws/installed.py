"""``hypergen_ws.E010``: hypergen_ws is used, but ``"hypergen_ws"`` is not in ``INSTALLED_APPS``.

Its other checks are registered by its app config, so they never run then; this one is registered as soon as the
package's public names are used (``from hypergen_ws import consumer``), and ``autoconsumers()`` raises the same
message. Without the app Django finds neither the template tags (``{% load hypergen_ws %}`` fails) nor the
JavaScript client's static file, and the logout handling and the channel layer's hook are not installed.
"""
from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from django.apps import apps
from django.core.checks import CheckMessage, Error

__all__ = ["check_installed", "not_installed_message", "templates_loading_the_tags"]

LOAD_TAG = re.compile(r"\{%\s*load\s[^%]*\bhypergen_ws\b[^%]*%\}")
HINT = "Add 'hypergen_ws' to INSTALLED_APPS, after 'daphne' and 'channels' (see the quickstart)."
#: Template files read at most, so that a huge template tree cannot slow ``check`` down.
MAX_TEMPLATES = 2000


def _template_dirs() -> Iterator[Path]:
    from django.template import engines
    from django.template.backends.django import DjangoTemplates

    for engine in engines.all():
        if isinstance(engine, DjangoTemplates):
            yield from (Path(d) for d in engine.dirs)
            if engine.app_dirs:
                yield from (Path(config.path) / "templates" for config in apps.get_app_configs())


def templates_loading_the_tags() -> list[str]:
    """The templates (relative to their template directory) that ``{% load hypergen_ws %}``."""
    found: list[str] = []
    read = 0
    for directory in _template_dirs():
        if not directory.is_dir():
            continue
        for path in sorted(p for p in directory.rglob("*") if p.is_file()):
            read += 1
            if read > MAX_TEMPLATES:
                return found
            try:
                text = path.read_text(encoding="utf-8")
            except (OSError, UnicodeDecodeError):
                continue
            if LOAD_TAG.search(text):
                found.append(path.relative_to(directory).as_posix())
    return found


def not_installed_message() -> str:
    """What is wrong when hypergen_ws runs without being an installed app."""
    templates = templates_loading_the_tags()
    shown = ", ".join(templates[:3]) + (f" and {len(templates) - 3} more" if len(templates) > 3 else "")
    tags = (f"{shown} {'loads' if len(templates) == 1 else 'load'} its template tags ({{% load hypergen_ws %}}), "
            "which Django cannot find, and " if templates else "its template tags, ")
    return (f"hypergen_ws is used, but 'hypergen_ws' is not in INSTALLED_APPS: {tags}the JavaScript client's static "
            "file (hypergen_ws/hypergen-ws.js), its system checks and its logout handling are missing.")


def check_installed(app_configs: Sequence[Any] | None = None, **kwargs: object) -> list[CheckMessage]:
    """E010: the package is used without its app."""
    if apps.is_installed("hypergen_ws"):
        return []
    return [Error(not_installed_message(), hint=HINT, id="hypergen_ws.E010")]
