#!/usr/bin/env python3
"""Run the whole hypergen_ws test suite: ``python3 scripts/test.py [pytest arguments]``.

Steps, each reported in a summary at the end (the exit code is non-zero when any step failed):

1. ``.venv`` with ``pip install -e ".[dev]"`` (skipped when pyproject.toml did not change);
2. services: ``redis-server`` and ``/usr/bin/chromium`` are installed with apt-get when missing and this runs
   as root (otherwise the install command is printed; pytest then skips those tests, or fails them under
   ``CI=true`` or ``HYPERGEN_WS_REQUIRE_SERVICES=1``). Playwright uses Debian's chromium: never run
   ``playwright install``;
3. ``python -m pytest`` with the extra arguments;
4. ``node --test`` on the JavaScript unit tests in ``tests/js/`` (without node: a failure when ``CI=true``,
   otherwise a note);
5. the documentation: ``python -m sphinx -W -b html docs docs/_build/html``;
6. the types: ``mypy`` (strict, configured in pyproject.toml) on the package;
7. the architecture: ``lint-imports`` (the import-linter contracts of pyproject.toml: the layers of the package);
8. the TypeScript types of the JS client: ``tsc --strict --noEmit -p tests/ts`` (``hypergen-ws.d.ts`` and a typed
   example); TypeScript is installed from npm into ``node_modules/`` (not committed) when it is not there yet
   (without npm: a failure when ``CI=true``, otherwise a note).

``--skip-pytest``, ``--skip-js``, ``--skip-docs``, ``--skip-types``, ``--skip-layers`` and ``--skip-ts`` leave a step
out (they are not passed to pytest).
"""
from __future__ import annotations

import fnmatch
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _bootstrap import REPO_ROOT, check_python, ensure_venv, run, venv_env  # noqa: E402

CHROMIUM = "/usr/bin/chromium"
JS_TEST_DIR = REPO_ROOT / "tests" / "js"
# The file names `node --test` picks up by default.
JS_TEST_PATTERNS = ("*.test.js", "*.test.mjs", "*.test.cjs", "*-test.js", "*-test.mjs", "*-test.cjs",
                    "*_test.js", "*_test.mjs", "*_test.cjs", "test-*.js", "test-*.mjs", "test-*.cjs",
                    "test.js", "test.mjs", "test.cjs")
OWN_OPTIONS = ("--skip-pytest", "--skip-js", "--skip-docs", "--skip-types", "--skip-layers", "--skip-ts")
#: The TypeScript that checks hypergen-ws.d.ts (installed into node_modules/, which git ignores).
TYPESCRIPT = "typescript@5"
TSC = REPO_ROOT / "node_modules" / ".bin" / "tsc"
PYTEST_EXIT = {1: "tests failed", 2: "interrupted", 3: "internal error", 4: "usage error",
               5: "no tests were collected"}


def in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() in ("true", "1", "yes")


class Summary:
    """Collects one line per step and prints them at the end."""

    def __init__(self) -> None:
        self.lines: list[tuple[str, str, str]] = []

    def add(self, step: str, status: str, detail: str = "") -> None:
        self.lines.append((step, status, detail))
        print(f"\n==> {step}: {status}{' - ' + detail if detail else ''}\n", flush=True)

    @property
    def failed(self) -> bool:
        return any(status == "FAILED" for _, status, _ in self.lines)

    def print(self) -> None:
        print("\n" + "=" * 30 + " scripts/test.py summary " + "=" * 30)
        for step, status, detail in self.lines:
            print(f"  {step:<9} {status:<8} {detail}")
        print(f"  overall   {'FAILED' if self.failed else 'OK'}", flush=True)


def timed(start: float) -> str:
    return f"{time.monotonic() - start:.1f}s"


def ensure_services() -> tuple[str, str]:
    """Install redis-server and chromium with apt-get if missing and possible; return (status, detail)."""
    missing = []
    if shutil.which("redis-server") is None:
        missing.append("redis-server")
    if not os.access(CHROMIUM, os.X_OK):
        missing.append("chromium")
    if not missing:
        return "OK", "redis-server and chromium present"
    is_root = hasattr(os, "geteuid") and os.geteuid() == 0
    sudo = "" if is_root else "sudo "
    command = f"{sudo}apt-get update && {sudo}apt-get install -y {' '.join(missing)}"
    if is_root and shutil.which("apt-get"):
        print(f"installing {', '.join(missing)}: {command}", flush=True)
        env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
        ok = subprocess.call(["apt-get", "update"], env=env, stdin=subprocess.DEVNULL) == 0
        ok = ok and subprocess.call(["apt-get", "install", "-y", *missing], env=env, stdin=subprocess.DEVNULL) == 0
        if ok:
            return "OK", f"installed {', '.join(missing)}"
        return "MISSING", f"could not install {', '.join(missing)}; their tests skip (or fail under CI)"
    print(f"\nmissing: {', '.join(missing)}. Install with: {command}\n"
          "The tests that need them are skipped (they fail when CI=true or HYPERGEN_WS_REQUIRE_SERVICES=1).\n"
          "Do not run 'playwright install': the tests use Debian's /usr/bin/chromium.", flush=True)
    return "MISSING", f"{', '.join(missing)} (install: {command})"


def js_test_files() -> list[Path]:
    if not JS_TEST_DIR.is_dir():
        return []
    files = [path for path in JS_TEST_DIR.rglob("*")
             if path.is_file() and "node_modules" not in path.parts
             and any(fnmatch.fnmatch(path.name, pattern) for pattern in JS_TEST_PATTERNS)]
    return sorted(files)


def run_pytest(python: Path, args: list[str], summary: Summary) -> None:
    start = time.monotonic()
    code = run([python, "-m", "pytest", *args], env=venv_env())
    if code == 0:
        summary.add("pytest", "OK", timed(start))
    else:
        summary.add("pytest", "FAILED", f"exit code {code}: {PYTEST_EXIT.get(code, 'error')} ({timed(start)})")


def run_js(summary: Summary) -> None:
    node = shutil.which("node")
    if node is None:
        hint = "install Node.js 18 or newer (apt-get install nodejs) to run them"
        if in_ci():
            summary.add("js", "FAILED", f"node not found (CI=true): {hint}")
        else:
            print(f"\nThe JavaScript unit tests in tests/js/ were NOT run: node is not installed; {hint}.\n")
            summary.add("js", "NOT RUN", f"node not found: {hint}")
        return
    files = js_test_files()
    if not files:
        summary.add("js", "FAILED", f"no JavaScript test files in {JS_TEST_DIR.relative_to(REPO_ROOT)}/")
        return
    start = time.monotonic()
    # Explicit files rather than the directory: every Node.js version since 18 accepts them.
    code = run([node, "--test", *(path.relative_to(REPO_ROOT) for path in files)])
    if code == 0:
        summary.add("js", "OK", f"{len(files)} files ({timed(start)})")
    else:
        summary.add("js", "FAILED", f"node --test exit code {code} ({timed(start)})")


def run_ts(summary: Summary) -> None:
    npm = shutil.which("npm")
    if not TSC.exists() and npm is None:
        hint = "install npm (apt-get install npm) so that TypeScript can be installed into node_modules/"
        if in_ci():
            summary.add("ts", "FAILED", f"npm not found (CI=true): {hint}")
        else:
            print(f"\nThe TypeScript check of hypergen-ws.d.ts was NOT run: {hint}.\n")
            summary.add("ts", "NOT RUN", f"npm not found: {hint}")
        return
    start = time.monotonic()
    if not TSC.exists():
        assert npm is not None
        print(f"installing {TYPESCRIPT} into node_modules/ (npm)", flush=True)
        code = run([npm, "install", "--no-save", "--no-audit", "--no-fund", "--prefix", str(REPO_ROOT), TYPESCRIPT])
        if code != 0 or not TSC.exists():
            summary.add("ts", "FAILED", f"npm install {TYPESCRIPT} failed (exit code {code})")
            return
    code = run([str(TSC), "--strict", "--noEmit", "-p", "tests/ts"])
    if code == 0:
        summary.add("ts", "OK", f"tsc --strict --noEmit -p tests/ts ({timed(start)})")
    else:
        summary.add("ts", "FAILED", f"tsc exit code {code} ({timed(start)})")


def run_docs(python: Path, summary: Summary) -> None:
    if not (REPO_ROOT / "docs" / "conf.py").exists():
        summary.add("docs", "FAILED", "docs/conf.py not found")
        return
    start = time.monotonic()
    code = run([python, "-m", "sphinx", "-W", "-b", "html", "docs", "docs/_build/html"], env=venv_env())
    if code == 0:
        summary.add("docs", "OK", f"docs/_build/html/index.html ({timed(start)})")
    else:
        summary.add("docs", "FAILED", f"sphinx -W exit code {code} ({timed(start)})")


def run_tool(name: str, command: list[str], summary: Summary) -> None:
    """Run a checker from the venv (mypy, lint-imports) as one step of the summary."""
    start = time.monotonic()
    code = run(command, env=venv_env())
    if code == 0:
        summary.add(name, "OK", timed(start))
    else:
        summary.add(name, "FAILED", f"exit code {code} ({timed(start)})")


def main(argv: list[str]) -> int:
    check_python()
    skip = {option for option in argv if option in OWN_OPTIONS}
    pytest_args = [arg for arg in argv if arg not in OWN_OPTIONS]
    summary = Summary()

    start = time.monotonic()
    python = ensure_venv("dev")
    summary.add("install", "OK", f".venv with .[dev] ({timed(start)})")
    summary.add("services", *ensure_services())

    if "--skip-pytest" in skip:
        summary.add("pytest", "SKIPPED", "--skip-pytest")
    else:
        run_pytest(python, pytest_args, summary)
    if "--skip-js" in skip:
        summary.add("js", "SKIPPED", "--skip-js")
    else:
        run_js(summary)
    if "--skip-docs" in skip:
        summary.add("docs", "SKIPPED", "--skip-docs")
    else:
        run_docs(python, summary)
    if "--skip-types" in skip:
        summary.add("types", "SKIPPED", "--skip-types")
    else:
        run_tool("types", [python, "-m", "mypy"], summary)
    if "--skip-layers" in skip:
        summary.add("layers", "SKIPPED", "--skip-layers")
    else:
        run_tool("layers", [python.parent / "lint-imports", "--no-cache"], summary)
    if "--skip-ts" in skip:
        summary.add("ts", "SKIPPED", "--skip-ts")
    else:
        run_ts(summary)

    summary.print()
    return 1 if summary.failed else 0


if __name__ == "__main__":
    try:
        sys.exit(main(sys.argv[1:]))
    except KeyboardInterrupt:
        sys.exit(130)
