"""Turn a model's scalar functions into a module of kernels, written to a file so numba can cache it.

Kernels are generated as Python source (one variable per state, parameter and option, so the step
function is called with scalars that LLVM keeps in registers) and imported from
``$NEURO_KERNEL_CACHE`` (default ``~/.cache/neuro-snn/kernels``). The file name carries a hash of the
generated source and of every file the kernels depend on, so editing a model gives a new file and
numba's ``cache=True`` never serves a stale kernel. Functions that cannot be imported by name
(a surrogate defined in a notebook) are injected instead, and those kernels are compiled uncached.
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
import sys
import threading
from collections.abc import Callable
from pathlib import Path
from types import ModuleType

import numba

_LOCK = threading.RLock()  # re-entrant: loading a kernel may load the model module it imports
_LOADED: dict[str, ModuleType] = {}


def cache_dir() -> Path:
    root = os.environ.get("NEURO_KERNEL_CACHE") or os.path.join(os.path.expanduser("~"), ".cache",
                                                                 "neuro-snn", "kernels")
    path = Path(root)
    path.mkdir(parents=True, exist_ok=True)
    return path


def _dependency_digest() -> str:
    """Hash of the library sources kernels are built from (models, surrogates, kernels, simulator helpers)."""
    h = hashlib.sha1(numba.__version__.encode())
    import neuro

    files = sorted(Path(__file__).resolve().parent.glob("*.py"))

    neuro_dir = Path(neuro.__file__).resolve().parent
    files += sorted((neuro_dir / "models").glob("*.py")) + [neuro_dir / "surrogate.py"]
    # numba functions that generated simulator loops import and compile into themselves: numba's cache
    # checks only the generated file, so a change in them must change every generated module's key
    files += [neuro_dir / "sim" / "random.py", neuro_dir / "sim" / "engine_util.py"]
    for f in files:
        h.update(f.read_bytes())
    return h.hexdigest()[:12]


_DIGEST: str | None = None


def importable_name(fn: Callable) -> tuple[str, str] | None:
    """(module, attribute) under which ``fn`` can be imported again, or None."""
    py = getattr(fn, "py_func", fn)
    mod, qual = getattr(py, "__module__", None), getattr(py, "__qualname__", "")
    if not mod or mod == "__main__" or "<" in qual or "." in qual:
        return None
    module = sys.modules.get(mod)
    if module is None or getattr(module, qual, None) is not fn:
        return None
    return mod, qual


def load(tag: str, source: str, inject: dict | None = None) -> ModuleType:
    """Load generated ``source``: from a cached file when it needs no injected objects, else by exec."""
    global _DIGEST
    if _DIGEST is None:
        _DIGEST = _dependency_digest()
    key = hashlib.sha1((source + _DIGEST).encode()).hexdigest()[:16]
    name = f"neuro_kernel_{tag}_{key}"
    with _LOCK:
        if inject is None and name in _LOADED:
            return _LOADED[name]
        if inject:
            module = ModuleType(name)
            module.__dict__.update(inject)
            exec(compile(source.replace("cache=True", "cache=False"), f"<{name}>", "exec"), module.__dict__)
            return module
        path = cache_dir() / f"{name}.py"
        if not path.exists():
            tmp = path.with_suffix(f".{os.getpid()}.tmp")
            tmp.write_text(source)
            os.replace(tmp, path)
        spec = importlib.util.spec_from_file_location(name, path)
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
        _LOADED[name] = module
        return module


def names(prefix: str, n: int) -> list[str]:
    return [f"{prefix}{k}" for k in range(n)]
