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


def venv_python(venv_dir: Path = VENV_DIR) -> Path:
    """The interpreter of a venv (the project's ``.venv`` by default)."""
    if os.name == "nt":
        return venv_dir / "Scripts" / "python.exe"
    return venv_dir / "bin" / "python"


def run(command: Sequence[str | os.PathLike[str]], *, env: Mapping[str, str] | None = None) -> int:
    """Run a command from the repository root, echoing it first; returns its exit code."""
    print("$", " ".join(str(part) for part in command), flush=True)
    return subprocess.call([str(part) for part in command], cwd=REPO_ROOT, env=dict(env) if env else None)


def _venv_works(venv_dir: Path) -> bool:
    python = venv_python(venv_dir)
    if not python.exists():
        return False
    probe = subprocess.run([str(python), "-c", "import sys, pip; print(sys.version_info >= (3, 11))"],
                           capture_output=True, text=True)
    return probe.returncode == 0 and probe.stdout.strip() == "True"


def _create_venv(venv_dir: Path, base: str) -> None:
    if venv_dir.exists():
        print(f"{venv_dir} is unusable (no working python with pip): creating it again", flush=True)
        shutil.rmtree(venv_dir)
    print(f"creating the virtual environment {venv_dir} with {base}", flush=True)
    result = subprocess.run([base, "-m", "venv", str(venv_dir)], capture_output=True, text=True)
    if result.returncode != 0:
        hint = ""
        if "ensurepip" in result.stdout + result.stderr:
            version = f"{sys.version_info.major}.{sys.version_info.minor}"
            hint = f"\nOn Debian or Ubuntu install the venv module first: apt-get install python{version}-venv"
        sys.exit(f"could not create {venv_dir}:\n{result.stdout}{result.stderr}{hint}")


def _stamp_path(venv_dir: Path, extra: str | None) -> Path:
    return venv_dir / f".hypergen_ws-installed-{extra or 'base'}"


def _digest(packages: Sequence[str]) -> str:
    """What an install depends on: pyproject.toml and the packages asked for besides it."""
    text = (REPO_ROOT / "pyproject.toml").read_bytes() + "\n".join(packages).encode()
    return hashlib.sha256(text).hexdigest()


def ensure_venv(extra: str | None = None, *, venv_dir: Path = VENV_DIR, base: str | None = None,
                packages: Sequence[str] = ()) -> Path:
    """Create a venv if needed and ``pip install -e .[extra] *packages`` unless already done for this
    pyproject.toml and these packages (``.venv`` with this interpreter by default; ``base`` is another one).

    Returns the venv's python. Exits the script when an install step fails.
    """
    check_python()
    if not _venv_works(venv_dir):
        _create_venv(venv_dir, base or sys.executable)
    stamp = _stamp_path(venv_dir, extra)
    digest = _digest(packages)
    if stamp.exists() and stamp.read_text().strip() == digest:
        print(f"{venv_dir}: up to date (pyproject.toml unchanged), skipping the install", flush=True)
        return venv_python(venv_dir)
    target = f".[{extra}]" if extra else "."
    print(f"installing the project into {venv_dir} (pip install -e \"{target}\" {' '.join(packages)}; the first "
          "time takes a while)", flush=True)
    env = dict(os.environ, PIP_DISABLE_PIP_VERSION_CHECK="1")
    env.pop("PIP_USER", None)
    code = run([venv_python(venv_dir), "-m", "pip", "install", "--quiet", "--editable", target, *packages], env=env)
    if code != 0:
        stamp.unlink(missing_ok=True)
        sys.exit(f"pip install -e \"{target}\" failed (exit code {code}); see the output above")
    stamp.write_text(digest + "\n")
    return venv_python(venv_dir)


def venv_env(venv_dir: Path = VENV_DIR) -> dict[str, str]:
    """The environment for commands that run in a venv: its bin directory first on PATH."""
    env = dict(os.environ)
    env["VIRTUAL_ENV"] = str(venv_dir)
    env["PATH"] = os.pathsep.join([str(venv_python(venv_dir).parent), env.get("PATH", "")])
    env.pop("PYTHONHOME", None)
    return env
