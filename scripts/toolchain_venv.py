"""Build (once) and locate the virtual environment of an external chip toolchain.

Some toolchains pin versions that clash with neuro-snn's own (Sinabs 3.1 pins ``nir <= 1.0.4``; neuro-snn
needs nir >= 1.0.8), so each gets its own venv, made from the package registry with pip:

- the requirements are ``scripts/toolchains/<name>.txt``. A line whose comment contains ``no-deps`` is
  installed with ``pip --no-deps`` (for packages whose metadata asks for something that cannot be
  installed, such as Sinabs' ``samna``); their real dependencies are listed as ordinary lines;
- every pip call uses a constraint file pinning ``torch==2.13.0`` (any other torch request pulls a
  multi-GB CUDA build);
- the venv lives in ``$XDG_CACHE_HOME/neuro-snn/venvs/<name>-<hash>`` (``~/.cache`` when XDG_CACHE_HOME is
  unset), ``<hash>`` being a hash of the requirements file, the constraints and the Python version, so a
  changed file gets a new venv;
- a marker file ``.neuro-complete`` is written only after every install step and an import check have
  succeeded; a failed build removes the half-made venv and leaves no marker, and the next call tries again.
  With the marker present the call returns at once (idempotent).

Command line: ``python scripts/toolchain_venv.py sinabs`` prints the venv's python path (exit status 1 and
the reason on stderr when it cannot be built).

Example:
    >>> import importlib.util, pathlib
    >>> spec = importlib.util.spec_from_file_location("tv", pathlib.Path("scripts/toolchain_venv.py"))
    >>> tv = importlib.util.module_from_spec(spec); spec.loader.exec_module(tv)
    >>> tv.venv_dir("sinabs").name.startswith("sinabs-")
    True
"""

from __future__ import annotations

import argparse
import fcntl
import hashlib
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
TOOLCHAINS = HERE / "toolchains"
CONSTRAINTS = "torch==2.13.0\n"
MARKER = ".neuro-complete"


class ToolchainError(RuntimeError):
    """The venv could not be built; the message says which step failed and pip's last lines."""


def requirements_file(name: str) -> Path:
    if not isinstance(name, str) or not name or "/" in name or name.startswith("."):
        raise ValueError(f"toolchain name must be a plain name, got {name!r}")
    path = TOOLCHAINS / f"{name}.txt"
    if not path.is_file():
        known = sorted(p.stem for p in TOOLCHAINS.glob("*.txt"))
        raise ValueError(f"unknown toolchain {name!r}; known: {', '.join(known)}")
    return path


def cache_root() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "neuro-snn" / "venvs"


def venv_dir(name: str) -> Path:
    """Where the venv of toolchain ``name`` lives (whether built or not)."""
    req = requirements_file(name).read_bytes()
    key = hashlib.sha256(req + CONSTRAINTS.encode() + sys.version.encode()).hexdigest()[:12]
    return cache_root() / f"{name}-{key}"


def _python(venv: Path) -> Path:
    return venv / ("Scripts/python.exe" if os.name == "nt" else "bin/python")


def _parse(path: Path) -> tuple[list[str], list[str], list[str]]:
    """(ordinary requirements, no-deps requirements, modules to import as the final check)."""
    normal, nodeps, imports = [], [], []
    for raw in path.read_text().splitlines():
        line, _, comment = raw.partition("#")
        line = line.strip()
        if raw.strip().startswith("# import:"):
            imports += raw.split(":", 1)[1].split()
            continue
        if not line:
            continue
        (nodeps if "no-deps" in comment else normal).append(line)
    return normal, nodeps, imports


def _run(cmd: list[str], what: str, log: Path) -> None:
    with log.open("a") as out:
        out.write(f"$ {' '.join(cmd)}\n")
        out.flush()
        proc = subprocess.run(cmd, stdout=out, stderr=subprocess.STDOUT, env={**os.environ, "PIP_NO_INPUT": "1"})
    if proc.returncode != 0:
        lines = [ln for ln in log.read_text().splitlines() if ln.startswith("ERROR") or "Error" in ln]
        tail = "\n".join((lines or log.read_text().splitlines())[-4:])
        raise ToolchainError(f"{what} failed (exit status {proc.returncode}); full log: {log}\n{tail}")


def ensure(name: str, quiet: bool = True) -> Path:
    """The python executable of toolchain ``name``'s venv, building the venv first if needed.

    Raises :class:`ToolchainError` (with the failing step and pip's output) when the build fails; the
    half-made venv is removed so that no marker claims it complete.
    """
    req = requirements_file(name)
    venv = venv_dir(name)
    py = _python(venv)
    if (venv / MARKER).is_file() and py.exists():
        return py
    venv.parent.mkdir(parents=True, exist_ok=True)
    with open(venv.parent / f"{venv.name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # another process may be building the same venv: wait for it
        if (venv / MARKER).is_file() and py.exists():
            return py
        if venv.exists():  # a build that died without its marker
            shutil.rmtree(venv)
        start = time.perf_counter()
        log = venv.parent / f"{venv.name}.log"
        log.write_text("")
        normal, nodeps, imports = _parse(req)
        try:  # built in place: a venv hard-codes its own path
            _run([sys.executable, "-m", "venv", str(venv)], "creating the venv", log)
            cons = venv / "constraints.txt"
            cons.write_text(CONSTRAINTS)
            pip = [str(py), "-m", "pip", "install", "--disable-pip-version-check", "-c", str(cons)]
            if normal:
                _run(pip + normal, f"pip install {' '.join(normal)}", log)
            if nodeps:
                _run(pip + ["--no-deps"] + nodeps, f"pip install --no-deps {' '.join(nodeps)}", log)
            if imports:
                _run([str(py), "-c", "; ".join(f"import {m}" for m in imports)], f"importing {', '.join(imports)}",
                     log)
            freeze = subprocess.run([str(py), "-m", "pip", "freeze"], capture_output=True, text=True).stdout
            (venv / MARKER).write_text(f"built in {time.perf_counter() - start:.0f} s\n{freeze}")
        except BaseException:
            shutil.rmtree(venv, ignore_errors=True)
            raise
    if not quiet:
        print(f"built {venv} in {time.perf_counter() - start:.0f} s", file=sys.stderr)
    return py


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("name", help="toolchain: a file scripts/toolchains/<name>.txt")
    args = parser.parse_args(argv)
    try:
        print(ensure(args.name, quiet=False))
    except (ToolchainError, ValueError, OSError) as exc:
        print(f"toolchain_venv: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
