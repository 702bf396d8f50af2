"""Offline GPU checks: compile every generated GPU kernel to PTX, assemble it with ``ptxas -v`` and read what a
GPU would reveal without one.

What is checked, per kernel and architecture (``sm_80``, ``sm_90``):

* it compiles (numba.cuda kernels through ``numba.cuda.compile_ptx`` with the toolkit's libNVVM, CUDA C through
  ``nvcc -ptx``) and assembles (``ptxas -v``);
* **fp64 arithmetic** in the PTX: instructions whose type suffix is ``.f64`` among ``add sub mul fma mad div rcp
  sqrt rsqrt neg abs min max ex2 lg2 sin cos setp testp copysign`` (these run on the fp64 pipe, 1/64 rate on most
  cards). Conversions to or from f64 (``cvt`` with an ``.f64`` operand type) are counted apart, as
  ``fp64_cvt``; moves, loads and stores of 64-bit values are not counted;
* **spills**: ``bytes spill stores`` and ``bytes spill loads`` reported by ``ptxas -v`` (local-memory traffic);
* **registers** per thread and stack frame bytes, also from ``ptxas -v``.

The toolkit is found from ``CUDA_HOME``, ``CUDA_PATH``, ``PATH`` and ``/usr/local/cuda``; :func:`toolkit` returns
None (and :func:`missing_reason` says why) where it is absent, so callers can skip.

Example (needs the CUDA toolkit; no GPU):
    >>> from neuro.kernels import gpu_check
    >>> if gpu_check.toolkit() is not None:                       # doctest: +SKIP
    ...     from neuro.models import lif
    ...     [r] = gpu_check.check_numba(*gpu_check.training_kernels([lif.DYNAMICS])[0][1:], arch="sm_80")
    ...     assert r.fp64_arith == 0 and r.spill_stores == 0
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import subprocess
import tempfile
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

ARCHS = ("sm_80", "sm_90")

_FP64_ARITH = {"add", "sub", "mul", "fma", "mad", "div", "rcp", "sqrt", "rsqrt", "neg", "abs", "min", "max",
               "ex2", "lg2", "sin", "cos", "setp", "testp", "copysign"}
_INSTR = re.compile(r"^\s*(?:@!?%\w+\s+)?([a-z][\w.]*)\s", re.M)


@dataclass(frozen=True)
class Toolkit:
    """Paths of the CUDA toolkit programs the checks run."""

    nvcc: str
    ptxas: str
    home: str | None


def _candidates() -> list[Path]:
    out = []
    for var in ("CUDA_HOME", "CUDA_PATH", "NUMBA_CUDA_HOME"):
        if os.environ.get(var):
            out.append(Path(os.environ[var]) / "bin")
    out.append(Path("/usr/local/cuda/bin"))
    return out


def toolkit() -> Toolkit | None:
    """The CUDA toolkit (``nvcc`` and ``ptxas``), or None when either is missing."""
    found = {}
    for prog in ("nvcc", "ptxas"):
        path = next((str(d / prog) for d in _candidates() if (d / prog).is_file()), None) or shutil.which(prog)
        if path is None:
            return None
        found[prog] = path
    home = str(Path(found["nvcc"]).resolve().parent.parent)
    return Toolkit(found["nvcc"], found["ptxas"], home)


def missing_reason() -> str | None:
    """Why the checks cannot run here (None when they can)."""
    if toolkit() is None:
        return "no CUDA toolkit: nvcc/ptxas not found in $CUDA_HOME/bin, $CUDA_PATH/bin, /usr/local/cuda/bin or PATH"
    if os.environ.get("NUMBA_ENABLE_CUDASIM") == "1":
        return "NUMBA_ENABLE_CUDASIM=1: numba.cuda.compile_ptx is not available in the CUDA simulator"
    return None


@dataclass
class Report:
    """What ``ptxas -v`` and the PTX say about one kernel on one architecture."""

    kernel: str
    arch: str
    registers: int
    spill_stores: int
    spill_loads: int
    stack: int
    fp64_arith: int
    fp64_cvt: int
    fp64_ops: dict[str, int] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return self.fp64_arith == 0 and self.spill_stores == 0 and self.spill_loads == 0


def fp64_counts(ptx: str) -> tuple[int, int, Counter]:
    """``(arithmetic, conversions, per-opcode counter)`` of fp64 instructions in ``ptx`` (see module docstring)."""
    ops: Counter = Counter()
    arith = cvt = 0
    for m in _INSTR.finditer(ptx):
        opcode = m.group(1)
        parts = opcode.split(".")
        if "f64" not in parts[1:]:
            continue
        if parts[0] == "cvt":
            cvt += 1
            ops[opcode] += 1
        elif parts[0] in _FP64_ARITH:
            arith += 1
            ops[opcode] += 1
    return arith, cvt, ops


_ENTRY = re.compile(r"Compiling entry function '([^']+)' for '(sm_\d+)'")
_FUNC = re.compile(r"Function properties for (\S+)")
_FRAME = re.compile(r"(\d+) bytes stack frame, (\d+) bytes spill stores, (\d+) bytes spill loads")
_REGS = re.compile(r"Used (\d+) registers")


def ptxas(ptx: str, arch: str, tk: Toolkit | None = None) -> dict[str, dict[str, int]]:
    """Assemble ``ptx`` for ``arch`` with ``ptxas -v``; per entry function: registers, stack, spill stores/loads.

    Raises RuntimeError with ptxas's message when it does not assemble."""
    tk = tk or toolkit()
    if tk is None:
        raise RuntimeError(missing_reason())
    with tempfile.TemporaryDirectory() as d:
        src = Path(d) / "k.ptx"
        src.write_text(ptx)
        proc = subprocess.run([tk.ptxas, "-v", f"-arch={arch}", str(src), "-o", str(Path(d) / "k.cubin")],
                              capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise RuntimeError(f"ptxas -arch={arch} failed:\n{proc.stderr}")
    out: dict[str, dict[str, int]] = {}
    current = None
    for line in proc.stderr.splitlines():
        if m := _ENTRY.search(line):
            current = m.group(1)
            out[current] = {"registers": 0, "stack": 0, "spill_stores": 0, "spill_loads": 0}
        elif m := _FUNC.search(line):
            current = m.group(1) if m.group(1) in out else None
        elif current is not None and (m := _FRAME.search(line)):
            out[current].update(stack=int(m.group(1)), spill_stores=int(m.group(2)), spill_loads=int(m.group(3)))
        elif current is not None and (m := _REGS.search(line)):
            out[current]["registers"] = int(m.group(1))
    return out


def _cc(arch: str) -> tuple[int, int]:
    digits = arch.removeprefix("sm_")
    return int(digits[:-1]), int(digits[-1])


def report_ptx(name: str, ptx: str, arch: str, tk: Toolkit | None = None) -> list[Report]:
    """Assemble ``ptx`` for ``arch`` and report each entry function (fp64 counts are over the whole PTX)."""
    arith, cvt, ops = fp64_counts(ptx)
    res = ptxas(ptx, arch, tk)
    if not res:
        raise RuntimeError(f"{name}: ptxas reported no entry function")
    many = len(res) > 1
    out = []
    for entry, r in res.items():
        label = f"{name}:{entry}" if many else name
        out.append(Report(label, arch, r["registers"], r["spill_stores"], r["spill_loads"], r["stack"], arith, cvt,
                          dict(ops)))
    return out


class _Device:
    def __init__(self, cc):
        self.compute_capability = cc


@contextlib.contextmanager
def _target_device(cc: tuple[int, int]):
    """Device functions numba compiles on the way (``min``/``max`` and other overloads) ask the current device for
    its compute capability; with no GPU, answer with the target's."""
    from numba.cuda import compiler, dispatcher

    saved = dispatcher.get_current_device, compiler.get_current_device
    dispatcher.get_current_device = compiler.get_current_device = lambda: _Device(cc)
    try:
        yield
    finally:
        dispatcher.get_current_device, compiler.get_current_device = saved


def numba_ptx(kernel, signature, arch: str) -> str:
    """PTX of a ``numba.cuda.jit`` kernel (or its Python function) for ``signature`` on ``arch``."""
    from numba import cuda

    from neuro.kernels.cuda import register_numpy_math

    register_numpy_math()
    py = getattr(kernel, "py_func", kernel)
    with _target_device(_cc(arch)):
        ptx, _ = cuda.compile_ptx(py, signature, cc=_cc(arch))
    return ptx


def check_numba(name: str, kernel, signature, arch: str, tk: Toolkit | None = None) -> list[Report]:
    """Compile a numba.cuda kernel to PTX for ``arch``, assemble it and report (see :class:`Report`)."""
    return report_ptx(name, numba_ptx(kernel, signature, arch), arch, tk)


def nvcc_ptx(source: str, arch: str, tk: Toolkit | None = None, options: Sequence[str] = ()) -> str:
    """PTX of CUDA C ``source`` compiled by ``nvcc -ptx`` for ``arch`` (the same front end NVRTC uses)."""
    tk = tk or toolkit()
    if tk is None:
        raise RuntimeError(missing_reason())
    with tempfile.TemporaryDirectory() as d:
        src = Path(d) / "k.cu"
        src.write_text(source)
        out = Path(d) / "k.ptx"
        proc = subprocess.run([tk.nvcc, "-ptx", f"-arch={arch}", "-std=c++17", *options, str(src), "-o", str(out)],
                              capture_output=True, text=True, check=False)
        if proc.returncode != 0:
            raise RuntimeError(f"nvcc -arch={arch} failed:\n{proc.stderr}")
        return out.read_text()


def check_cuda_c(name: str, source: str, arch: str, tk: Toolkit | None = None,
                 options: Sequence[str] = ()) -> list[Report]:
    """Compile CUDA C with nvcc for ``arch``, assemble with ptxas and report, one :class:`Report` per kernel."""
    return report_ptx(name, nvcc_ptx(source, arch, tk, options), arch, tk)


def nvrtc_reason() -> str | None:
    """Why NVRTC (the compiler CuPy's RawModule uses) cannot be called here, or None."""
    try:
        from cupy_backends.cuda.libs import nvrtc

        nvrtc.getVersion()
    except Exception as exc:  # noqa: BLE001 - ImportError, or libnvrtc not found
        return f"NVRTC unavailable ({type(exc).__name__}: {str(exc).splitlines()[0][:120]})"
    return None


def nvrtc_ptx(source: str, arch: str, options: Sequence[str] = ("-std=c++17",)) -> str:
    """PTX of CUDA C ``source`` compiled by NVRTC (through CuPy's bindings, no GPU needed) for ``arch``."""
    from cupy_backends.cuda.libs import nvrtc

    prog = nvrtc.createProgram(source, "kernel.cu", [], [])
    try:
        nvrtc.compileProgram(prog, [*options, f"--gpu-architecture={arch.replace('sm_', 'compute_')}"])
    except Exception as exc:
        raise RuntimeError(f"NVRTC failed for {arch}:\n{nvrtc.getProgramLog(prog)}") from exc
    ptx = nvrtc.getPTX(prog)
    return ptx.decode() if isinstance(ptx, bytes) else ptx


# ---------------------------------------------------------------------------------------------------------------
# the numba.cuda kernels the project generates, with the argument types they are launched with


def _array(ndim: int, dtype=None):
    from numba import types

    return types.Array(dtype or types.float32, ndim, "C")


def training_kernels(dyns: Sequence, surrogates: Sequence[str] = ("atan",)) -> list[tuple[str, Callable, tuple]]:
    """``(name, kernel, signature)`` of the forward (and, for trainable models, backward) CUDA kernel of each
    model, typed as :func:`neuro.kernels.forward_packed` / ``backward_packed`` launch them (float32 C arrays,
    int64 options, float32 ``dt`` and slope, bool flags). Options (reset mode, reset timing) are read at run time,
    so one kernel covers every reset mode."""
    from numba import types

    from neuro import surrogate as sg_mod
    from neuro.kernels import cuda as cuda_k

    f2, f3 = _array(2), _array(3)
    opts = _array(1, types.int64)
    out = []
    for dyn in dyns:
        fwd_sig = (f2, f2, f2, opts, types.float32, f2, f3, types.boolean)
        out.append((f"{dyn.name}.forward", cuda_k.forward_kernel(dyn), fwd_sig))
        if not dyn.trainable:
            continue
        for sg in surrogates:
            bwd_sig = (f2, f2, f3, f2, opts, types.float32, types.float32, f2, f3, f2, f2, f2, types.boolean)
            out.append((f"{dyn.name}.backward[{sg}]", cuda_k.backward_kernel(dyn, sg_mod.get(sg).grad), bwd_sig))
    return out


class _HostArray:
    """Stands in for a device array while the simulator's launches are recorded (no GPU here)."""

    def __init__(self, a):
        import numpy as np

        self.a = np.asarray(a)
        self.shape = self.a.shape

    def copy_to_host(self):
        return self.a.copy()

    def copy_to_device(self, host):
        self.a[...] = host


def sim_kernels(net, steps: int = 1) -> list[tuple[str, Callable, tuple]]:
    """``(name, kernel, signature)`` of every kernel ``net`` (a ``neuro.sim.Network(device="cuda")``) launches,
    recorded by running ``steps`` steps with device copies kept on the host and launches replaced by recorders
    (the types come from the real arguments, as numba types them on a GPU; nothing is computed)."""
    import numba
    from numba import cuda

    from neuro.sim import cuda_engine

    seen: dict[str, tuple[Callable, tuple]] = {}
    real_load, real_to_device = cuda_engine.load, cuda.to_device

    def typeof(a):
        return numba.typeof(a.a if isinstance(a, _HostArray) else a)

    class _Recorder:
        def __init__(self, name, kern):
            self.name, self.kern = name, kern

        def __getitem__(self, grid):
            def launch(*args):
                seen.setdefault(self.name, (self.kern, tuple(typeof(a) for a in args)))
            return launch

    class _Module:
        def __init__(self, module):
            self._module = module

        def __getattr__(self, name):
            value = getattr(self._module, name)
            return _Recorder(name, value) if hasattr(value, "py_func") else value

    cuda_engine.load = lambda *a, **k: _Module(real_load(*a, **k))
    cuda.to_device = _HostArray
    try:
        net.run(steps * net.dt)
    finally:
        cuda_engine.load, cuda.to_device = real_load, real_to_device
    return [(name, kern, sig) for name, (kern, sig) in sorted(seen.items())]


def markdown(reports: Sequence[Report]) -> str:
    """A markdown table: kernel, then per architecture registers / spill bytes / fp64 arithmetic and conversions."""
    archs = sorted({r.arch for r in reports})
    rows: dict[str, dict[str, Report]] = {}
    for r in reports:
        rows.setdefault(r.kernel, {})[r.arch] = r
    head = "| kernel | " + " | ".join(f"{a} regs | {a} spill B | {a} fp64 arith / cvt" for a in archs) + " |"
    sep = "|---" * (1 + 3 * len(archs)) + "|"
    lines = [head, sep]
    for name, by_arch in rows.items():
        cells = []
        for a in archs:
            r = by_arch.get(a)
            cells += ["-"] * 3 if r is None else [str(r.registers), str(r.spill_stores + r.spill_loads),
                                                   f"{r.fp64_arith} / {r.fp64_cvt}"]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(lines)
