"""Only backends/ reaches into another library's internals (docs/architecture.rst): the attributes below are
Channels' and Django's own, and outside hypergen_ws/backends/ no module names them (as an attribute, in getattr,
hasattr or delattr, or by importing Channels' layer cache)."""
from __future__ import annotations

import ast
from pathlib import Path

import hypergen_ws

PACKAGE = Path(hypergen_ws.__file__).parent

#: Another library's attribute -> whose it is and where hypergen_ws reads it.
FOREIGN = {
    "application_mapping": "Channels' ProtocolTypeRouter (backends.routers.protocol_mapping)",
    "routes": "Channels' URLRouter (backends.routers.url_routes), as getattr(..., 'routes')",
    "inner": "Channels' middleware (backends.routers.wrapped_app)",
    "channel_receive": "Channels' AsyncConsumer.__call__ (backends.channels_hooks.OwnChannelReceive)",
    "_perm_cache": "Django's ModelBackend (backends.django_auth)",
    "_user_perm_cache": "Django's ModelBackend (backends.django_auth)",
    "_group_perm_cache": "Django's ModelBackend (backends.django_auth)",
}
#: Attribute names that hypergen_ws's own objects also use: only their getattr/hasattr form is foreign.
OWN_TOO = {"routes", "inner", "channel_receive"}
#: What is still outside backends/ and why (core sits below backends/, so it cannot ask it).
KNOWN = {("core/authstack.py", "inner"): "SameOriginValidator unwraps AuthMiddlewareStack in core"}


def foreign_uses(source: str) -> list[tuple[int, str]]:
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Attribute) and node.attr in FOREIGN and node.attr not in OWN_TOO:
            found.append((node.lineno, node.attr))
        elif isinstance(node, ast.Call) and isinstance(node.func, ast.Name) \
                and node.func.id in {"getattr", "hasattr", "delattr", "setattr"} and len(node.args) >= 2 \
                and isinstance(node.args[1], ast.Constant) and node.args[1].value in FOREIGN:
            found.append((node.lineno, str(node.args[1].value)))
        elif isinstance(node, ast.ImportFrom) and node.module == "channels.layers" \
                and any(alias.name == "channel_layers" for alias in node.names):
            found.append((node.lineno, "channel_layers"))
        elif isinstance(node, ast.Assign) and any(isinstance(t, ast.Attribute) and t.attr == "channel_receive"
                                                  and isinstance(t.value, ast.Name) for t in node.targets):
            found.append((node.lineno, "channel_receive"))
    return found


def test_only_backends_touch_other_libraries_internals():
    found = []
    for path in sorted(PACKAGE.rglob("*.py")):
        relative = path.relative_to(PACKAGE).as_posix()
        if relative.startswith("backends/"):
            continue
        for line, name in foreign_uses(path.read_text()):
            if (relative, name) not in KNOWN:
                found.append(f"hypergen_ws/{relative}:{line} reads {name!r} of {FOREIGN.get(name, 'Channels')}")
    assert not found, "Move these behind a function in hypergen_ws/backends/:\n" + "\n".join(found)


def test_the_scan_finds_each_kind_of_use():
    source = ("from channels.layers import channel_layers\n"
              "x = router.application_mapping\n"
              "y = getattr(node, 'inner', None)\n"
              "delattr(user, '_perm_cache')\n"
              "self.channel_receive = receive\n")
    assert sorted(name for _, name in foreign_uses(source)) == sorted(
        ["channel_layers", "application_mapping", "inner", "_perm_cache", "channel_receive"])


def test_every_known_exception_is_still_there():
    for (relative, name), why in KNOWN.items():
        assert any(found == name for _, found in foreign_uses((PACKAGE / relative).read_text())), (
            f"{relative} no longer reads {name!r} ({why}): drop it from KNOWN")
