"""How browser arguments and URL kwargs are bound to a consumer function (checked once, when decorating)."""
from __future__ import annotations

import inspect
from collections.abc import Callable, Sequence
from typing import Any

from django.core.exceptions import ImproperlyConfigured

from .protocol import ProtocolError

_JSON_TYPES: dict[Any, tuple[type, ...]] = {
    str: (str,), int: (int,), float: (int, float), bool: (bool,), list: (list,), dict: (dict,),
    "str": (str,), "int": (int,), "float": (int, float), "bool": (bool,), "list": (list,), "dict": (dict,),
}


class Binder:
    """Binds ``(consumer, request, *browser_args)`` plus URL kwargs (by name) to a function's parameters."""

    def __init__(self, func: Callable[..., Any], url_kwargs: Sequence[str], where: str) -> None:
        self.func_name = func.__name__
        self.signature = sig = inspect.signature(func)
        params = list(sig.parameters.values())
        positional = [p for p in params if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
        has_varargs = any(p.kind == p.VAR_POSITIONAL for p in params)
        has_varkw = any(p.kind == p.VAR_KEYWORD for p in params)
        if len(positional) < 2 and not has_varargs:
            raise ImproperlyConfigured(
                f"{where} must accept (consumer, request, ...) as its first two parameters, e.g. "
                f"def {self.func_name}(consumer, request, message): ..."
            )
        names = {p.name: p for p in params}
        for kw in url_kwargs:
            param = names.get(kw)
            if param is None and not has_varkw:
                raise ImproperlyConfigured(
                    f"{where} does not accept the URL kwarg {kw!r}. Add a keyword-only parameter for it: "
                    f"def {self.func_name}(consumer, request, ..., *, {kw}): ..."
                )
            if param is not None and param.kind in (param.POSITIONAL_ONLY, param.VAR_POSITIONAL):
                raise ImproperlyConfigured(
                    f"{where}: the URL kwarg {kw!r} cannot be passed to a positional-only parameter; "
                    f"make it keyword-only: def {self.func_name}(consumer, request, ..., *, {kw})."
                )
        self.url_kwargs = frozenset(url_kwargs)
        browser = [p for p in positional[2:] if p.name not in self.url_kwargs]
        self.by_name = any(p.name in self.url_kwargs for p in positional[2:])
        if self.by_name and has_varargs:
            raise ImproperlyConfigured(
                f"{where}: with *args, URL kwargs must be keyword-only parameters (after *args)."
            )
        self.browser_params = browser
        self.has_varargs = has_varargs
        self.types = {p.name: _JSON_TYPES[p.annotation] for p in browser if p.annotation in _JSON_TYPES}

    def describe(self) -> str:
        """The browser arguments, for error messages: ``(text, count=1)``."""
        parts = [p.name if p.default is p.empty else f"{p.name}={p.default!r}" for p in self.browser_params]
        if self.has_varargs:
            parts.append("*args")
        return "(" + ", ".join(parts) + ")"

    def expected(self, required: int) -> str:
        """How many browser arguments the function takes, in words: ``1 argument (text)``."""
        most = len(self.browser_params)
        if self.has_varargs:
            count = f"at least {_arguments(required)}" if required else "any number of arguments"
        elif required == most:
            count = _arguments(most) if most else "no arguments"
        else:
            count = f"{required} to {most} arguments"
        return count if count == "no arguments" else f"{count} {self.describe()}"

    def bind(self, consumer: Any, request: Any, args: list[Any], url_kwargs: dict[str, Any]
             ) -> tuple[tuple[Any, ...], dict[str, Any]]:
        """Return ``(args, kwargs)`` for the call, or raise ``ProtocolError`` saying what the browser got wrong."""
        required = sum(1 for p in self.browser_params if p.default is p.empty)
        if len(args) < required or (len(args) > len(self.browser_params) and not self.has_varargs):
            raise ProtocolError(f"{self.func_name}() takes {self.expected(required)} from the browser, "
                                f"got {len(args)}.")
        for param, value in zip(self.browser_params, args):
            expected = self.types.get(param.name)
            if expected and (not isinstance(value, expected) or (bool not in expected and isinstance(value, bool))):
                raise ProtocolError(
                    f"{self.func_name}() argument {param.name!r} must be {expected[0].__name__}, "
                    f"got {type(value).__name__}."
                )
        if not self.by_name:
            return (consumer, request, *args), dict(url_kwargs)
        kwargs = {p.name: v for p, v in zip(self.browser_params, args)}
        kwargs.update(url_kwargs)
        return (consumer, request), kwargs


def _arguments(count: int) -> str:
    return f"{count} argument{'' if count == 1 else 's'}"
