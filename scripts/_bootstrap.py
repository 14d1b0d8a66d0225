"""Shared by scripts/demo.py and scripts/test.py: a ``.venv`` in the repository with the project installed.

Standard library only, so it runs on a fresh machine with nothing but Python 3.11+. The install is skipped when
a stamp in the venv says the same ``pyproject.toml`` was already installed with the same extra.
"""
from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
VENV_DIR = REPO_ROOT / ".venv"
MIN_PYTHON = (3, 11)


def check_python() -> None:
    """Exit with a clear message when this interpreter is too old to create the venv."""
    if sys.version_info < MIN_PYTHON:
        wanted = ".".join(map(str, MIN_PYTHON))
        sys.exit(f"hypergen_ws needs Python {wanted} or newer; this is {sys.version.split()[0]} ({sys.executable}).")


def venv_python() -> Path:
    """The interpreter of the project's venv."""
    if os.name == "nt":
        return VENV_DIR / "Scripts" / "python.exe"
    return VENV_DIR / "bin" / "python"


def run(command: Sequence[str | os.PathLike[str]], *, env: Mapping[str, str] | None = None) -> int:
    """Run a command from the repository root, echoing it first; returns its exit code."""
    print("$", " ".join(str(part) for part in command), flush=True)
    return subprocess.call([str(part) for part in command], cwd=REPO_ROOT, env=dict(env) if env else None)


def _venv_works() -> bool:
    python = venv_python()
    if not python.exists():
        return False
    probe = subprocess.run([str(python), "-c", "import sys, pip; print(sys.version_info >= (3, 11))"],
                           capture_output=True, text=True)
    return probe.returncode == 0 and probe.stdout.strip() == "True"


def _create_venv() -> None:
    if VENV_DIR.exists():
        print(f"{VENV_DIR} is unusable (no working python with pip): creating it again", flush=True)
        shutil.rmtree(VENV_DIR)
    print(f"creating the virtual environment {VENV_DIR}", flush=True)
    result = subprocess.run([sys.executable, "-m", "venv", str(VENV_DIR)], capture_output=True, text=True)
    if result.returncode != 0:
        hint = ""
        if "ensurepip" in result.stdout + result.stderr:
            version = f"{sys.version_info.major}.{sys.version_info.minor}"
            hint = f"\nOn Debian or Ubuntu install the venv module first: apt-get install python{version}-venv"
        sys.exit(f"could not create {VENV_DIR}:\n{result.stdout}{result.stderr}{hint}")


def _stamp_path(extra: str | None) -> Path:
    return VENV_DIR / f".hypergen_ws-installed-{extra or 'base'}"


def _pyproject_hash() -> str:
    return hashlib.sha256((REPO_ROOT / "pyproject.toml").read_bytes()).hexdigest()


def ensure_venv(extra: str | None = None) -> Path:
    """Create ``.venv`` if needed and ``pip install -e .[extra]`` unless already done for this pyproject.toml.

    Returns the venv's python. Exits the script when an install step fails.
    """
    check_python()
    if not _venv_works():
        _create_venv()
    stamp = _stamp_path(extra)
    digest = _pyproject_hash()
    if stamp.exists() and stamp.read_text().strip() == digest:
        print(f"{VENV_DIR}: up to date (pyproject.toml unchanged), skipping the install", flush=True)
        return venv_python()
    target = f".[{extra}]" if extra else "."
    print(f"installing the project into {VENV_DIR} (pip install -e \"{target}\"; the first time takes a while)",
          flush=True)
    env = dict(os.environ, PIP_DISABLE_PIP_VERSION_CHECK="1")
    env.pop("PIP_USER", None)
    code = run([venv_python(), "-m", "pip", "install", "--quiet", "--editable", target], env=env)
    if code != 0:
        stamp.unlink(missing_ok=True)
        sys.exit(f"pip install -e \"{target}\" failed (exit code {code}); see the output above")
    stamp.write_text(digest + "\n")
    return venv_python()


def venv_env() -> dict[str, str]:
    """The environment for commands that run in the venv: its bin directory first on PATH."""
    env = dict(os.environ)
    env["VIRTUAL_ENV"] = str(VENV_DIR)
    env["PATH"] = os.pathsep.join([str(venv_python().parent), env.get("PATH", "")])
    env.pop("PYTHONHOME", None)
    return env
