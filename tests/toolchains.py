"""Test helper: the python of an external toolchain's venv (built once and cached by
``scripts/toolchain_venv.py``), or ``pytest.skip`` with the reason it cannot be built; and a runner for
small scripts in that venv.

Example (in a test)::

    py = venv_python("sinabs")          # skips the test when the venv cannot be built (e.g. no network)
    out = run_in_venv(py, "import sinabs; print(sinabs.__version__)")
"""

from __future__ import annotations

import functools
import importlib.util
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@functools.cache
def _builder():
    spec = importlib.util.spec_from_file_location("toolchain_venv", ROOT / "scripts" / "toolchain_venv.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


@functools.cache
def _ensure(name: str) -> tuple[str | None, str]:
    tv = _builder()
    try:
        return str(tv.ensure(name)), ""
    except (tv.ToolchainError, OSError) as exc:
        return None, f"the {name} toolchain venv cannot be built ({type(exc).__name__}): {exc}"


def venv_python(name: str) -> str:
    """Path of the venv's python; skips the calling test (with pip's reason) when the venv cannot be made."""
    py, reason = _ensure(name)
    if py is None:
        pytest.skip(reason)
    return py


def run_in_venv(python: str, code: str, *args, timeout: float = 300) -> str:
    """Run ``code`` with the venv's python; its stdout, or an AssertionError with its stderr."""
    proc = subprocess.run([python, "-c", code, *map(str, args)], capture_output=True, text=True, timeout=timeout)
    if proc.returncode != 0:
        raise AssertionError(f"toolchain script failed (exit {proc.returncode}):\n{proc.stderr[-4000:]}")
    return proc.stdout
