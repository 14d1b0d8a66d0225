"""The URL part of ``@consumer``: checking ``path=`` / ``re_path=`` and binding URL kwarg values.

Two mistakes are easy to make when copying a route from elsewhere, and both used to pass silently or with an
error that did not show the fix:

* converter and name swapped, ``<room:slug>`` instead of ``<slug:room>``;
* a leading slash, ``"/<slug:room>/"``, which makes the route ``send_message//<slug:room>/``.

:func:`check_path` and :func:`check_re_path` refuse both when the decorator runs, with the corrected path in the
message. :func:`bind_url_values` lets ``reverse()`` and ``group_name()`` take the URL kwargs by name or by
position (in the order they appear in the route), and says which URL kwargs there are when the values do not fit.
"""
from __future__ import annotations

import re
import uuid
from collections.abc import Mapping, Sequence
from typing import Any
from urllib.parse import quote

from django.core.exceptions import ImproperlyConfigured
from django.urls import NoReverseMatch
from django.urls.converters import get_converters
from django.urls.resolvers import RegexPattern, RoutePattern
from django.utils.regex_helper import normalize

from .groups import ASCII_IDENTIFIER

__all__ = ["UrlValuesError", "bind_url_values", "canonical_url_value", "check_path", "check_re_path", "compile_route",
           "reverse_route"]

# The parameter syntax of django.urls.path(): <name> or <converter:name>.
_PARAMETER = re.compile(r"<(?:(?P<converter>[^>:]+):)?(?P<name>[^>]+)>")
_REGEX_HINTS = ("(?P<", "^", "$")


class UrlValuesError(TypeError):
    """URL kwarg values that do not fit a consumer's route (a wrong count, or a name it does not have)."""


def check_path(path: str, where: str) -> None:
    """Raise ``ImproperlyConfigured`` for a ``path=`` that cannot mean what its author wanted.

    The message always contains the corrected path, ready to paste.
    """
    if not isinstance(path, str):
        raise ImproperlyConfigured(f"{where}: path={path!r} must be a str in Django path syntax, e.g. "
                                   "path='<slug:room_name>/'.")
    problems: list[str] = []
    fixed = path
    if fixed.startswith("/"):
        fixed = fixed.lstrip("/")
        problems.append("it starts with '/', which would give the route a double slash "
                        "(the generated prefix already ends with '/')")
    converters = get_converters()

    def swap(match: re.Match[str]) -> str:
        converter, name = match.group("converter"), match.group("name")
        if converter is None or converter in converters:
            return match.group(0)
        if name in converters:
            problems.append(f"<{converter}:{name}> has the converter and the name swapped: Django writes "
                            f"<converter:name>, so it is <{name}:{converter}>")
            return f"<{name}:{converter}>"
        known = ", ".join(sorted(converters))
        problems.append(f"<{converter}:{name}> uses the converter {converter!r}, which is not registered "
                        f"(known converters: {known}; add your own with django.urls.register_converter)")
        return match.group(0)

    fixed = _PARAMETER.sub(swap, fixed)
    if not problems and any(hint in path for hint in _REGEX_HINTS):
        raise ImproperlyConfigured(
            f"{where}: path={path!r} looks like a regular expression; path= takes Django path syntax "
            f"('<slug:room_name>/'). Pass re_path={path!r} instead."
        )
    if problems:
        raise ImproperlyConfigured(f"{where}: path={path!r}: {'; '.join(problems)}. Write path={fixed!r}.")


def check_re_path(re_path: str, where: str) -> None:
    """Raise ``ImproperlyConfigured`` for a ``re_path=`` with a leading slash, naming the corrected pattern."""
    if not isinstance(re_path, str):
        raise ImproperlyConfigured(f"{where}: re_path={re_path!r} must be a str (a regular expression), e.g. "
                                   "re_path=r'^(?P<room_name>[-\\w]+)/$'.")
    body = re_path[1:] if re_path.startswith("^") else re_path
    if body.startswith("/"):
        fixed = ("^" if re_path.startswith("^") else "") + body.lstrip("/")
        raise ImproperlyConfigured(
            f"{where}: re_path={re_path!r} starts with '/', which would give the route a double slash (the "
            f"generated prefix already ends with '/'). Write re_path={fixed!r}."
        )


def bind_url_values(label: str, method: str, names: Sequence[str], args: Sequence[object],
                    kwargs: Mapping[str, object]) -> dict[str, object]:
    """Bind ``args`` (in route order) and ``kwargs`` (by name) to the URL kwargs ``names``.

    Raises :class:`UrlValuesError` listing the URL kwargs when a value is missing, left over, unknown or given
    twice; ``label`` and ``method`` name the call in that message (``chat.send_message.group_name()``).
    """
    call = f"{label}.{method}()"
    if not names:
        expected = f"{call} takes no values: the route of {label} has no URL kwargs"
    else:
        expected = (f"{call} takes the URL kwargs ({', '.join(names)}), by name or as positional values in "
                    "that order")
    if len(args) > len(names):
        raise UrlValuesError(f"{expected}; got {len(args)} positional value{'s' if len(args) != 1 else ''}.")
    bound: dict[str, object] = dict(zip(names, args))
    twice = [name for name in kwargs if name in bound]
    if twice:
        raise UrlValuesError(f"{expected}; got {', '.join(twice)} both by position and by name.")
    unknown = [name for name in kwargs if name not in names]
    if unknown:
        raise UrlValuesError(f"{expected}; {', '.join(map(repr, unknown))} "
                             f"{'is not a URL kwarg' if len(unknown) == 1 else 'are not URL kwargs'} of {label}.")
    bound.update(kwargs)
    missing = [name for name in names if name not in bound]
    if missing:
        raise UrlValuesError(f"{expected}; {', '.join(map(repr, missing))} "
                             f"{'is' if len(missing) == 1 else 'are'} missing.")
    return {name: bound[name] for name in names}


def reverse_route(label: str, route: str, is_regex: bool, converters: Mapping[str, Any],
                  kwargs: Mapping[str, Any]) -> str:
    """The URL of ``route`` (``path`` syntax, or a regex when ``is_regex``) for ``kwargs``, each value through its
    converter's ``to_url``; ``NoReverseMatch`` names ``label`` and the route when the values do not fit it."""
    pattern = RegexPattern(route) if is_regex else RoutePattern(route, is_endpoint=True)
    regex = pattern.regex
    text = {k: converters[k].to_url(v) if k in converters else str(v) for k, v in kwargs.items()}
    for fmt, params in normalize(regex.pattern):
        if set(params) != set(kwargs):
            continue
        candidate = fmt % text
        if regex.fullmatch(candidate):
            return "/" + quote(candidate, safe="!$&'()*+,;=/~:@")
    raise NoReverseMatch(f"{label}.reverse(**{dict(kwargs)!r}): the values do not match the route {route!r}.")


def compile_route(path: str, re_path: str | None, where: str) -> tuple[RoutePattern | RegexPattern, list[str]]:
    """Check ``path=`` / ``re_path=`` and compile it: the pattern and its URL kwarg names, in route order.

    Raises ``ImproperlyConfigured`` (starting with ``where``) for a route Django cannot compile, an unnamed regex
    group, or a URL kwarg that is not an ASCII identifier (it becomes part of group names).
    """
    if re_path is not None:
        check_re_path(re_path, where)
    else:
        check_path(path, where)
    pattern = RegexPattern(re_path) if re_path is not None else RoutePattern(path, is_endpoint=True)
    try:
        names = list(pattern.regex.groupindex)
    except ImproperlyConfigured as exc:
        raise ImproperlyConfigured(f"{where}: {exc}") from exc
    if re_path is not None and pattern.regex.groups != len(names):
        raise ImproperlyConfigured(f"{where}: re_path groups must be named, like (?P<room>[-\\w]+).")
    for name in names:
        if not ASCII_IDENTIFIER.match(name):
            raise ImproperlyConfigured(f"{where}: URL kwarg {name!r} must be an ASCII identifier.")
    return pattern, names


def canonical_url_value(label: str, key: str, value: Any, converter: Any) -> Any:
    """``value`` of the URL kwarg ``key`` as a route would give it, for ``group_name()``; ``TypeError`` for a value
    no route gives, whose string would name another value's group (``None`` and ``"None"``).

    A value is taken as the URL spells it: ``5`` and ``"5"`` (or a ``UUID`` and its string) are the same URL and
    so the same group. Routes give ``str`` values, an ``int`` for ``<int:...>``, a ``UUID`` for ``<uuid:...>``, and
    whatever a converter of the project's own makes; anything else (``None``, ``True``, ``1.5``, a list, a model
    instance) is refused: its ``str()`` would be taken for a string.
    """
    builtin = converter is None or type(converter).__module__ == "django.urls.converters"
    if value is None or (builtin and (isinstance(value, bool) or not isinstance(value, (str, int, uuid.UUID)))):
        spelled = "" if value is None else f" (the URL would spell it {str(value)!r}: pass that string if you mean it)"
        raise TypeError(
            f"{label}.group_name({key}={value!r}): a URL kwarg is a str, or an int or a UUID where the route "
            f"converts to one, as a route gives it; not {type(value).__name__}{spelled}.")
    if converter is None:
        return value
    try:
        return converter.to_python(converter.to_url(value))
    except (ValueError, TypeError) as exc:
        raise ValueError(f"{label}.group_name({key}={value!r}): not a value the route's converter "
                        f"{type(converter).__name__} takes ({exc}).") from None
