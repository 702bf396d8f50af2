"""CUDA C step functions printed from the same code the numba kernels run: no dynamics written twice.

A model's scalar ``step`` and backward step (numba functions: printed by :class:`neuro.models.Equations` from the
parsed equations, or written by hand for the built-in models) are read back as Python syntax trees and printed as
C: every function they call (the equations' ``_rhs``, ``_exprel``, ``_clip``, the shared reset helpers, the
surrogate derivative) becomes a ``__host__ __device__`` function, module constants become ``float`` constants, a
tuple result becomes output pointers. Everything is ``float`` (literals ``1.0f``; ``expf``, ``logf``, ...): no
``double`` appears, and options (reset mode, reset timing) are ``long long`` as in the packed ``opts`` array.

The printed source compiles with ``nvcc``/NVRTC (``__host__ __device__``) and with a host C++ compiler (the
qualifiers vanish), so the same text is checked against the numba CPU kernels on the host
(``tests/test_cuda_c_host.py``) and run on the GPU by :mod:`neuro.kernels.cupy_backend`.

Names: ``step_source(dyn, surrogate)`` defines, in ``namespace <ns>``, ``void step(<state>, x, <params>, <options>,
dt, float* <new state>..., float* spike)`` and, for a trainable model, ``void backward(<state>, x, <params>,
<options>, dt, slope, g_spike, <g_new_state>, float* <g_state>..., float* g_x, float* <g_params>...)``, the same
argument order as the numba functions (see :mod:`neuro.models._base`).

Example:
    >>> from neuro.kernels import cuda_c
    >>> from neuro.models import lif
    >>> src = cuda_c.step_source(lif.DYNAMICS, "atan")
    >>> "NEURO_HD void step(" in src and "double" not in src
    True
"""

from __future__ import annotations

import ast
import hashlib
import inspect
import math
import textwrap
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np

from neuro.models._base import Dynamics

PRELUDE = """#ifdef __CUDACC__
#define NEURO_HD __host__ __device__ __forceinline__
#else
#include <math.h>
#define NEURO_HD static inline
#endif
"""

# NumPy / builtin call -> C float function (or a helper printed in _HELPERS_C)
_CALLS = {
    "exp": "expf", "log": "logf", "sqrt": "sqrtf", "expm1": "expm1f", "log1p": "log1pf", "log10": "log10f",
    "sin": "sinf", "cos": "cosf", "tan": "tanf", "sinh": "sinhf", "cosh": "coshf", "tanh": "tanhf",
    "arcsin": "asinf", "arccos": "acosf", "arctan": "atanf", "floor": "floorf", "ceil": "ceilf", "trunc": "truncf",
    "abs": "fabsf", "fabs": "fabsf", "sign": "neuro_sign", "max": "neuro_max", "min": "neuro_min", "atan": "atanf",
    "asin": "asinf", "acos": "acosf",
}
# Python's max/min (the first argument wins ties and NaN comparisons), as numba computes them
_HELPERS_C = """
NEURO_HD float neuro_max(float a, float b) { return b > a ? b : a; }
NEURO_HD float neuro_min(float a, float b) { return b < a ? b : a; }
NEURO_HD float neuro_sign(float a) { return a > 0.0f ? 1.0f : (a < 0.0f ? -1.0f : a); }
"""
_CMP = {ast.Gt: ">", ast.GtE: ">=", ast.Lt: "<", ast.LtE: "<=", ast.Eq: "==", ast.NotEq: "!="}
_BIN = {ast.Add: "+", ast.Sub: "-", ast.Mult: "*", ast.Div: "/"}


class CPrintError(ValueError):
    """A model function uses Python the C printer does not translate (the message names the construct)."""


def float_literal(value: float) -> str:
    """A float32 C literal (``1.0f``, ``-2.5e-07f``); inf as ``INFINITY``. Refuses values float32 cannot hold."""
    v = float(np.float32(value))
    if math.isinf(v):
        if not math.isinf(float(value)):
            raise CPrintError(f"constant {value!r} overflows float32")
        return "INFINITY" if v > 0 else "(-INFINITY)"
    if math.isnan(v):
        return "NAN"
    text = repr(v)
    if "e" not in text and "." not in text:
        text += ".0"
    return f"{text}f" if v >= 0 else f"({text}f)"


class _Function:
    """One Python function to print: its tree, the namespace its names resolve in, and its C name."""

    def __init__(self, fn: Callable, cname: str):
        py = getattr(fn, "py_func", fn)
        self.py, self.cname = py, cname
        src = textwrap.dedent(inspect.getsource(py))
        tree = ast.parse(src)
        self.node = next(n for n in tree.body if isinstance(n, ast.FunctionDef))
        cv = inspect.getclosurevars(py)
        self.env = {**py.__globals__, **cv.nonlocals}
        self.params = [a.arg for a in self.node.args.args]
        if self.node.args.vararg or self.node.args.kwonlyargs or self.node.args.defaults:
            raise CPrintError(f"{py.__qualname__}: only plain positional arguments can be printed as C")
        rets = [n for n in ast.walk(self.node) if isinstance(n, ast.Return)]
        sizes = {self._size(r.value) for r in rets}
        if len(sizes) != 1:
            raise CPrintError(f"{py.__qualname__}: every return must give the same number of values")
        self.n_out = sizes.pop()  # 0: returns one float

    def _size(self, value) -> int:
        """Number of values a return statement gives (0: one float); a tail call gives what its callee gives."""
        if isinstance(value, ast.Tuple):
            return len(value.elts)
        if isinstance(value, ast.Call) and isinstance(value.func, ast.Name):
            obj = self.env.get(value.func.id)
            if hasattr(obj, "py_func") or inspect.isfunction(obj):
                return _Function(obj, "").n_out
        return 0


class CPrinter:
    """Prints numba scalar functions, and everything they call, as ``__host__ __device__`` C.

    ``printer.function(fn, "step", int_params)`` prints ``fn`` under the C name ``step`` (``int_params``: names of
    its arguments that are integer options); callees are printed once each, before their callers, and module
    constants as ``constexpr float`` (``constexpr long long`` for ints)."""

    def __init__(self):
        self.functions: list[str] = []
        self.constants: dict[str, str] = {}
        self.c_sources: dict[str, None] = {}  # ordered set
        self._printed: dict[int, _Function] = {}
        self._names: set[str] = set()

    # -- public ------------------------------------------------------------------------------------------------
    def function(self, fn: Callable, cname: str, int_params: set[str] | frozenset = frozenset()) -> _Function:
        f = _Function(fn, cname)
        self._emit(f, set(int_params))
        return f

    def source(self) -> str:
        consts = "".join(f"{v}\n" for v in self.constants.values())
        extern = "".join(self.c_sources)  # C definitions of CFunction callees (once each)
        return _HELPERS_C + extern + consts + "\n" + "\n".join(self.functions)

    # -- functions -----------------------------------------------------------------------------------------------
    def _callee(self, fn) -> _Function:
        key = id(getattr(fn, "py_func", fn))
        if key not in self._printed:
            py = getattr(fn, "py_func", fn)
            base = "f_" + "".join(c if c.isalnum() else "_" for c in py.__qualname__.replace(".<locals>.", "_"))
            name, k = base, 1
            while name in self._names:
                name, k = f"{base}_{k}", k + 1
            self._printed[key] = _Function(fn, name)
        return self._printed[key]

    def _emit(self, f: _Function, int_params: set[str]) -> None:
        self._names.add(f.cname)
        self._printed[id(f.py)] = f
        body_printer = _Body(self, f, int_params)
        lines = body_printer.print()
        args = [f"{'long long' if p in int_params else 'float'} {p}" for p in f.params]
        args += [f"float* _out{k}" for k in range(f.n_out)]
        ret = "void" if f.n_out else "float"
        decls = sorted(body_printer.locals - set(f.params))
        head = [f"NEURO_HD {ret} {f.cname}({', '.join(args)}) {{"]
        if decls:
            head.append(f"    float {', '.join(decls)};")
        self.functions.append("\n".join(head + lines + ["}"]) + "\n")

    def ensure(self, callee: _Function, arg_types: list[bool]) -> None:
        """Print ``callee`` (once) with its integer parameters taken from the first call's argument types."""
        if callee.cname in self._names:
            return
        ints = {p for p, is_int in zip(callee.params, arg_types, strict=True) if is_int}
        self._emit(callee, ints)

    def require(self, fn: Callable, int_params: set[str] | frozenset = frozenset()) -> str:
        """Print ``fn`` once (``int_params``: its integer arguments) and return its C name."""
        callee = self._callee(fn)
        if callee.cname not in self._names:
            self._emit(callee, set(int_params))
        return callee.cname

    def constant(self, name: str, value) -> str:
        """The C name of a module constant; the same name in two modules with two values gets two C names."""
        if isinstance(value, bool | np.bool_):
            value = int(value)
        if isinstance(value, int | np.integer):
            text = f"constexpr long long {{}} = {int(value)}LL;"
        else:
            text = f"constexpr float {{}} = {float_literal(value)};"
        base = f"k_{name.lstrip('_')}"
        cname, k = base, 1
        while cname in self.constants and self.constants[cname] != text.format(cname):
            cname, k = f"{base}_{k}", k + 1
        self.constants[cname] = text.format(cname)
        return cname


class _Body:
    """Statements of one function, printed with the locals they assign."""

    def __init__(self, printer: CPrinter, f: _Function, int_params: set[str]):
        self.p, self.f = printer, f
        self.ints = set(int_params)
        self.locals: set[str] = set()
        self._tmp = 0

    def print(self) -> list[str]:
        out: list[str] = []
        for st in self.f.node.body:
            self.stmt(st, out, "    ")
        return out

    def where(self, node) -> str:
        return f"{self.f.py.__qualname__} line {getattr(node, 'lineno', '?')}: {ast.unparse(node)!r}"

    # -- statements ----------------------------------------------------------------------------------------------
    def stmt(self, st, out: list[str], ind: str) -> None:  # noqa: C901 - one case per statement kind
        if isinstance(st, ast.Expr) and isinstance(st.value, ast.Constant) and isinstance(st.value.value, str):
            return  # docstring
        if isinstance(st, ast.Assign):
            if len(st.targets) != 1:
                raise CPrintError(f"chained assignment not supported: {self.where(st)}")
            tgt = st.targets[0]
            if isinstance(tgt, ast.Name):
                self.locals.add(tgt.id)
                out.append(f"{ind}{tgt.id} = {self.expr(st.value)};")
                return
            if isinstance(tgt, ast.Tuple):
                names = [e.id if isinstance(e, ast.Name) else None for e in tgt.elts]
                if None in names:
                    raise CPrintError(f"only names can be unpacked: {self.where(st)}")
                if isinstance(st.value, ast.Call):
                    callee = self.resolve_call(st.value)
                    if callee is not None and callee.n_out == len(names):
                        outs = []
                        for n in names:
                            sink = self.tmp() if n == "_" else n
                            self.locals.add(sink)
                            outs.append(f"&{sink}")
                        args = [self.expr(a) for a in st.value.args]
                        out.append(f"{ind}{callee.cname}({', '.join(args + outs)});")
                        return
                if isinstance(st.value, ast.Tuple) and len(st.value.elts) == len(names):
                    tmps = []
                    for e in st.value.elts:
                        t = self.tmp()
                        self.locals.add(t)
                        out.append(f"{ind}{t} = {self.expr(e)};")
                        tmps.append(t)
                    for n, t in zip(names, tmps, strict=True):
                        if n != "_":
                            self.locals.add(n)
                            out.append(f"{ind}{n} = {t};")
                    return
                raise CPrintError(f"cannot unpack: {self.where(st)}")
            raise CPrintError(f"unsupported assignment target: {self.where(st)}")
        if isinstance(st, ast.AugAssign) and isinstance(st.target, ast.Name):
            op = _BIN.get(type(st.op))
            if op is None:
                raise CPrintError(f"unsupported operator: {self.where(st)}")
            self.locals.add(st.target.id)
            out.append(f"{ind}{st.target.id} {op}= {self.expr(st.value)};")
            return
        if isinstance(st, ast.If):
            out.append(f"{ind}if ({self.expr(st.test)}) {{")
            for s in st.body:
                self.stmt(s, out, ind + "    ")
            if st.orelse:
                out.append(f"{ind}}} else {{")
                for s in st.orelse:
                    self.stmt(s, out, ind + "    ")
            out.append(f"{ind}}}")
            return
        if isinstance(st, ast.Return):
            if self.f.n_out and isinstance(st.value, ast.Call):  # tail call: the callee writes our outputs
                callee = self.resolve_call(st.value)
                args = [self.expr(a) for a in st.value.args] + [f"_out{k}" for k in range(self.f.n_out)]
                out.append(f"{ind}{callee.cname}({', '.join(args)});")
                out.append(f"{ind}return;")
            elif self.f.n_out:
                vals = st.value.elts
                tmps = []
                for v in vals:  # evaluate every value before writing any output (outputs may alias nothing, but
                    t = self.tmp()  # a value may read a variable another output names)
                    self.locals.add(t)
                    out.append(f"{ind}{t} = {self.expr(v)};")
                    tmps.append(t)
                out += [f"{ind}*_out{k} = {t};" for k, t in enumerate(tmps)]
                out.append(f"{ind}return;")
            else:
                out.append(f"{ind}return {self.expr(st.value)};")
            return
        if isinstance(st, ast.Pass):
            return
        raise CPrintError(f"statement not supported in C printing: {self.where(st)}")

    def tmp(self) -> str:
        self._tmp += 1
        return f"_t{self._tmp}"

    # -- names and calls -----------------------------------------------------------------------------------------
    def lookup(self, name: str):
        if name in self.f.env:
            return self.f.env[name]
        import builtins

        return getattr(builtins, name, None)

    def resolve_call(self, call: ast.Call) -> _Function | None:
        """The printed callee of a call to another numba function (None for math functions)."""
        if not isinstance(call.func, ast.Name):
            return None
        obj = self.lookup(call.func.id)
        if obj is None or not (hasattr(obj, "py_func") or inspect.isfunction(obj)) or call.func.id in _CALLS:
            return None
        callee = self.p._callee(obj)
        self.p.ensure(callee, [self.is_int(a) for a in call.args])
        return callee

    def is_int(self, node) -> bool:
        if isinstance(node, ast.Constant):
            return isinstance(node.value, int) and not isinstance(node.value, bool)
        if isinstance(node, ast.Name):
            if node.id in self.ints:
                return True
            if node.id in self.f.params or node.id in self.locals:
                return False
            v = self.lookup(node.id)
            return isinstance(v, int | np.integer) and not isinstance(v, bool)
        return False

    # -- expressions ---------------------------------------------------------------------------------------------
    def expr(self, node) -> str:  # noqa: C901 - one case per node type
        if isinstance(node, ast.Constant):
            if isinstance(node.value, bool):
                return "1" if node.value else "0"
            if isinstance(node.value, int):
                return f"{node.value}"
            if isinstance(node.value, float):
                return float_literal(node.value)
            raise CPrintError(f"constant {node.value!r} in {self.where(node)}")
        if isinstance(node, ast.Name):
            if node.id in self.f.params or node.id in self.locals:
                return node.id
            v = self.lookup(node.id)
            if isinstance(v, float | int | np.floating | np.integer):
                return self.p.constant(node.id, v)
            raise CPrintError(f"unknown name {node.id!r} in {self.where(node)}")
        if isinstance(node, ast.BinOp):
            if isinstance(node.op, ast.Pow):
                return self.power(node)
            op = _BIN.get(type(node.op))
            if op is None:
                raise CPrintError(f"operator not supported: {self.where(node)}")
            return f"({self.expr(node.left)} {op} {self.expr(node.right)})"
        if isinstance(node, ast.UnaryOp):
            if isinstance(node.op, ast.USub):
                return f"(-{self.expr(node.operand)})"
            if isinstance(node.op, ast.UAdd):
                return self.expr(node.operand)
            if isinstance(node.op, ast.Not):
                return f"(!{self.expr(node.operand)})"
        if isinstance(node, ast.Compare):
            parts = []
            left = node.left
            for op, right in zip(node.ops, node.comparators, strict=True):
                parts.append(f"({self.expr(left)} {_CMP[type(op)]} {self.expr(right)})")
                left = right
            return "(" + " && ".join(parts) + ")"
        if isinstance(node, ast.BoolOp):
            op = " && " if isinstance(node.op, ast.And) else " || "
            return "(" + op.join(self.expr(v) for v in node.values) + ")"
        if isinstance(node, ast.IfExp):
            return f"({self.expr(node.test)} ? {self.expr(node.body)} : {self.expr(node.orelse)})"
        if isinstance(node, ast.Call):
            return self.call(node)
        raise CPrintError(f"expression not supported in C printing: {self.where(node)}")

    def power(self, node) -> str:
        base = self.expr(node.left)
        e = node.right
        k = e.value if isinstance(e, ast.Constant) and isinstance(e.value, int) else None
        if isinstance(e, ast.UnaryOp) and isinstance(e.op, ast.USub) and isinstance(e.operand, ast.Constant) \
                and isinstance(e.operand.value, int):
            k = -e.operand.value
        if k is not None and 0 < abs(k) <= 4:  # integer powers as products, as numba computes them
            prod = "(" + " * ".join([base] * abs(k)) + ")"
            return prod if k > 0 else f"(1.0f / {prod})"
        return f"powf({base}, {self.expr(e)})"

    def call(self, node: ast.Call) -> str:
        f = node.func
        if isinstance(f, ast.Attribute) and isinstance(f.value, ast.Name) and f.value.id in ("np", "math", "numpy"):
            name = f.attr
        elif isinstance(f, ast.Name):
            name = f.id
        else:
            raise CPrintError(f"call not supported: {self.where(node)}")
        args = [self.expr(a) for a in node.args]
        if name in ("float32", "float", "float64"):  # np.float32(x): the values are float already
            return f"((float){args[0]})"
        if name in ("int", "int64"):
            return f"((long long){args[0]})"
        callee = self.resolve_call(node) if isinstance(f, ast.Name) else None
        if callee is not None:
            if callee.n_out:
                raise CPrintError(f"a call returning {callee.n_out} values must be unpacked: {self.where(node)}")
            return f"{callee.cname}({', '.join(args)})"
        if name in _CALLS:
            return f"{_CALLS[name]}({', '.join(args)})"
        raise CPrintError(f"function {name!r} has no C form: {self.where(node)}")


def namespace(dyn: Dynamics, surrogate=None) -> str:
    """A C++ namespace name unique to the model (and surrogate)."""
    py = getattr(surrogate, "py_func", surrogate)
    sg = "" if surrogate is None else f"{getattr(py, '__module__', '')}.{getattr(py, '__qualname__', '')}"
    h = hashlib.sha1(f"{dyn.name}/{sg}".encode()).hexdigest()[:8]
    return f"neuro_{''.join(c if c.isalnum() else '_' for c in dyn.name)}_{h}"


def _surrogate_fn(surrogate):
    if surrogate is None or callable(getattr(surrogate, "py_func", None)) or inspect.isfunction(surrogate):
        return surrogate
    from neuro import surrogate as sg_mod

    return sg_mod.get(surrogate).grad


def step_source(dyn: Dynamics, surrogate=None, ns: str | None = None) -> str:
    """C source (prelude included) of ``dyn``'s step, and of its backward step with ``surrogate`` (a name such as
    ``"atan"``, a :class:`neuro.surrogate.Surrogate` or its numba ``grad``) when given, inside namespace ``ns``."""
    if not isinstance(dyn, Dynamics):
        raise TypeError(f"dyn must be a neuron model's Dynamics, got {dyn!r}")
    sg = _surrogate_fn(surrogate)
    ns = ns or namespace(dyn, sg)
    pr = CPrinter()
    ints = set(dyn.options)
    pr.function(dyn.step, "step", ints)
    if sg is not None:
        if not dyn.trainable:
            raise ValueError(f"model {dyn.name!r} has no backward step (it is not trainable)")
        pr.function(dyn.make_backward(sg), "backward", ints)
    return f"{PRELUDE}\nnamespace {ns} {{\n{pr.source()}}}  // namespace {ns}\n"


# ---------------------------------------------------------------------------------------------------------------
# multi-step kernels: one thread (or one host loop iteration) per neuron, the time loop inside, as kernels/cuda.py

# half and bfloat16 inputs as 16-bit storage structs with PTX conversions: no cuda_fp16.h / cuda_bf16.h, which
# NVRTC does not find without the toolkit's include directory
_IO = """
struct neuro_half { unsigned short bits; };
struct neuro_bf16 { unsigned short bits; };
NEURO_HD float neuro_load(float v) { return v; }
NEURO_HD void neuro_store(float* p, float v) { *p = v; }
#ifdef __CUDACC__
__device__ __forceinline__ float neuro_load(neuro_half v) {
    float f;
    asm("cvt.f32.f16 %0, %1;" : "=f"(f) : "h"(v.bits));
    return f;
}
__device__ __forceinline__ void neuro_store(neuro_half* p, float v) {
    unsigned short h;
    asm("cvt.rn.f16.f32 %0, %1;" : "=h"(h) : "f"(v));
    p->bits = h;
}
__device__ __forceinline__ float neuro_load(neuro_bf16 v) { return __int_as_float(((int)v.bits) << 16); }
__device__ __forceinline__ void neuro_store(neuro_bf16* p, float v) {  // round to nearest even (NaN kept quiet)
    unsigned int u = __float_as_uint(v);
    p->bits = (v != v) ? (unsigned short)((u >> 16) | 0x40u)
                       : (unsigned short)((u + 0x7fffu + ((u >> 16) & 1u)) >> 16);
}
#endif
"""

INPUT_TYPES = {"float32": "float", "float16": "neuro_half", "bfloat16": "neuro_bf16"}
"""Input dtypes of the CUDA kernels and their C types (state and parameters are always float32)."""


def _neuron_loops(dyn: Dynamics, trainable: bool) -> str:
    """The per-neuron forward (and backward) time loops, the same as the numba.cuda kernels in kernels/cuda.py."""
    S, P, n_opt = len(dyn.state), len(dyn.params), len(dyn.options)
    s, p, o = [f"s{k}" for k in range(S)], [f"p{k}" for k in range(P)], [f"o{k}" for k in range(n_opt)]
    new, gs, prev = ([f"{pre}{k}" for k in range(S)] for pre in ("n", "gs", "prev"))
    gp = [f"gp{k}" for k in range(P)]
    load = [f"    const float p{k} = params[{k} * N + i];" for k in range(P)]
    load += [f"    const long long o{k} = opts[{k}];" for k in range(n_opt)]
    step_call = ", ".join(s + ["neuro_load(x[t * N + i])"] + p + o + ["dt"] + [f"&{v}" for v in new] + ["&spk"])
    fwd = ["template <typename X>",
           "NEURO_HD void forward_neuron(long long i, long long T, long long N, const X* x, float* state, "
           "const float* params, const long long* opts, float dt, X* spikes, float* rec, int record) {",
           *[f"    float s{k} = state[{k} * N + i];" for k in range(S)], *load,
           "    for (long long t = 0; t < T; ++t) {",
           f"        float {', '.join(new + ['spk'])};",
           f"        step({step_call});",
           *[f"        s{k} = n{k};" for k in range(S)],
           "        neuro_store(&spikes[t * N + i], spk);",
           "        if (record) {",
           *[f"            rec[(t * {S} + {k}) * N + i] = s{k};" for k in range(S)],
           "        }", "    }",
           *[f"    state[{k} * N + i] = s{k};" for k in range(S)], "}", ""]
    if not trainable:
        return "\n".join(fwd)
    bwd_call = ", ".join(prev + ["neuro_load(x[t * N + i])"] + p + o + ["dt", "slope"]
                         + ["neuro_load(g_spikes[t * N + i])"] + gs + [f"&{v}" for v in gs] + ["&gx"]
                         + [f"&{v}" for v in gp])
    bwd = ["template <typename X>",
           "NEURO_HD void backward_neuron(long long i, long long T, long long N, const X* x, const float* init, "
           "const float* rec, const float* params, const long long* opts, float dt, float slope, const X* g_spikes, "
           "const float* g_rec, X* g_x, float* g_params, float* g_state, int has_grec) {",
           *load,
           *[f"    float gs{k} = g_state[{k} * N + i];" for k in range(S)],
           *[f"    float acc{k} = g_params[{k} * N + i];" for k in range(P)],
           "    for (long long t = T - 1; t >= 0; --t) {",
           f"        float {', '.join(prev + gp + ['gx'])};",
           "        if (t > 0) {",
           *[f"            prev{k} = rec[((t - 1) * {S} + {k}) * N + i];" for k in range(S)],
           "        } else {",
           *[f"            prev{k} = init[{k} * N + i];" for k in range(S)],
           "        }",
           "        if (has_grec) {",
           *[f"            gs{k} += g_rec[(t * {S} + {k}) * N + i];" for k in range(S)],
           "        }",
           f"        backward({bwd_call});",
           "        neuro_store(&g_x[t * N + i], gx);",
           *[f"        acc{k} += gp{k};" for k in range(P)],
           "    }",
           *[f"    g_state[{k} * N + i] = gs{k};" for k in range(S)],
           *[f"    g_params[{k} * N + i] = acc{k};" for k in range(P)], "}", ""]
    return "\n".join(fwd + bwd)


_FWD_ARGS = ("long long T, long long N, const {X}* x, float* state, const float* params, const long long* opts, "
             "float dt, {X}* spikes, float* rec, int record")
_FWD_CALL = "T, N, x, state, params, opts, dt, spikes, rec, record"
_BWD_ARGS = ("long long T, long long N, const {X}* x, const float* init, const float* rec, const float* params, "
             "const long long* opts, float dt, float slope, const {X}* g_spikes, const float* g_rec, {X}* g_x, "
             "float* g_params, float* g_state, int has_grec")
_BWD_CALL = "T, N, x, init, rec, params, opts, dt, slope, g_spikes, g_rec, g_x, g_params, g_state, has_grec"


def kernel_source(dyn: Dynamics, surrogate=None) -> str:
    """The full CUDA C translation unit of ``dyn``: step functions (:func:`step_source`), the per-neuron multi-step
    loops, ``extern "C"`` CUDA kernels ``forward_<dtype>`` / ``backward_<dtype>`` for each of :data:`INPUT_TYPES`
    (one thread per neuron, launched on ``ceil(N / 128)`` blocks) and, for a host compiler, ``host_forward`` /
    ``host_backward`` (float32 input) running the same loops over every neuron.

    Packed layout as :mod:`neuro.kernels`: ``x[T, N]``, ``state[S, N]``, ``params[P, N]``, ``opts[O]`` int64,
    ``rec[T, S, N]``; arrays C-contiguous."""
    sg = _surrogate_fn(surrogate)
    ns = namespace(dyn, sg)
    steps = step_source(dyn, sg, ns)
    body = steps.replace(f"}}  // namespace {ns}\n", "")
    trainable = sg is not None
    out = [body, _IO, _neuron_loops(dyn, trainable), f"}}  // namespace {ns}\n", "#ifdef __CUDACC__"]
    for dname, ctype in INPUT_TYPES.items():
        ctype = ctype if ctype == "float" else f"{ns}::{ctype}"
        out.append(f'extern "C" __global__ void forward_{dname}({_FWD_ARGS.format(X=ctype)}) {{\n'
                   "    const long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x;\n"
                   f"    if (i < N) {ns}::forward_neuron<{ctype}>(i, {_FWD_CALL});\n}}")
        if trainable:
            out.append(f'extern "C" __global__ void backward_{dname}({_BWD_ARGS.format(X=ctype)}) {{\n'
                       "    const long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x;\n"
                       f"    if (i < N) {ns}::backward_neuron<{ctype}>(i, {_BWD_CALL});\n}}")
    out.append("#else")
    out.append(f'extern "C" void host_forward({_FWD_ARGS.format(X="float")}) {{\n'
               f"    for (long long i = 0; i < N; ++i) {ns}::forward_neuron<float>(i, {_FWD_CALL});\n}}")
    if trainable:
        out.append(f'extern "C" void host_backward({_BWD_ARGS.format(X="float")}) {{\n'
                   f"    for (long long i = 0; i < N; ++i) {ns}::backward_neuron<float>(i, {_BWD_CALL});\n}}")
    out.append("#endif\n")
    return "\n".join(out)


# ---------------------------------------------------------------------------------------------------------------
# element-wise fragments: Python statements for element ``i`` (the simulator's population update), printed as a
# ``__host__ __device__`` function, a one-thread-per-element CUDA kernel and a host loop over the elements


class CFunction(NamedTuple):
    """A function the printed fragment calls by its C ``name``, with its C definition ``source`` (for code that is
    not printed from Python, such as the simulator's random generator, :data:`neuro.sim.random.C_SOURCE`)."""

    name: str
    source: str


_ARRAY_TYPES = {np.dtype(np.float32): "float", np.dtype(np.uint8): "unsigned char", np.dtype(np.int64): "long long",
                np.dtype(np.int32): "int"}
_INT_TYPES = ("unsigned char", "long long", "int")


def _kind(name: str, value) -> tuple[str, int]:
    """(C element type, ndim) of an argument: ndim 0 for scalars. float64 values are refused: the numba code would
    compute with them in double, the C in float."""
    dtype = getattr(value, "dtype", None)
    ndim = len(getattr(value, "shape", ()))
    if ndim:
        ctype = _ARRAY_TYPES.get(np.dtype(dtype))
        if ctype is None:
            raise CPrintError(f"argument {name!r}: arrays of {dtype} have no C form here (float32, uint8, int32, "
                              "int64)")
        return ctype, ndim
    if isinstance(value, bool | np.bool_ | int | np.integer):
        return "long long", 0
    if isinstance(value, np.float32) or type(value) is float:  # a Python float (dt) is cast before use
        return "float", 0
    raise CPrintError(f"argument {name!r}: scalar {value!r} ({type(value).__name__}) has no C form here")


@dataclass
class Fragment:
    """Python ``lines`` computing element ``i`` of a kernel ``name`` over ``args[count]`` elements.

    ``args`` maps every name the lines read to an example value fixing its C type (a float32 / uint8 / int32 /
    int64 array: a C-contiguous pointer, followed by the dimensions ``a.shape[k]`` and ``a[r, c]`` need; an integer
    scalar: ``long long``; a float32 scalar or Python float: ``float``); ``env`` maps the names the lines call
    (numba functions, printed as C; :class:`CFunction` objects; ``np``).

    Example (``y[i] = a * x[i] + y[i]``, every element in one thread):
        >>> import numpy as np
        >>> from neuro.kernels.cuda_c import Fragment, fragment_source
        >>> frag = Fragment("axpy", {"n": 3, "a": np.float32(2), "x": np.zeros(3, np.float32),
        ...                          "y": np.zeros(3, np.float32)}, ["y[i] = a * x[i] + y[i]"], {}, "n")
        >>> src = fragment_source([frag])
        >>> "y[i] = ((a * x[i]) + y[i]);" in src and "__global__ void axpy(long long n, float a, float* x" in src
        True
    """

    name: str
    args: dict
    lines: list[str]
    env: dict
    count: str

    def shapes(self) -> dict[str, list[int]]:
        """The dimensions of each array the lines need: ``a.shape[k]`` reads, and the row lengths of ``a[r, c]``."""
        tree = ast.parse("\n".join(self.lines))
        used: dict[str, set[int]] = {}
        for node in ast.walk(tree):
            if not isinstance(node, ast.Subscript):
                continue
            v = node.value
            if isinstance(v, ast.Attribute) and v.attr == "shape" and isinstance(v.value, ast.Name) \
                    and isinstance(node.slice, ast.Constant):
                used.setdefault(v.value.id, set()).add(int(node.slice.value))
            elif isinstance(v, ast.Name) and v.id in self.args:
                used.setdefault(v.id, set()).update(range(1, _kind(v.id, self.args[v.id])[1]))
        return {name: sorted(ks) for name, ks in used.items() if ks}

    def c_params(self) -> list[tuple[str, str]]:
        """``(C type, name)`` of the kernel's arguments, in order: each array is followed by the dimensions the
        lines need (:meth:`shapes`), as ``long long <name>_shape<k>``."""
        out = []
        shapes = self.shapes()
        for name, value in self.args.items():
            ctype, ndim = _kind(name, value)
            if ndim:
                out.append((f"{ctype}*", name))
                out += [("long long", f"{name}_shape{k}") for k in shapes.get(name, ())]
            else:
                out.append((ctype, name))
        return out

    def arguments(self, values: dict) -> list:
        """The kernel's arguments from ``values`` (arrays of any framework with a ``shape``, passed as they are;
        scalars as ``np.float32`` / ``np.int64``), in :meth:`c_params` order."""
        out = []
        shapes = self.shapes()
        for name, example in self.args.items():
            ctype, ndim = _kind(name, example)
            v = values[name]
            if ndim:
                if len(v.shape) != ndim:
                    raise ValueError(f"{self.name}: {name} must have {ndim} dimensions, got shape {tuple(v.shape)}")
                out.append(v)
                out += [np.int64(v.shape[k]) for k in shapes.get(name, ())]
            else:
                out.append(np.float32(v) if ctype == "float" else np.int64(v))
        return out


class _FragmentBody(_Body):
    """A fragment's statements: array element reads and writes, ``a.shape[k]``, integer locals and ``%``."""

    def __init__(self, printer: CPrinter, f: _Function, arrays: dict[str, tuple[str, int]], ints: set[str]):
        super().__init__(printer, f, ints)
        self.arrays = arrays
        self.int_locals: set[str] = set()

    def stmt(self, st, out: list[str], ind: str) -> None:
        if isinstance(st, ast.Assign | ast.AugAssign):
            if isinstance(st, ast.Assign) and len(st.targets) != 1:
                raise CPrintError(f"chained assignment not supported: {self.where(st)}")
            tgt = st.targets[0] if isinstance(st, ast.Assign) else st.target
            if isinstance(tgt, ast.Subscript):
                op = "=" if isinstance(st, ast.Assign) else _BIN[type(st.op)] + "="
                out.append(f"{ind}{self.subscript(tgt)} {op} {self.expr(st.value)};")
                return
            if (isinstance(st, ast.Assign) and isinstance(tgt, ast.Name) and tgt.id not in self.locals
                    and self.is_int(st.value)):
                self.int_locals.add(tgt.id)  # a row index, a flag: long long, not float
                self.ints.add(tgt.id)
        super().stmt(st, out, ind)

    def _shape(self, node) -> str | None:
        """``a.shape[k]`` as its argument name ``a_shape<k>`` (None for anything else)."""
        v = node.value
        if (isinstance(v, ast.Attribute) and v.attr == "shape" and isinstance(v.value, ast.Name)
                and v.value.id in self.arrays and isinstance(node.slice, ast.Constant)):
            return f"{v.value.id}_shape{node.slice.value}"
        return None

    def subscript(self, node: ast.Subscript) -> str:
        shape = self._shape(node)
        if shape is not None:
            return shape
        if not (isinstance(node.value, ast.Name) and node.value.id in self.arrays):
            raise CPrintError(f"only argument arrays can be indexed: {self.where(node)}")
        name = node.value.id
        idx = node.slice.elts if isinstance(node.slice, ast.Tuple) else [node.slice]
        if len(idx) != self.arrays[name][1]:
            raise CPrintError(f"{name} has {self.arrays[name][1]} dimensions, indexed with {len(idx)}: "
                              f"{self.where(node)}")
        flat = self.expr(idx[0])
        for k, e in enumerate(idx[1:], start=1):  # C order
            flat = f"({flat}) * {name}_shape{k} + {self.expr(e)}"
        return f"{name}[{flat}]"

    def is_int(self, node) -> bool:
        if isinstance(node, ast.Subscript):
            return self._shape(node) is not None or (
                isinstance(node.value, ast.Name) and self.arrays.get(node.value.id, ("float",))[0] in _INT_TYPES)
        if isinstance(node, ast.Compare | ast.BoolOp):
            return True
        if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add | ast.Sub | ast.Mult | ast.Mod):
            return self.is_int(node.left) and self.is_int(node.right)
        if isinstance(node, ast.IfExp):
            return self.is_int(node.body) and self.is_int(node.orelse)
        return super().is_int(node)

    def expr(self, node) -> str:
        if isinstance(node, ast.Subscript):
            return self.subscript(node)
        if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Mod):
            if not (self.is_int(node.left) and self.is_int(node.right)):
                raise CPrintError(f"% of floats is not printed: {self.where(node)}")
            # C's % is Python's for the non-negative operands fragments use (a step modulo a ring depth)
            return f"({self.expr(node.left)} % {self.expr(node.right)})"
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name):
            target = self.lookup(node.func.id)
            if isinstance(target, CFunction):
                self.p.c_sources.setdefault(target.source, None)
                return f"{target.name}({', '.join(self.expr(a) for a in node.args)})"
        return super().expr(node)


def _fragment_function(pr: CPrinter, frag: Fragment) -> str:
    """The ``__host__ __device__`` function ``<name>_element(i, <args>)`` of one fragment."""
    params = frag.c_params()
    src = f"def {frag.name}_element(i, {', '.join(frag.args)}):\n" + "".join(f"    {x}\n" for x in frag.lines)
    f = _Function.__new__(_Function)  # a function printed from generated text, not from a module
    f.py = type("_Generated", (), {"__qualname__": frag.name})
    f.cname, f.node, f.env, f.n_out = f"{frag.name}_element", ast.parse(src).body[0], dict(frag.env), 0
    f.params = ["i", *frag.args]
    arrays = {n: _kind(n, v) for n, v in frag.args.items() if _kind(n, v)[1]}
    ints = {"i"} | {n for n, v in frag.args.items() if _kind(n, v) == ("long long", 0)}
    body = _FragmentBody(pr, f, arrays, ints)
    lines = body.print()
    decls = []
    if body.int_locals:
        decls.append(f"    long long {', '.join(sorted(body.int_locals))};")
    floats = sorted(body.locals - body.int_locals - set(f.params))
    if floats:
        decls.append(f"    float {', '.join(floats)};")
    head = f"NEURO_HD void {f.cname}(long long i, {', '.join(f'{t} {n}' for t, n in params)}) {{"
    return "\n".join([head, *decls, *lines, "}"]) + "\n"


def fragment_source(fragments: Sequence[Fragment], functions: Sequence[tuple[Callable, Collection[str]]] = (),
                    ns: str = "neuro_fragments") -> str:
    """The CUDA C translation unit of ``fragments``: each one's element function, an ``extern "C" __global__``
    kernel ``<name>`` (one thread per element, any grid covering ``count``) and, for a host compiler, ``extern "C"
    host_<name>`` looping over the elements. ``functions``: ``(numba function, integer argument names)`` printed
    first (a model's ``step`` with its options as integers, as :func:`step_source` prints it)."""
    pr = CPrinter()
    for fn, ints in functions:
        pr.require(fn, frozenset(ints))
    elements = [_fragment_function(pr, frag) for frag in fragments]
    out = [PRELUDE, f"namespace {ns} {{", pr.source(), *elements, f"}}  // namespace {ns}", "#ifdef __CUDACC__"]
    for frag in fragments:
        params = ", ".join(f"{t} {n}" for t, n in frag.c_params())
        names = ", ".join(n for _, n in frag.c_params())
        out.append(f'extern "C" __global__ void {frag.name}({params}) {{\n'
                   "    const long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x;\n"
                   f"    if (i < {frag.count}) {ns}::{frag.name}_element(i, {names});\n}}")
    out.append("#else")
    for frag in fragments:
        params = ", ".join(f"{t} {n}" for t, n in frag.c_params())
        names = ", ".join(n for _, n in frag.c_params())
        out.append(f'extern "C" void host_{frag.name}({params}) {{\n'
                   f"    for (long long i = 0; i < {frag.count}; ++i) {ns}::{frag.name}_element(i, {names});\n}}")
    out.append("#endif\n")
    return "\n".join(out)
