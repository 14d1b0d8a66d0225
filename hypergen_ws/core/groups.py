"""Group names derived from a consumer's label and URL kwargs.

A name is valid for every Channels layer (``^[a-zA-Z0-9_.-]+$``, fewer than 100 characters), injective and the
same in every process. Short names stay readable::

    hgws.chat.send_message.room_name.vip

Components are separated by ``.``. The app label, function name and kwarg names are ASCII identifiers (checked
when the decorator runs) and never contain ``.``; inside a value every character outside ``[A-Za-z0-9-]`` is escaped
(``_`` as ``__``, anything else as ``_`` plus two hex digits per UTF-8 byte), so no value can contain the separator
and two different inputs never give the same name. A readable name of 100 characters or more is replaced by
``hgwsh.`` + a readable prefix + a SHA-256 digest of the readable name; the distinct first component keeps the two
forms apart.
"""
from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping
from typing import Any

MAX_LENGTH = 99
VALID_GROUP_NAME = re.compile(r"^[a-zA-Z0-9_.-]+$")
_KEEP = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-")


def escape(value: str) -> str:
    """Escape ``value`` so that it holds only ``[A-Za-z0-9_-]`` and can be decoded again."""
    out = []
    for char in value:
        if char in _KEEP:
            out.append(char)
        elif char == "_":
            out.append("__")
        else:
            out.extend(f"_{byte:02x}" for byte in char.encode("utf-8", "surrogatepass"))
    return "".join(out)


def readable_name(label: str, url_kwargs: Mapping[str, Any]) -> str:
    """The long, readable form of a group name (may exceed the layer's limit)."""
    parts = ["hgws", label]
    for key in sorted(url_kwargs):
        parts.append(key)
        parts.append(escape(str(url_kwargs[key])))
    return ".".join(parts)


def group_name_for(label: str, url_kwargs: Mapping[str, Any]) -> str:
    """Return the group name of consumer ``label`` for ``url_kwargs``."""
    name = readable_name(label, url_kwargs)
    if len(name) <= MAX_LENGTH:
        return name
    digest = hashlib.sha256(name.encode("ascii")).hexdigest()[:56]
    return f"hgwsh.{name[5:40].rstrip('._')}.{digest}"


ASCII_IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def check_group_name(name: object) -> str:
    """Return ``name`` if it is a valid group name, else raise ``ValueError`` saying what is wrong."""
    if not isinstance(name, str):
        raise ValueError(f"A group name must be a str, not {type(name).__name__}.")
    if not name or len(name) > MAX_LENGTH or not VALID_GROUP_NAME.match(name):
        raise ValueError(
            f"Invalid group name {name!r}: use 1 to {MAX_LENGTH} characters from a-z, A-Z, 0-9, '_', '.', '-'. "
            "Derive names with <consumer>.group_name(**url_kwargs) to get a valid one for any value."
        )
    return name
