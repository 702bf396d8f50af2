"""Neuron models written as equations, in Brian2's syntax, turned into every kernel.

A model is a block of equations, a threshold condition, reset statements and a refractory period::

    eqs = Equations('''
        dv/dt = (v_rest - v + R*I) / tau_m : volt (unless refractory)
        dw/dt = (a*(v - v_rest) - w) / tau_w : amp
        ''', threshold="v > v_th", reset="v = v_reset; w += b", refractory=2.0, method="euler",
        tau_m=20.0, R=100.0, v_rest=-65.0, v_th=-50.0, v_reset=-65.0, a=0.0, b=0.01, tau_w=100.0)

Syntax (as Brian2's):

- ``dx/dt = expr : unit (flags)`` declares a state variable; ``name = expr : unit`` a subexpression;
  ``name : unit`` a parameter (optional: every free name that is not a state, subexpression, unit or
  function is a parameter). An expression may continue over several lines; ``#`` starts a comment.
- Unit names inside expressions (``mV``, ``ms``, ``nA``, ``pF``, ``nS``, ``uS``, ``Mohm``, ``volt``, ``amp``,
  ``second``, ``Hz``, ``metre``, with the SI prefixes f p n u m c k M G, and ``cm2``-style powers) are replaced
  by their factor in the project's units (ms, mV, nA, nF, uS, MOhm), so ``(0.04/ms/mV)*v**2`` means what it
  means in Brian2. Unit annotations after ``:`` are accepted and not checked.
- Functions: ``exp log log10 sqrt exprel expm1 log1p abs sign clip sin cos tan sinh cosh tanh arcsin arccos
  arctan floor ceil int``. ``not_refractory`` (1 or 0) may be used in expressions.
- ``(unless refractory)`` freezes that variable while the neuron is refractory (Brian2 multiplies its
  right-hand side by ``not_refractory``); the threshold is only tested when not refractory.

Per step (Brian2's schedule): refractoriness is decided from the state at the start of the step, the state
is integrated over ``dt`` with the input held constant, the threshold is tested on the new state, and the
reset statements run in order on the neurons that spiked. ``refractory`` is a time in ms (Brian2 timing:
after a spike at step n the frozen updates are n+1 .. n+round(refractory/dt)-1; ``refractory_timing="nest"``
freezes round(refractory/dt) updates, as NEST and the built-in models do) or a condition such as
``"v > -20*mV"`` (refractory whenever it holds at the start of a step).

Discrete time: ``x <- expr : unit`` lines are updates instead of differential equations (all of a model's state
lines are one kind or the other; ``method`` is then ``"discrete"``). Every update reads the state the step
starts from and is printed exactly as written, so ``v <- beta*v + I`` computes what snnTorch's ``Leaky`` computes,
bit for bit in float32. ``(unless refractory)`` keeps the variable unchanged while refractory.

Resets, beyond Brian2 (for the built-in models and snnTorch):

- ``reset`` may be a dict of named resets, ``{"subtract": "v -= v_th", "to_value": "v = v_reset", "none": ""}``
  (names of :data:`neuro.models._base.RESET_MODES`); ``reset_mode`` picks one. With ``options=("reset_mode",)``
  the step takes the kernel option ``reset_mode`` and chooses at run time.
- ``reset_delay=True`` resets at the next step from the previous step's spike (snnTorch): the threshold condition
  is tested on the state the last step ended in; assignments (``v = v_reset``) set the state this step starts
  from, increments (``v -= v_th``, ``w += b``) are added after the update, as the input is, and no gradient flows
  through that earlier spike. ``options=("reset_delay",)`` makes the timing a run-time kernel option.
- ``refractory_clamp="v = v_reset"``: assignments holding variables while refractory (NEST's and the built-ins'
  clamp, which also holds under ``v -= v_th``), applied after the update in place of it.
- ``old(x)``, in the threshold and the reset statements, reads state ``x`` as the step started (the value the update
  read; with the input going into ``x``, after its jump), where ``x`` is the value after the update (and after the
  reset statements before it). ALIF tests the new membrane against the threshold its adaptation set before this
  step decayed it: ``threshold="v > v_th + adapt_gain*old(a)"``, ``reset="v -= v_th + adapt_gain*old(a); a += 1"``.
  Update lines and the refractory clamp read the start of the step already, so ``old()`` is refused there (and in
  differential equations and refractory conditions); it needs the reset in the same step (a reset at the next step
  tests the threshold on the state the previous step ended in, whose own start is not kept). The backward step
  differentiates through both paths: the threshold and reset depend on the starting state directly and through
  the update.

``input`` names where a layer's input, or a population's summed synaptic and injected current, goes: a
name used in the equations but not defined there is replaced by the input (held constant over the step);
if ``input`` names a state variable, the input is added to it at the start of each step (a jump).

Methods, each as Brian2 defines it: ``"exact"`` (linear systems, coupled ones included: the closed-form
propagator ``exp(A dt)`` of the system augmented with its constant and input terms), ``"euler"``,
``"rk2"`` (midpoint), ``"rk4"``, ``"exponential_euler"`` (each variable's equation is linear in itself:
``x' = A x + B`` gives ``x <- -B/A + (x + B/A) exp(A dt)`` with A, B from the old state).

From these come: the scalar numba ``step`` (printed from the parsed expressions in the order they are
written; sympy does the derivations: propagators, linearity, derivatives) and, when the model is trained,
its backward step by symbolic differentiation of the one-step map, the surrogate standing in for dS/dU
with ``U = lhs - rhs`` of the threshold condition (``detach_reset=True`` treats the spike in the reset as a
constant, as snnTorch does).

Example:
    >>> import numpy as np
    >>> from neuro.models import Equations
    >>> lif = Equations("dv/dt = (v_rest - v + R*I) / tau_m : volt (unless refractory)",
    ...                 threshold="v > v_th", reset="v = v_reset", refractory=2.0,
    ...                 tau_m=20.0, R=1.0, v_rest=0.0, v_th=10.0, v_reset=0.0)
    >>> res = lif.simulate(np.full((1000, 1), 20.0, np.float32), dt=0.1)   # 20 nA into 1 MOhm for 100 ms
    >>> int(res.spikes.sum())   # period 20 ln 2 + 2 ms = 15.9 ms
    6
"""

from __future__ import annotations

import ast
import hashlib
import keyword
import re
from dataclasses import dataclass, field

import numpy as np
import sympy as sp

from neuro import _checks
from neuro.models._base import RESET_MODES, Dynamics
from neuro.models._neuron import NeuronModel
from neuro.models.coefficients import steps

__all__ = ["Equations", "EquationError", "UNITS"]


class EquationError(ValueError):
    """A model's equations, threshold, reset or method cannot be used; the message names the line and symbol."""


# --------------------------------------------------------------------------------------------------------------
# units: factor of each Brian2 unit name in the project's units (ms, mV, nA, nF, uS, MOhm; lengths in metres)
_PREFIXES = {"f": 1e-15, "p": 1e-12, "n": 1e-9, "u": 1e-6, "m": 1e-3, "c": 1e-2, "k": 1e3, "M": 1e6, "G": 1e9}
_BASE = {  # SI base unit -> its value in project units
    "volt": 1e3, "amp": 1e9, "ampere": 1e9, "second": 1e3, "farad": 1e9, "siemens": 1e6, "ohm": 1e-6,
    "hertz": 1e-3, "metre": 1.0, "meter": 1.0, "molar": 1.0, "mole": 1.0, "liter": 1.0, "litre": 1.0,
}
_SHORT = {"V": "volt", "A": "amp", "s": "second", "F": "farad", "S": "siemens", "Hz": "hertz", "m": "metre",
          "M": "molar", "l": "liter", "L": "liter"}


def _build_units() -> dict[str, float]:
    units: dict[str, float] = {}
    for name, f in _BASE.items():
        units[name] = f
        for p, pf in _PREFIXES.items():
            units[p + name] = pf * f
    for short, long in _SHORT.items():
        if len(short) > 1:
            units[short] = _BASE[long]
        for p, pf in _PREFIXES.items():
            units[p + short] = pf * _BASE[long]
    units["Hz"] = 1e-3
    units["ohm"] = 1e-6
    for p, pf in _PREFIXES.items():
        units[p + "ohm"] = pf * 1e-6
    units["Mohm"] = 1.0
    for name in list(units):  # metre2, cm2, um3 ...
        if name.endswith(("metre", "meter")) or name in ("cm", "mm", "um", "nm"):
            units[name + "2"] = units[name] ** 2
            units[name + "3"] = units[name] ** 3
    return units


UNITS: dict[str, float] = _build_units()
CONSTANTS: dict[str, float] = {"inf": float("inf"), "pi": float(np.pi)}
"""Brian2's named constants usable in expressions."""

# --------------------------------------------------------------------------------------------------------------
# sympy functions with the derivative rules the backward step needs


class exprel(sp.Function):  # noqa: N801 - Brian2's name
    """(exp(x) - 1) / x, 1 at x = 0."""

    def fdiff(self, argindex=1):
        return exprel_d(self.args[0])


class exprel_d(sp.Function):  # noqa: N801
    """d/dx exprel(x) = (x e^x - e^x + 1) / x^2, 1/2 at x = 0."""


class trunc_int(sp.Function):  # noqa: N801
    """Brian2's int(): truncation, zero derivative."""

    def fdiff(self, argindex=1):
        return sp.Integer(0)


_SYMPY_FUNCS = {
    "exp": sp.exp, "log": sp.log, "sqrt": sp.sqrt, "abs": sp.Abs, "sign": sp.sign, "sin": sp.sin, "cos": sp.cos,
    "tan": sp.tan, "sinh": sp.sinh, "cosh": sp.cosh, "tanh": sp.tanh, "arcsin": sp.asin, "arccos": sp.acos,
    "arctan": sp.atan, "exprel": exprel, "int": trunc_int, "floor": sp.floor, "ceil": sp.ceiling,
    "log10": lambda x: sp.log(x) / sp.log(10), "expm1": lambda x: sp.exp(x) - 1, "log1p": lambda x: sp.log(1 + x),
    "clip": lambda x, lo, hi: sp.Min(sp.Max(x, lo), hi),
}
_CODE_FUNCS = {"exp": "np.exp", "log": "np.log", "sqrt": "np.sqrt", "abs": "abs", "sign": "np.sign",
               "sin": "np.sin", "cos": "np.cos", "tan": "np.tan", "sinh": "np.sinh", "cosh": "np.cosh",
               "tanh": "np.tanh", "arcsin": "np.arcsin", "arccos": "np.arccos", "arctan": "np.arctan",
               "exprel": "_exprel", "int": "_trunc", "floor": "np.floor", "ceil": "np.ceil", "log10": "np.log10",
               "expm1": "np.expm1", "log1p": "np.log1p", "clip": "_clip"}
_OLD = "old"  # old(x): the value of state x at the start of the step, in the threshold and reset
_RESERVED = {"np", "numba", "reset_mode", "reset_delay", "abs", "min", "max", "float", "int", "dt", "t", "i", "N",
             "xi", "lastspike", "refractory", "refractory_until", _OLD}
_METHODS = ("exact", "euler", "rk2", "rk4", "exponential_euler")
_OPTIONS = ("reset_mode", "reset_delay")


# --------------------------------------------------------------------------------------------------------------
# parsing


@dataclass
class _Line:
    kind: str  # "diff", "sub", "param"
    name: str
    expr: str
    unit: str
    flags: tuple[str, ...]
    lineno: int
    text: str


_DIFF = re.compile(r"^d\s*([A-Za-z_]\w*)\s*/\s*dt\s*=(.*)$", re.S)
_UPDATE = re.compile(r"^([A-Za-z_]\w*)\s*<-(.*)$", re.S)
_SUB = re.compile(r"^([A-Za-z_]\w*)\s*=(.*)$", re.S)
_PARAM = re.compile(r"^([A-Za-z_]\w*)\s*$")
_FLAGS = re.compile(r"\(([^()]*)\)\s*$")


def _logical_lines(text: str) -> list[tuple[int, str]]:
    """Join continuation lines: an equation ends with its ``: unit`` annotation."""
    out, buf, start = [], "", None
    for k, raw in enumerate(text.splitlines(), 1):
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        if start is None:
            start = k
        buf = f"{buf} {line}" if buf else line
        if _has_top_level_colon(buf):
            out.append((start, buf))
            buf, start = "", None
    if buf:
        out.append((start, buf))
    return out


def _has_top_level_colon(s: str) -> bool:
    depth = 0
    for ch in s:
        depth += ch in "([{"
        depth -= ch in ")]}"
        if ch == ":" and depth == 0:
            return True
    return False


def _parse_lines(text: str) -> list[_Line]:
    if not isinstance(text, str):
        raise TypeError(f"equations must be a string of Brian2-style equations, got {type(text).__name__}")
    lines = []
    for lineno, line in _logical_lines(text):
        if not _has_top_level_colon(line):
            raise EquationError(f"line {lineno}: {line!r} has no ': unit' annotation (write e.g. 'dv/dt = ... : volt')")
        depth, cut = 0, None
        for pos, ch in enumerate(line):
            depth += ch in "([{"
            depth -= ch in ")]}"
            if ch == ":" and depth == 0:
                cut = pos
                break
        lhs, annot = line[:cut].strip(), line[cut + 1:].strip()
        flags: tuple[str, ...] = ()
        m = _FLAGS.search(annot)
        if m:
            flags = tuple(f.strip() for f in m.group(1).split(",") if f.strip())
            annot = annot[: m.start()].strip()
        for f in flags:
            if f not in ("unless refractory", "unless-refractory", "constant", "shared"):
                raise EquationError(f"line {lineno}: unknown flag ({f}); known: (unless refractory), (constant)")
        if m := _DIFF.match(lhs):
            lines.append(_Line("diff", m.group(1), m.group(2).strip(), annot, flags, lineno, line))
        elif m := _UPDATE.match(lhs):
            lines.append(_Line("update", m.group(1), m.group(2).strip(), annot, flags, lineno, line))
        elif m := _SUB.match(lhs):
            lines.append(_Line("sub", m.group(1), m.group(2).strip(), annot, flags, lineno, line))
        elif m := _PARAM.match(lhs):
            lines.append(_Line("param", m.group(1), "", annot, flags, lineno, line))
        else:
            raise EquationError(f"line {lineno}: cannot read {lhs!r}; expected 'dx/dt = expr : unit', "
                                "'x <- expr : unit', 'name = expr : unit' or 'name : unit'")
    if not lines:
        raise EquationError("the equations are empty: give at least one 'dx/dt = ... : unit' line")
    seen: dict[str, int] = {}
    for ln in lines:
        _check_name(ln.name, f"line {ln.lineno}")
        if ln.name in seen:
            raise EquationError(f"line {ln.lineno}: {ln.name!r} is defined twice (first on line {seen[ln.name]})")
        seen[ln.name] = ln.lineno
    return lines


def _check_name(name: str, where: str) -> None:
    if name.startswith("_") or keyword.iskeyword(name) or name in _RESERVED or name in UNITS or name in CONSTANTS \
            or name in _SYMPY_FUNCS or name == "not_refractory":
        raise EquationError(f"{where}: {name!r} is a reserved name (a unit, function, keyword or internal name); "
                            "rename it")


class _Expr:
    """One parsed expression: names used, a sympy form for derivations, a code form printed in written order."""

    def __init__(self, text: str, where: str):
        self.text, self.where = text, where
        try:
            self.tree = ast.parse(text.strip(), mode="eval").body
        except SyntaxError as exc:
            raise EquationError(f"{where}: cannot parse {text.strip()!r} ({exc.msg})") from None
        self.names: set[str] = set()
        self.olds: set[str] = set()  # names read as old(name): their value at the start of the step
        self._collect(self.tree)

    def _collect(self, node) -> None:
        if isinstance(node, ast.Name):
            if node.id not in UNITS and node.id not in CONSTANTS and node.id not in ("True", "False"):
                self.names.add(node.id)
        elif isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == _OLD:
            if node.keywords or len(node.args) != 1 or not isinstance(node.args[0], ast.Name):
                raise EquationError(f"{self.where}: {ast.unparse(node)!r}: old() takes one state variable, "
                                    "e.g. old(a)")
            self.names.add(node.args[0].id)
            self.olds.add(node.args[0].id)
        elif isinstance(node, ast.Call):
            if not isinstance(node.func, ast.Name) or node.func.id not in _SYMPY_FUNCS:
                fname = node.func.id if isinstance(node.func, ast.Name) else ast.unparse(node.func)
                known = ", ".join(sorted(_SYMPY_FUNCS))
                raise EquationError(f"{self.where}: unknown function {fname!r}; known: {known}")
            if node.keywords:
                raise EquationError(f"{self.where}: keyword arguments are not supported in {ast.unparse(node)!r}")
            for a in node.args:
                self._collect(a)
        elif isinstance(node, ast.BinOp | ast.UnaryOp | ast.Constant | ast.Compare | ast.BoolOp):
            for child in ast.iter_child_nodes(node):
                self._collect(child)
        elif isinstance(node, ast.operator | ast.unaryop | ast.cmpop | ast.boolop):
            return
        else:
            raise EquationError(f"{self.where}: {ast.unparse(node)!r} is not an arithmetic expression")

    # -- sympy ---------------------------------------------------------------------------------------------
    def sym(self, env: dict[str, sp.Expr]) -> sp.Expr:
        return self._sym(self.tree, env)

    def _sym(self, node, env):
        if isinstance(node, ast.Constant):
            if isinstance(node.value, bool):
                return sp.Integer(int(node.value))
            if not isinstance(node.value, int | float):
                raise EquationError(f"{self.where}: {node.value!r} is not a number")
            return sp.Integer(node.value) if isinstance(node.value, int) else sp.Float(node.value, 17)
        if isinstance(node, ast.Name):
            if node.id in env:
                return env[node.id]
            if node.id in UNITS:
                return sp.Float(UNITS[node.id], 17)
            if node.id in CONSTANTS:
                return sp.oo if node.id == "inf" else sp.pi
            raise EquationError(f"{self.where}: unknown symbol {node.id!r}")
        if isinstance(node, ast.BinOp):
            a, b = self._sym(node.left, env), self._sym(node.right, env)
            op = type(node.op)
            if op is ast.Add:
                return a + b
            if op is ast.Sub:
                return a - b
            if op is ast.Mult:
                return a * b
            if op is ast.Div:
                return a / b
            if op is ast.Pow:
                return a ** b
            raise EquationError(f"{self.where}: operator {ast.unparse(node)!r} is not supported")
        if isinstance(node, ast.UnaryOp):
            v = self._sym(node.operand, env)
            if isinstance(node.op, ast.USub):
                return -v
            if isinstance(node.op, ast.UAdd):
                return v
            raise EquationError(f"{self.where}: operator in {ast.unparse(node)!r} is not supported here")
        if isinstance(node, ast.Call):
            if node.func.id == _OLD:
                return self._old(node, env)
            return _SYMPY_FUNCS[node.func.id](*[self._sym(a, env) for a in node.args])
        raise EquationError(f"{self.where}: {ast.unparse(node)!r} is not allowed here (comparisons only in "
                            "threshold and refractory conditions)")

    def _old(self, node: ast.Call, names: dict):
        """old(x): what ``names`` holds under ``"old(x)"`` (given only where the start of the step is known)."""
        key = f"{_OLD}({node.args[0].id})"
        if key not in names:  # _analyse refuses old() elsewhere first; this guards the generators
            raise EquationError(f"{self.where}: {key} cannot be read here (only in the threshold and reset)")
        return names[key]

    # -- code, in the order written -----------------------------------------------------------------------
    def code(self, pool: _Consts, rename: dict[str, str]) -> str:
        return self._code(self.tree, pool, rename)

    def _code(self, node, pool, rename):
        if isinstance(node, ast.Constant):
            return pool.get(float(node.value))
        if isinstance(node, ast.Name):
            if node.id in rename:
                return rename[node.id]
            if node.id in UNITS:
                return pool.get(UNITS[node.id])
            if node.id in CONSTANTS:
                return pool.get(CONSTANTS[node.id])
            raise EquationError(f"{self.where}: unknown symbol {node.id!r}")
        if isinstance(node, ast.BinOp):
            if isinstance(node.op, ast.Pow) and isinstance(node.right, ast.Constant | ast.UnaryOp) \
                    and _int_literal(node.right) is not None:
                return f"({self._code(node.left, pool, rename)} ** {_int_literal(node.right)})"
            ops = {ast.Add: "+", ast.Sub: "-", ast.Mult: "*", ast.Div: "/", ast.Pow: "**"}
            left, right = self._code(node.left, pool, rename), self._code(node.right, pool, rename)
            return f"({left} {ops[type(node.op)]} {right})"
        if isinstance(node, ast.UnaryOp):
            return f"(-{self._code(node.operand, pool, rename)})" if isinstance(node.op, ast.USub) \
                else self._code(node.operand, pool, rename)
        if isinstance(node, ast.Call):
            if node.func.id == _OLD:
                return self._old(node, rename)
            args = ", ".join(self._code(a, pool, rename) for a in node.args)
            return f"{_CODE_FUNCS[node.func.id]}({args})"
        raise EquationError(f"{self.where}: {ast.unparse(node)!r} is not allowed here")


def _int_literal(node) -> int | None:
    if isinstance(node, ast.Constant) and isinstance(node.value, int) and not isinstance(node.value, bool):
        return node.value
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub):
        v = _int_literal(node.operand)
        return None if v is None else -v
    return None


class _Consts:
    """float32 constants hoisted to module level, so numba folds them and nothing is promoted to float64."""

    def __init__(self):
        self.values: dict[float, str] = {}

    def get(self, value: float) -> str:
        value = float(value)
        if value not in self.values:
            self.values[value] = f"_K{len(self.values)}"
        return self.values[value]

    def source(self) -> str:
        return "".join(f"{name} = np.float32({value!r})\n" if np.isfinite(value) else
                       f"{name} = np.float32(float({str(value)!r}))\n" for value, name in self.values.items())


# --------------------------------------------------------------------------------------------------------------
# printing sympy expressions (derived terms: propagators, exponential Euler, derivatives) as numba code


class _SympyPrinter:
    def __init__(self, pool: _Consts, names: dict[sp.Symbol, str]):
        self.pool, self.names = pool, names

    def __call__(self, e) -> str:  # noqa: C901 - one case per node type
        if isinstance(e, sp.Symbol):
            if e not in self.names:
                raise EquationError(f"internal: no code name for symbol {e}")
            return self.names[e]
        if e is sp.true or e is sp.false:
            return self.pool.get(1.0 if e is sp.true else 0.0)
        if e.is_Number:
            return self.pool.get(float(e))
        if isinstance(e, sp.Add):
            return "(" + " + ".join(self(a) for a in e.args) + ")"
        if isinstance(e, sp.Mul):
            num, den = [], []
            for a in e.args:
                if isinstance(a, sp.Pow) and a.exp.is_Integer and a.exp < 0:
                    den.append(self(a.base) if a.exp == -1 else f"({self(a.base)} ** {int(-a.exp)})")
                else:
                    num.append(self(a))
            top = " * ".join(num) if num else self.pool.get(1.0)
            return f"({top} / ({' * '.join(den)}))" if den else f"({top})"
        if isinstance(e, sp.Pow):
            if e.exp.is_Integer:
                k = int(e.exp)
                return f"({self(e.base)} ** {k})" if k > 0 else f"({self.pool.get(1.0)} / ({self(e.base)} ** {-k}))"
            if e.exp == sp.Rational(1, 2):
                return f"np.sqrt({self(e.base)})"
            return f"({self(e.base)} ** {self(e.exp)})"
        f = {sp.exp: "np.exp", sp.log: "np.log", sp.Abs: "abs", sp.sign: "np.sign", sp.sin: "np.sin",
             sp.cos: "np.cos", sp.tan: "np.tan", sp.sinh: "np.sinh", sp.cosh: "np.cosh", sp.tanh: "np.tanh",
             sp.asin: "np.arcsin", sp.acos: "np.arccos", sp.atan: "np.arctan", sp.floor: "np.floor",
             sp.ceiling: "np.ceil", exprel: "_exprel", exprel_d: "_exprel_d", trunc_int: "_trunc",
             sp.Heaviside: "_heaviside"}.get(type(e))
        if f is None and e.func in (sp.Min, sp.Max):
            f = "min" if e.func is sp.Min else "max"
            out = self(e.args[0])
            for a in e.args[1:]:
                out = f"{f}({out}, {self(a)})"
            return out
        if f is None:
            raise EquationError(f"no code form for {type(e).__name__} (in {e}); this model cannot be trained")
        args = e.args[:1] if isinstance(e, sp.Heaviside) else e.args  # Heaviside's second argument is H(0)
        return f"{f}({', '.join(self(a) for a in args)})"


_HELPERS = '''
@numba.njit(inline="always")
def _exprel(x):
    if x == _ZERO:
        return _ONE
    return np.expm1(x) / x


@numba.njit(inline="always")
def _exprel_d(x):
    if abs(x) < np.float32(1e-3):
        return np.float32(0.5) + x / np.float32(3.0)
    return (x * np.exp(x) - np.expm1(x)) / (x * x)


@numba.njit(inline="always")
def _trunc(x):
    return np.float32(np.trunc(x))


@numba.njit(inline="always")
def _clip(x, lo, hi):
    return min(max(x, lo), hi)


@numba.njit(inline="always")
def _heaviside(x):
    return _ONE if x > _ZERO else _ZERO
'''


# --------------------------------------------------------------------------------------------------------------
# the model


@dataclass
class _Analysis:
    states: list[str]
    subs: list[str]  # in dependency order
    params: list[str]  # physical parameters the model uses
    exprs: dict[str, _Expr]  # rhs of states and subexpressions
    frozen: set[str]  # (unless refractory)
    input_name: str | None
    input_is_state: bool
    thr: tuple[_Expr, str, _Expr]  # lhs, op, rhs
    resets: list[tuple[str, str, _Expr]]  # (target, op, expr)
    ref_cond: tuple[_Expr, str, _Expr] | None
    linear: dict = field(default_factory=dict)
    modes: list = field(default_factory=list)  # (reset_mode code or None, resets) the step is generated for
    clamp: list = field(default_factory=list)  # assignments holding the state while refractory
    discrete: bool = False  # update equations 'x <- expr' instead of differential equations


def _is_condition(text: str) -> bool:
    """Whether a refractory string is a condition (``"v > -20*mV"``) rather than a time (``"tau_ref"``)."""
    t = text.strip()
    if t in (">", ">=", "<", "<="):
        return True
    try:
        return isinstance(ast.parse(t, mode="eval").body, ast.Compare)
    except SyntaxError:
        return True  # let _comparison name the syntax error


def _comparison(text: str, where: str, default_lhs: str | None, default_rhs: str | None):
    text = text.strip()
    if text in (">", ">=", "<", "<="):
        if default_lhs is None or default_rhs is None:
            raise EquationError(f"{where}: a bare {text!r} needs a state 'v' and a parameter 'v_th' "
                                "(or write the condition out, e.g. 'v > v_th')")
        text = f"{default_lhs} {text} {default_rhs}"
    e = _Expr(text, where)
    if not isinstance(e.tree, ast.Compare) or len(e.tree.ops) != 1:
        raise EquationError(f"{where}: {text!r} must be one comparison such as 'v > v_th'")
    op = {ast.Gt: ">", ast.GtE: ">=", ast.Lt: "<", ast.LtE: "<="}.get(type(e.tree.ops[0]))
    if op is None:
        raise EquationError(f"{where}: {text!r}: use >, >=, < or <=")
    lhs, rhs = _Expr(ast.unparse(e.tree.left), where), _Expr(ast.unparse(e.tree.comparators[0]), where)
    return lhs, op, rhs


_RESET_STMT = re.compile(r"^([A-Za-z_]\w*)\s*(=|\+=|-=|\*=|/=)\s*(.+)$", re.S)


class Equations(NeuronModel):
    """A neuron model defined by equations (see the module docstring for the syntax and semantics).

    Args:
        equations: Brian2-style equation block.
        threshold: condition such as ``"v > v_th"`` (a bare ``">"``/``">="`` means ``v > v_th``).
        reset: statements run in order on spiking neurons, separated by ``;`` or new lines.
        refractory: time in ms, or a condition (refractory while it holds).
        method: ``"exact"``, ``"euler"``, ``"rk2"``, ``"rk4"`` or ``"exponential_euler"``.
        input: the name the input feeds (see module docstring); ``None`` for a model without input.
        refractory_timing: ``"brian2"`` (default) or ``"nest"`` (one more frozen update).
        refractory_clamp: assignments holding state variables while refractory (e.g. ``"v = v_reset"``).
        reset_mode: which named reset (``reset`` as a dict) this model uses.
        reset_delay: reset at the next step from the previous step's spike (snnTorch) instead of the same step.
        options: ``"reset_mode"`` and/or ``"reset_delay"``: chosen at run time by kernel options, in this order.
        detach_reset: no gradient through the spike in the reset (snnTorch's rule).
        initial: initial values of state variables (default 0, as Brian2).
        **parameters: every parameter, in the project's units, scalar or one value per neuron.
    """

    def __init__(self, equations: str, threshold: str, reset: str | dict[str, str] = "",
                 refractory: float | str = 0.0, method: str = "exact", input: str | None = "I", *,  # noqa: A002
                 refractory_timing: str = "brian2", refractory_clamp: str = "", reset_mode: str | None = None,
                 reset_delay: bool = False, options: tuple[str, ...] = (), detach_reset: bool = False,
                 initial: dict | None = None, **parameters):
        if method not in _METHODS + ("discrete",):
            raise EquationError(f"method must be one of {', '.join(_METHODS)}, got {method!r}")
        if refractory_timing not in ("brian2", "nest"):
            raise EquationError(f"refractory_timing must be 'brian2' or 'nest', got {refractory_timing!r}")
        if not isinstance(threshold, str):
            raise TypeError(f"threshold must be a condition string such as 'v > v_th', got {threshold!r}")
        if not isinstance(refractory_clamp, str):
            raise TypeError(f"refractory_clamp must be a string of assignments such as 'v = v_reset', "
                            f"got {refractory_clamp!r}")
        self.options = self._check_options(options, reset)
        self.reset_modes, self.reset, self.reset_text = self._check_reset(reset, reset_mode)
        self.reset_mode = RESET_MODES.get(self.reset, 0)
        self.reset_delay = int(_checks.check_bool("reset_delay", reset_delay))
        self.equations, self.threshold = equations, threshold
        self.method, self.input, self.refractory_timing = method, input, refractory_timing
        self.refractory_clamp = refractory_clamp
        self.detach_reset = bool(detach_reset)
        self.refractory = refractory
        self._a = self._analyse(_parse_lines(equations), parameters)
        if self._a.discrete:
            self.method = "discrete"
        elif method == "discrete":
            raise EquationError("method 'discrete' is for update equations ('v <- expr : unit'); these are "
                                "differential equations: use 'exact', 'euler', 'rk2', 'rk4' or 'exponential_euler'")
        from neuro.models._neuron import as_param

        self.parameters = {k: as_param(k, parameters[k]) for k in self._a.params}
        self.initial = {}
        for k, v in (initial or {}).items():
            if k not in self._a.states:
                raise EquationError(f"initial value for {k!r}, which is not a state variable "
                                    f"(states: {', '.join(self._a.states)})")
            self.initial[k] = as_param(f"initial {k}", v)
        self._ref_time = None  # refractory given as a time expression of the parameters (per neuron)
        if isinstance(refractory, str):
            self.t_refractory = None
            if not _is_condition(refractory):
                self._ref_time = _Expr(refractory, "refractory")
        else:
            t = float(as_param("refractory", refractory, nonnegative=True)[0]) if not isinstance(refractory, bool) \
                else None
            if t is None:
                raise TypeError("refractory must be a time in ms or a condition string")
            self.t_refractory = t
        if self.method == "exact":
            self._exact_system()
        self.dynamics = self._build_dynamics()

    # -- analysis ------------------------------------------------------------------------------------------
    @staticmethod
    def _check_options(options, reset) -> tuple[str, ...]:
        if isinstance(options, str) or not isinstance(options, tuple | list):
            raise TypeError(f"options must be a tuple of names among {_OPTIONS}, got {options!r}")
        for k in options:
            if k not in _OPTIONS:
                raise EquationError(f"unknown option {k!r}; the generated step can take {', '.join(_OPTIONS)}")
        if len(set(options)) != len(options):
            raise EquationError(f"options {tuple(options)} name an option twice")
        if "reset_mode" in options and not isinstance(reset, dict):
            raise EquationError("option 'reset_mode' selects among named resets: give reset as a dict such as "
                                "{'subtract': 'v -= v_th', 'to_value': 'v = v_reset', 'none': ''}")
        return tuple(options)

    @staticmethod
    def _check_reset(reset, reset_mode) -> tuple[dict[str, str] | None, str, str]:
        """(named resets or None, the selected mode's name, its statements)."""
        if isinstance(reset, str):
            if reset_mode is not None:
                raise EquationError("reset_mode selects among named resets: give reset as a dict of mode -> "
                                    "statements")
            return None, "", reset
        if not isinstance(reset, dict) or not reset:
            raise TypeError(f"reset must be a string of statements such as 'v = v_reset' or a dict of reset mode "
                            f"-> statements, got {reset!r}")
        codes: dict[int, str] = {}
        for name, text in reset.items():
            if name not in RESET_MODES:
                raise EquationError(f"reset mode {name!r} is not one of {', '.join(sorted(RESET_MODES))}")
            if not isinstance(text, str):
                raise TypeError(f"reset mode {name!r}: statements must be a string, got {text!r}")
            if RESET_MODES[name] in codes:
                raise EquationError(f"reset modes {codes[RESET_MODES[name]]!r} and {name!r} are the same mode")
            codes[RESET_MODES[name]] = name
        mode = next(iter(reset)) if reset_mode is None else reset_mode
        if mode not in reset:
            raise EquationError(f"reset_mode {mode!r} is not among the named resets ({', '.join(reset)})")
        return dict(reset), mode, reset[mode]

    def _parse_resets(self, text: str, what: str, states, parameters, declared, subs_lines, assign_only=False):
        resets = []
        for k, stmt in enumerate(s.strip() for s in re.split(r"[;\n]", text) if s.strip()):
            m = _RESET_STMT.match(stmt)
            if not m:
                raise EquationError(f"{what} statement {k + 1}: cannot read {stmt!r}; write 'v = v_reset' or "
                                    "'w += b'")
            target, op, rhs = m.groups()
            if target not in states:
                kind = "a parameter" if target in parameters or target in declared else \
                    "a subexpression" if target in subs_lines else "not a state variable"
                raise EquationError(f"{what} statement {stmt!r} assigns {target!r}, which is {kind}; it may "
                                    f"only assign state variables ({', '.join(states)})")
            if assign_only and op != "=":
                raise EquationError(f"{what} statement {stmt!r}: write an assignment 'x = value'")
            resets.append((target, op, _Expr(rhs, f"{what} statement {stmt!r}")))
        return resets

    def _analyse(self, lines: list[_Line], parameters: dict) -> _Analysis:
        states = [ln.name for ln in lines if ln.kind in ("diff", "update")]
        if not states:
            raise EquationError("no differential equation ('dx/dt = ... : unit') or update ('x <- ... : unit') "
                                "among the equations")
        kinds = {ln.kind for ln in lines if ln.kind in ("diff", "update")}
        if len(kinds) > 1:
            first = next(ln for ln in lines if ln.kind == "update")
            raise EquationError(f"line {first.lineno}: update equations ('x <- expr') and differential equations "
                                "('dx/dt = expr') cannot be mixed in one model")
        subs_lines = {ln.name: ln for ln in lines if ln.kind == "sub"}
        declared = {ln.name for ln in lines if ln.kind == "param"}
        exprs = {ln.name: _Expr(ln.expr, f"line {ln.lineno} ({ln.text.strip()})") for ln in lines
                 if ln.kind in ("diff", "update", "sub")}
        frozen = {ln.name for ln in lines if ln.kind in ("diff", "update") and any("unless" in f for f in ln.flags)}
        inp = self.input
        if inp is not None:
            if not isinstance(inp, str) or not inp.isidentifier():
                raise EquationError(f"input must be a variable name, got {inp!r}")
            if inp in subs_lines or inp in declared:
                raise EquationError(f"input {inp!r} is defined in the equations as a "
                                    f"{'subexpression' if inp in subs_lines else 'parameter'}; the input must be "
                                    "an undefined name or a state variable")
        used = set().union(*(e.names for e in exprs.values()))
        if inp is not None and inp not in states and inp not in used:
            raise EquationError(f"input {inp!r} does not appear in the equations (name the variable the input "
                                "feeds with input=..., or input=None)")
        # subexpressions in dependency order; cycles refused
        order, state_of = [], {}

        def visit(name, stack):
            if state_of.get(name) == 2:
                return
            if state_of.get(name) == 1:
                raise EquationError(f"subexpressions depend on each other in a cycle: {' -> '.join(stack + [name])}")
            state_of[name] = 1
            for dep in sorted(exprs[name].names & set(subs_lines)):
                visit(dep, stack + [name])
            state_of[name] = 2
            order.append(name)

        for name in subs_lines:
            visit(name, [])
        known = set(states) | set(subs_lines) | {"not_refractory"} | ({inp} if inp else set())
        thr = _comparison(self.threshold, "threshold", "v" if "v" in states else None,
                          next((p for p in ("v_th", "v_thresh", "threshold") if p in parameters), None))
        modes = []  # (option code or None, statements) of every reset the step is generated for
        for name, text in ((self.reset_modes or {}).items() if "reset_mode" in self.options else [(self.reset,
                                                                                        self.reset_text)]):
            modes.append((RESET_MODES.get(name) if "reset_mode" in self.options else None,
                          self._parse_resets(text, "reset", states, parameters, declared, subs_lines)))
        resets = next(r for c, r in modes if c is None or c == self.reset_mode)
        clamp = self._parse_resets(self.refractory_clamp, "refractory_clamp", states, parameters, declared,
                                   subs_lines, assign_only=True)
        for _, _, e in clamp:
            if e.names & set(subs_lines):
                raise EquationError(f"{e.where}: a clamp value may use parameters and state variables, not the "
                                    f"subexpression {sorted(e.names & set(subs_lines))[0]!r}")
        ref_cond = _comparison(self.refractory, "refractory", None, None) if isinstance(self.refractory, str) \
            and _is_condition(self.refractory) else None
        all_names, ref_time = set(used), None
        if isinstance(self.refractory, str) and ref_cond is None:  # a time: Brian2's refractory='tau_ref'
            ref_time = _Expr(self.refractory, "refractory")
            if ref_time.names & (set(states) | set(subs_lines)):
                raise EquationError(f"refractory {self.refractory!r} is a time: it may use parameters only, not "
                                    f"{', '.join(sorted(ref_time.names & (set(states) | set(subs_lines))))}")
            all_names |= ref_time.names
        for lhs, _, rhs in [thr] + ([ref_cond] if ref_cond else []):
            all_names |= lhs.names | rhs.names
        self._check_olds(states, exprs, thr, modes, clamp, ref_cond, ref_time)
        for _, r in modes:
            for _, _, e in r:
                all_names |= e.names
        for _, _, e in clamp:
            all_names |= e.names
        order_declared = [ln.name for ln in lines if ln.kind == "param"]  # declared parameters keep their order
        params = [p for p in order_declared if p in all_names - known] + \
            sorted(all_names - known - set(order_declared))
        for p in params:
            _check_name(p, "parameter")
        missing = [p for p in params if p not in parameters]
        if missing:
            where = self._where_used(missing[0], exprs, thr, resets, ref_cond)
            raise EquationError(f"unknown symbol {missing[0]!r} ({where}): it is not a state variable, "
                                f"subexpression, unit or function; give it as a parameter, e.g. "
                                f"Equations(..., {missing[0]}=1.0)" + (f" (also missing: {', '.join(missing[1:])})"
                                                                       if len(missing) > 1 else ""))
        extra = sorted(set(parameters) - set(params))
        shadowed = [k for k in extra if k in UNITS or k in CONSTANTS]
        if shadowed:
            raise EquationError(f"parameter {shadowed[0]!r} has the name of a unit or constant, which is what the "
                                f"equations read it as (as in Brian2); rename the parameter (e.g. "
                                f"{shadowed[0][0].upper() + shadowed[0][1:]!r} or '{shadowed[0]}_')")
        if extra:
            raise EquationError(f"parameter {extra[0]!r} is not used by the equations, threshold, reset or "
                                f"refractory condition (used parameters: {', '.join(params) or 'none'})")
        for lhs, _, rhs in [thr]:
            if not (lhs.names | rhs.names) & set(states) and not any(
                    (exprs[s].names & set(states)) for s in (lhs.names | rhs.names) & set(subs_lines)):
                raise EquationError(f"threshold {self.threshold!r} does not test any state variable "
                                    f"({', '.join(states)})")
        return _Analysis(states, order, params, exprs, frozen, inp, inp in states if inp else False, thr, resets,
                         ref_cond, modes=modes, clamp=clamp, discrete=kinds == {"update"})

    def _check_olds(self, states, exprs, thr, modes, clamp, ref_cond, ref_time) -> None:
        """old(x) is read in the threshold and reset only, of state variables, with the reset in the same step."""
        elsewhere = list(exprs.values()) + [e for _, _, e in clamp] + ([ref_time] if ref_time else []) + \
            (list(ref_cond[::2]) if ref_cond else [])
        for e in elsewhere:
            if e.olds:
                name = sorted(e.olds)[0]
                raise EquationError(f"{e.where}: old({name}) may only be read in the threshold and reset (update "
                                    f"lines and the refractory clamp read the value the step starts from already: "
                                    f"write {name})")
        read = [thr[0], thr[2]] + [e for _, r in modes for _, _, e in r]
        for e in read:
            bad = sorted(e.olds - set(states))
            if bad:
                raise EquationError(f"{e.where}: old({bad[0]}): old() reads a state variable at the start of the "
                                    f"step ({', '.join(states)}); {bad[0]!r} is not one")
        if any(e.olds for e in read) and (self.reset_delay or "reset_delay" in self.options):
            raise EquationError("old() in the threshold or reset needs the reset in the same step: a reset at the "
                                "next step tests the threshold on the state the previous step ended in, whose own "
                                "start is not kept")

    @staticmethod
    def _where_used(name, exprs, thr, resets, ref_cond) -> str:
        for e in exprs.values():
            if name in e.names:
                return e.where
        if name in thr[0].names | thr[2].names:
            return "threshold"
        for _, _, e in resets:
            if name in e.names:
                return e.where
        return "refractory condition" if ref_cond else "equations"

    # -- sympy forms -----------------------------------------------------------------------------------------
    def _symbols(self):
        a = self._a
        S = {s: sp.Symbol(s, real=True) for s in a.states}
        P = {p: sp.Symbol(p, real=True) for p in a.params}
        u = sp.Symbol("_x", real=True)
        nr = sp.Symbol("_nr", real=True)
        return S, P, u, nr

    def _rhs_sym(self, S, P, u, nr, state_values=None, apply_frozen: bool = True) -> dict[str, sp.Expr]:
        """Right-hand sides with subexpressions substituted, ``(unless refractory)`` times nr."""
        a = self._a
        env = dict(P)
        env.update(state_values or S)
        env["not_refractory"] = nr
        if a.input_name and not a.input_is_state:
            env[a.input_name] = u
        for name in a.subs:
            env[name] = a.exprs[name].sym(env)
        out = {}
        for s in a.states:
            f = a.exprs[s].sym(env)
            out[s] = nr * f if s in a.frozen and apply_frozen else f
        return out

    def _exact_system(self) -> None:
        """Check linearity and keep A, c, B (dX/dt = A X + c + B u) as sympy matrices in the parameters."""
        S, P, u, nr = self._symbols()
        rhs = self._rhs_sym(S, P, u, sp.Integer(1))
        X = [S[s] for s in self._a.states]
        n = len(X)
        A = sp.zeros(n, n)
        c = sp.zeros(n, 1)
        B = sp.zeros(n, 1)
        for i, s in enumerate(self._a.states):
            f = sp.expand(rhs[s])
            for j, xj in enumerate(X + [u]):
                d = sp.diff(f, xj)
                bad = d.free_symbols & (set(X) | {u})
                if bad or d.has(sp.Heaviside):
                    what = "the input" if xj == u else repr(str(xj))
                    raise EquationError(f"method 'exact' cannot integrate {self._a.exprs[s].where}: it is not "
                                        f"linear in {what} (its coefficient depends on "
                                        f"{', '.join(sorted(map(str, bad))) or 'a threshold'}); use method='euler', "
                                        "'rk2', 'rk4' or 'exponential_euler'")
                if j < n:
                    A[i, j] = d
                else:
                    B[i] = d
            c[i] = sp.simplify(f - sum(A[i, j] * X[j] for j in range(n)) - B[i] * u)
        self._a.linear = {"A": A, "c": c, "B": B}

    def coefficients(self, params: dict, dt: float, torch_module=None) -> dict:
        """Per-step kernel coefficients from physical parameters (numpy float64 arrays or torch tensors).

        For ``exact`` these are the propagator entries minus the identity ``_E_i_j``, constant terms ``_q_i``,
        input gains ``_r_i`` (and ``_Er_...`` for the refractory system when some variables are frozen); every physical
        parameter the step uses directly is passed through. Differentiable when given torch tensors.
        """
        import torch

        out = dict(params)
        if self.method != "exact":
            return out
        as_t = {k: (v if isinstance(v, torch.Tensor) else torch.as_tensor(np.asarray(v, np.float64)))
                for k, v in params.items()}
        a = self._a
        n = len(a.states)
        S, P, u, nr = self._symbols()
        sizes = [t.numel() for t in as_t.values()] or [1]
        size = max(sizes)
        dtype = torch.float64
        args = [P[p] for p in a.params]
        vals = [as_t[p].reshape(-1).to(dtype).expand(size) if as_t[p].numel() in (1, size) else as_t[p]
                for p in a.params]
        fn_map = [{"exp": torch.exp, "log": torch.log, "sqrt": torch.sqrt, "Abs": torch.abs}, "math"]

        def ev(expr):
            if not expr.free_symbols:
                return torch.full((size,), float(expr), dtype=dtype)
            f = sp.lambdify(args, expr, modules=fn_map)
            return torch.as_tensor(f(*vals), dtype=dtype).expand(size)

        def propagator(rows_frozen: set[str]):
            M = torch.zeros(size, n + 2, n + 2, dtype=dtype)
            for i, s in enumerate(a.states):
                if s in rows_frozen:
                    continue
                for j in range(n):
                    M[:, i, j] = ev(a.linear["A"][i, j])
                M[:, i, n] = ev(a.linear["c"][i])
                M[:, i, n + 1] = ev(a.linear["B"][i])
            # the propagator minus the identity, formed in float64 (see _integrate: increment form)
            return torch.linalg.matrix_exp(M * float(dt)) - torch.eye(n + 2, dtype=dtype)

        E = propagator(set())
        for i in range(n):
            for j in range(n):
                out[f"_E_{i}_{j}"] = E[:, i, j]
            out[f"_q_{i}"] = E[:, i, n]
            out[f"_r_{i}"] = E[:, i, n + 1]
        if self._needs_ref_system():
            Er = propagator(a.frozen)
            for i in range(n):
                for j in range(n):
                    out[f"_Er_{i}_{j}"] = Er[:, i, j]
                out[f"_qr_{i}"] = Er[:, i, n]
                out[f"_rr_{i}"] = Er[:, i, n + 1]
        if torch_module is None:
            out = {k: (v.detach().numpy() if isinstance(v, torch.Tensor) else v) for k, v in out.items()}
        return out

    def _has_refractory(self) -> bool:
        return self._a.ref_cond is not None or self._counter

    @property
    def _counter(self) -> bool:
        """Whether the step carries a refractory step counter ``_ref`` (a refractory time was given)."""
        return bool(self.t_refractory) or self._ref_time is not None

    def _needs_ref_system(self) -> bool:
        return self.method == "exact" and self._has_refractory() and bool(self._a.frozen)

    # -- kernel parameter and state layout -----------------------------------------------------------------
    def _direct_params(self) -> list[str]:
        """Physical parameters the generated step reads (exact: only those outside the linear system)."""
        a = self._a
        if self.method != "exact":
            used = set().union(*(e.names for e in a.exprs.values()), a.thr[0].names, a.thr[2].names,
                               *(e.names for _, r in a.modes for _, _, e in r), *(e.names for _, _, e in a.clamp))
            if a.ref_cond:
                used |= a.ref_cond[0].names | a.ref_cond[2].names
            return [p for p in a.params if p in used]  # not those only in a refractory time
        names = set(a.thr[0].names | a.thr[2].names)
        for _, _, e in [st for _, r in a.modes for st in r] + a.clamp:
            names |= e.names
        if a.ref_cond:
            names |= a.ref_cond[0].names | a.ref_cond[2].names
        # subexpressions used there pull in their own parameters
        for s in a.subs:
            if s in names:
                names |= a.exprs[s].names
        return [p for p in a.params if p in names]

    def _coef_names(self) -> list[str]:
        if self.method != "exact":
            return []
        n = len(self._a.states)
        names = [f"_E_{i}_{j}" for i in range(n) for j in range(n)] + [f"_q_{i}" for i in range(n)] + \
            [f"_r_{i}" for i in range(n)]
        if self._needs_ref_system():
            names += [f"_Er_{i}_{j}" for i in range(n) for j in range(n)] + [f"_qr_{i}" for i in range(n)] + \
                [f"_rr_{i}" for i in range(n)]
        return names

    def _kernel_state(self) -> list[str]:
        return list(self._a.states) + (["_ref"] if self._counter else [])

    def _kernel_params(self) -> list[str]:
        return self._direct_params() + self._coef_names() + (["_t_ref"] if self._counter else [])

    # -- code generation -------------------------------------------------------------------------------------
    def _env_code(self, pool: _Consts, lines: list[str], indent: str, prefix: str = "") -> dict[str, str]:
        """Emit subexpressions as locals (in dependency order); returns the code names of every symbol."""
        a = self._a
        rename = {s: f"{prefix}{s}" if prefix else s for s in a.states}
        rename.update({p: p for p in a.params})
        rename["not_refractory"] = "_nr"
        if a.input_name and not a.input_is_state:
            rename[a.input_name] = "_x"
        for name in a.subs:
            lines.append(f"{indent}{prefix}_s_{name} = {a.exprs[name].code(pool, rename)}")
            rename[name] = f"{prefix}_s_{name}"
        return rename

    def _variants(self) -> list[tuple[str, list, int]]:
        """(condition on the options, reset statements, reset delay) of each variant the step is generated for:
        one per reset mode and timing the options select among at run time."""
        delays = [0, 1] if "reset_delay" in self.options else [self.reset_delay]
        out = []
        for code, resets in self._a.modes:
            for d in delays:
                cond = ([f"reset_mode == {code}"] if code is not None else []) + \
                    ([f"reset_delay == {d}"] if len(delays) > 1 else [])
                out.append((" and ".join(cond), resets, d))
        return out

    def _branches(self, L: list[str], make) -> None:
        """Append each variant's lines (``make(resets, delay, indent)``) under its option test."""
        variants = self._variants()
        for k, (cond, resets, d) in enumerate(variants):
            if len(variants) == 1:
                L += make(resets, d, "    ")
                continue
            L.append("    " + (f"if {cond}:" if k == 0 else "else:" if k == len(variants) - 1 else f"elif {cond}:"))
            L += make(resets, d, "        ")

    def _source(self) -> str:
        a = self._a
        pool = _Consts()
        states, kparams = self._kernel_state(), self._kernel_params()
        args = ", ".join(states + ["_x"] + kparams + list(self.options) + ["dt"])
        L: list[str] = []
        # the right-hand side, evaluated at any state (rk2/rk4 need it at intermediate states)
        if self.method in ("euler", "rk2", "rk4"):
            rhs_args = ", ".join(a.states + ["_x"] + self._direct_params() + ["_nr"])
            body: list[str] = []
            rename = self._env_code(pool, body, "    ")
            for s in a.states:
                f = a.exprs[s].code(pool, rename)
                body.append(f"    _d_{s} = _nr * {f}" if s in a.frozen else f"    _d_{s} = {f}")
            body.append(f"    return {', '.join(f'_d_{s}' for s in a.states)}" + ("," if len(a.states) == 1 else ""))
            L += ['@numba.njit(inline="always")', f"def _rhs({rhs_args}):"] + body + ["", ""]
        L += ['@numba.njit(inline="always")', f"def step({args}):", "    _dt = np.float32(dt)"]
        ret = [f"_n_{s}" for s in a.states] + (["_ref"] if self._counter else []) + ["_spk"]
        # one body, the option tests local to the statements they choose (as a hand-written step would be): a
        # switch between whole variants at the top measured 15% slower in the vectorised kernel loop
        L += self._forward_body(pool, "    ")
        L.append(f"    return {', '.join(ret)}")
        head = ["import numba", "import numpy as np", "", "_ZERO = np.float32(0.0)", "_ONE = np.float32(1.0)"]
        src_body = "\n".join(L)
        return "\n".join(head) + "\n" + pool.source() + _HELPERS + "\n\n" + src_body + "\n" + self._backward_stub()

    def _delays(self) -> list[int]:
        return [0, 1] if "reset_delay" in self.options else [self.reset_delay]

    def _mode_switch(self, ind: str, per_mode) -> list[str]:
        """``per_mode(resets, indent)`` for the reset in force: under a test of ``reset_mode`` for each named reset
        when it is an option (a mode without statements does nothing)."""
        a = self._a
        if "reset_mode" not in self.options:
            return per_mode(a.modes[0][1], ind)
        out: list[str] = []
        for code, resets in a.modes:
            body = per_mode(resets, ind + "    ")
            if body:
                out += [f"{ind}{'elif' if out else 'if'} reset_mode == {code}:"] + body
        return out

    def _forward_body(self, pool: _Consts, ind: str) -> list[str]:
        """The forward step for every reset mode and timing the options allow (see :meth:`_advance` for the
        order of the parts)."""
        a = self._a
        delays = self._delays()
        every = [st for _, r in a.modes for st in r]
        L: list[str] = []
        start = self._start_names()
        if 1 in delays:
            inner = ind + ("    " if len(delays) > 1 else "")
            L.append(f"{ind}_fp = _ZERO")
            if len(delays) > 1:
                L.append(f"{ind}if reset_delay != 0:")
            thr, cond, _ = self._threshold_code(pool, inner, {s: s for s in a.states}, "_p_", reads_resets=every)
            L += thr + [f"{inner}if {cond}:", f"{inner}    _fp = _ONE"]
            L += self._mode_switch(inner + "    ", lambda r, i: [f"{i}{t} = {e.code(pool, start)}"
                                                              for t, op, e in r if op == "="])
            if self._counter:
                L.append(f"{inner}    _ref = {self._ref_start()}")
        L += self._refractory_start(pool, ind)
        if a.input_is_state:
            L.append(f"{ind}{a.input_name} = {a.input_name} + _x")
        L += self._integrate(pool, ind)
        if 1 in delays and any(op != "=" for _, op, _ in every):
            L.append(f"{ind}if _fp > _ZERO:")
            L += self._mode_switch(ind + "    ", lambda r, i: [f"{i}_i_{t} = _i_{t} {op[0]} {e.code(pool, start)}"
                                                            for t, op, e in r if op != "="])
        L += self._clamp(pool, ind)
        thr, cond, rename = self._threshold_code(pool, ind)
        L += thr + [f"{ind}_n_{s} = _i_{s}" for s in a.states]
        L += [f"{ind}_spk = _ZERO", f"{ind}if _nr > _ZERO and {cond}:", f"{ind}    _spk = _ONE"]
        if 0 in delays:
            inner = ind + "    " + ("    " if len(delays) > 1 else "")
            if len(delays) > 1:
                L.append(f"{ind}    if reset_delay == 0:")
            L += self._mode_switch(inner, lambda r, i: self._same_step_reset(pool, r, i, rename))
            if self._counter:
                L.append(f"{inner}_ref = {self._ref_start()}")
        return L

    @staticmethod
    def _same_step_reset(pool: _Consts, resets, ind: str, rename: dict[str, str]) -> list[str]:
        """The reset statements in order on the integrated state (each reads the values assigned before it)."""
        cur, out = dict(rename), []
        for target, rop, e in resets:
            val = e.code(pool, cur)
            out.append(f"{ind}_n_{target} = {val if rop == '=' else f'_n_{target} {rop[0]} {val}'}")
            cur[target] = f"_n_{target}"
        return out

    def _clamp(self, pool: _Consts, ind: str) -> list[str]:
        if not (self._a.clamp and self._has_refractory()):
            return []
        start = self._start_names()
        return [f"{ind}if _nr <= _ZERO:"] + [f"{ind}    _i_{t} = {e.code(pool, start)}" for t, _, e in self._a.clamp]

    def _advance(self, pool: _Consts, resets, delay: int, ind: str) -> list[str]:
        """Lines from the state at the start of the step to ``_i_<s>``, the integrated state the threshold is
        tested on: the previous step's reset (``delay``), refractoriness, the input, the update, the reset
        increments of a delayed reset and the refractory clamp."""
        a = self._a
        L = self._delayed_reset(pool, resets, ind) if delay else []
        L += self._refractory_start(pool, ind)
        if a.input_is_state:
            L.append(f"{ind}{a.input_name} = {a.input_name} + _x")
        L += self._integrate(pool, ind)
        if delay and any(op != "=" for _, op, _ in resets):
            L.append(f"{ind}if _fp > _ZERO:")
            rename = self._start_names()
            for target, op, e in resets:
                if op != "=":
                    L.append(f"{ind}    _i_{target} = _i_{target} {op[0]} {e.code(pool, rename)}")
        return L + self._clamp(pool, ind)

    def _start_names(self) -> dict[str, str]:
        """Code names in reset and clamp statements read at the start of a step: the state (after a delayed
        reset's assignments), the parameters, and subexpressions of the state the previous step ended in."""
        a = self._a
        rename = {s: s for s in a.states}
        rename.update({p: p for p in a.params})
        rename.update({n: f"_p_{n}" for n in a.subs})
        return rename

    def _delayed_reset(self, pool: _Consts, resets, ind: str) -> list[str]:
        """The previous step's reset (snnTorch's timing): the threshold condition tested on the state the last
        step ended in; assignments set the state this step starts from, increments (``-=``, ``+=`` ...) are
        added after the update, as the step's input is (so ``v -= v_th`` gives ``v = beta v + x - v_th``)."""
        L, cond, _ = self._threshold_code(pool, ind, {s: s for s in self._a.states}, "_p_", reads_resets=resets)
        L.append(f"{ind}_fp = _ZERO")
        L.append(f"{ind}if {cond}:")
        L.append(f"{ind}    _fp = _ONE")
        rename = self._start_names()
        for target, op, e in resets:
            if op == "=":
                L.append(f"{ind}    {target} = {e.code(pool, rename)}")
        if self._counter:
            L.append(f"{ind}    _ref = {self._ref_start()}")
        return L

    def _ref_start(self) -> str:
        """The counter value set by a spike: Brian2 counts the spike step itself, NEST (and the built-ins) not."""
        return f"max(_t_ref - {'_ONE' if self.refractory_timing == 'brian2' else '_ZERO'}, _ZERO)"

    def _refractory_start(self, pool: _Consts, ind: str = "    ") -> list[str]:
        a = self._a
        if a.ref_cond is not None:
            lhs, op, rhs = a.ref_cond
            rename = {s: s for s in a.states}
            rename.update({p: p for p in a.params})
            return [f"{ind}_nr = _ZERO if {lhs.code(pool, rename)} {op} {rhs.code(pool, rename)} else _ONE"]
        if self._counter:
            return [f"{ind}_nr = _ONE if _ref <= _ZERO else _ZERO", f"{ind}if _ref > _ZERO:",
                    f"{ind}    _ref = _ref - _ONE"]
        return [f"{ind}_nr = _ONE"]


    def _integrate(self, pool: _Consts, ind: str) -> list[str]:
        """Lines computing ``_i_<s>``, the integrated state, from the state at the start of the step."""
        a = self._a
        st = a.states
        call_rest = ", ".join(["_x"] + self._direct_params() + ["_nr"])
        L = []
        if self.method == "discrete":  # each update printed as written, all reading the state at the step start
            rename = self._env_code(pool, L, ind)
            for s in st:
                f = a.exprs[s].code(pool, rename)
                if s in a.frozen:
                    L += [f"{ind}if _nr > _ZERO:", f"{ind}    _i_{s} = {f}", f"{ind}else:", f"{ind}    _i_{s} = {s}"]
                else:
                    L.append(f"{ind}_i_{s} = {f}")
        elif self.method == "euler":
            L += self._rhs_call(ind, "_k", st, call_rest)
            L += [f"{ind}_i_{s} = {s} + _dt * _k_{s}" for s in st]
        elif self.method == "rk2":
            L += self._rhs_call(ind, "_k1", st, call_rest)
            L += [f"{ind}_m_{s} = {s} + _k1_{s} * _dt / np.float32(2.0)" for s in st]
            L += self._rhs_call(ind, "_k2", [f"_m_{s}" for s in st], call_rest, names=st)
            L += [f"{ind}_i_{s} = {s} + _dt * _k2_{s}" for s in st]
        elif self.method == "rk4":
            half = "np.float32(0.5)"
            L += self._rhs_call(ind, "_k1", st, call_rest)
            L += [f"{ind}_a_{s} = {s} + _dt * _k1_{s} * {half}" for s in st]
            L += self._rhs_call(ind, "_k2", [f"_a_{s}" for s in st], call_rest, names=st)
            L += [f"{ind}_b_{s} = {s} + _dt * _k2_{s} * {half}" for s in st]
            L += self._rhs_call(ind, "_k3", [f"_b_{s}" for s in st], call_rest, names=st)
            L += [f"{ind}_c_{s} = {s} + _dt * _k3_{s}" for s in st]
            L += self._rhs_call(ind, "_k4", [f"_c_{s}" for s in st], call_rest, names=st)
            L += [f"{ind}_i_{s} = {s} + _dt * (_k1_{s} + np.float32(2.0) * _k2_{s} + np.float32(2.0) * _k3_{s} "
                  f"+ _k4_{s}) / np.float32(6.0)" for s in st]
        elif self.method == "exponential_euler":
            S, P, u, nr = self._symbols()
            names = {**{S[s]: s for s in st}, **{P[p]: p for p in a.params}, u: "_x", nr: "_nr"}
            pr = _SympyPrinter(pool, names)
            rhs = self._rhs_sym(S, P, u, nr, apply_frozen=False)
            for s in st:
                f = rhs[s]
                A = sp.diff(f, S[s])
                if S[s] in A.free_symbols:
                    raise EquationError(f"method 'exponential_euler' cannot integrate {a.exprs[s].where}: it is "
                                        f"not linear in {s!r} itself; use 'euler', 'rk2' or 'rk4'")
                B = sp.simplify(f - A * S[s])
                frozen = s in a.frozen
                pre = f"{ind}if _nr > _ZERO:\n{ind}    " if frozen else ind
                inner = ind + ("    " if frozen else "")
                if A == 0:
                    L.append(f"{pre}_i_{s} = {s} + _dt * {pr(B)}")
                else:
                    L.append(f"{pre}_A_{s} = {pr(A)}")
                    L.append(f"{inner}_BA_{s} = {pr(B)} / _A_{s}")
                    L.append(f"{inner}_i_{s} = -_BA_{s} + ({s} + _BA_{s}) * np.exp(_A_{s} * _dt)")
                if frozen:
                    L.append(f"{ind}else:\n{ind}    _i_{s} = {s}")
        else:  # exact
            n = len(st)

            # increment form x + ((P - 1) x + q + r u): a propagator entry near 1 rounded to float32 would bias
            # the fixed point by its rounding error / (1 - P) (1e-4 mV for tau = 10 ms at dt = 0.1 ms)
            def rows(E, q, r):
                return [f"{ind}    _i_{s} = {s} + (" + " + ".join([f"{E}_{i}_{j} * {st[j]}" for j in range(n)]
                                                                 + [f"{q}_{i}", f"{r}_{i} * _x"]) + ")"
                        for i, s in enumerate(st)]

            if self._needs_ref_system():
                L.append(f"{ind}if _nr > _ZERO:")
                L += rows("_E", "_q", "_r")
                L.append(f"{ind}else:")
                L += rows("_Er", "_qr", "_rr")
            else:
                L += [x[4:] if x.startswith(ind + "    ") else x for x in rows("_E", "_q", "_r")]
        return L

    @staticmethod
    def _rhs_call(ind, prefix, args, rest, names=None):
        names = names or args
        outs = ", ".join(f"{prefix}_{s}" for s in names)
        return [f"{ind}{outs}{',' if len(names) == 1 else ''} = _rhs({', '.join(args)}, {rest})"]

    def _threshold_code(self, pool: _Consts, ind: str, states: dict[str, str] | None = None, tag: str = "_t_",
                        reads_resets=None) -> tuple[list[str], str, dict[str, str]]:
        """Lines evaluating the subexpressions the threshold and reset read (at the integrated state, or at
        ``states``), the threshold condition as written, and the code names in force (shared by the forward and
        backward step)."""
        a = self._a
        L = []
        rename = dict(states) if states is not None else {s: f"_i_{s}" for s in a.states}
        if states is None:  # old(x): x as the update read it (the step's own variable, not overwritten)
            rename.update({f"{_OLD}({s})": s for s in a.states})
        rename.update({p: p for p in a.params})
        rename["not_refractory"] = "_nr"
        if a.input_name and not a.input_is_state:
            rename[a.input_name] = "_x"
        used = set(a.thr[0].names | a.thr[2].names)
        for _, r in ([(None, reads_resets)] if reads_resets is not None else a.modes):
            for _, _, e in r:
                used |= e.names
        for name in reversed(a.subs):  # subexpressions the threshold and reset read, and what they read
            if name in used:
                used |= a.exprs[name].names
        for name in a.subs:
            if name in used:
                L.append(f"{ind}{tag}{name} = {a.exprs[name].code(pool, rename)}")
                rename[name] = f"{tag}{name}"
        lhs, op, rhs = a.thr
        return L, f"{lhs.code(pool, rename)} {op} {rhs.code(pool, rename)}", rename

    def _backward_stub(self) -> str:
        return (f"\n\ndef make_backward(surrogate):\n"
                f"    from neuro.models.equations import _backward_for\n"
                f"    return _backward_for({self._key!r}, surrogate)\n")

    # -- backward: symbolic vector-Jacobian product of one step ----------------------------------------------
    def _backward_source(self) -> str:
        a = self._a
        pool = _Consts()
        S, P, u, nr = self._symbols()
        kstate, kparams = self._kernel_state(), self._kernel_params()
        coef = {c: sp.Symbol(c, real=True) for c in self._coef_names()}
        delayed = any(d for _, _, d in self._variants())
        # a delayed reset overwrites the state variables: derivatives read copies of the state that came in
        names = {**{S[s]: f"_o_{s}" if delayed else s for s in a.states}, **{P[p]: p for p in a.params},
                 **{v: k for k, v in coef.items()}, u: "_x", nr: "_nr", sp.Symbol("_dt", real=True): "_dt",
                 sp.Symbol("_fp", real=True): "_fp"}
        args = ", ".join(kstate + ["_x"] + kparams + list(self.options) + ["dt", "slope", "g_spike"]
                         + [f"_gn_{s}" for s in kstate])
        body = ["    _dt = np.float32(dt)"] + ([f"    _o_{s} = {s}" for s in a.states] if delayed else [])
        tags = iter(range(len(self._variants())))  # distinct names for each variant's common subexpressions
        self._branches(body, lambda resets, d, ind: self._backward_variant(pool, names, coef, resets, d, ind, tags))
        from neuro.kernels.codegen import importable_name

        step_module = importable_name(self.dynamics.step)[0]
        rhs_import = [f"from {step_module} import _rhs"] if self.method in ("euler", "rk2", "rk4") else []
        src = ["import numba", "import numpy as np", *rhs_import, "", "_ZERO = np.float32(0.0)",
               "_ONE = np.float32(1.0)", pool.source(), _HELPERS, "",
               "def make_backward(surrogate):", '    @numba.njit(inline="always")', f"    def backward({args}):"]
        src += ["    " + ln if ln else ln for ln in "\n".join(body).split("\n")]
        src += ["    return backward", ""]
        return "\n".join(src)

    def _backward_variant(self, pool: _Consts, names: dict, coef: dict, resets, delay: int, ind: str,
                          tags) -> list[str]:
        """The backward step of one variant (reset statements, reset timing): the forward lines up to the
        integrated state, then the vector-Jacobian product of the one-step map, derived by sympy."""
        a = self._a
        S, P, u, nr = self._symbols()
        X = [S[s] for s in a.states]
        fp = sp.Symbol("_fp", real=True)
        names = dict(names)
        # the state the step starts from and the increments of a delayed reset (the previous spike, fp, is a
        # constant: no gradient flows through the reset's timing, as in snnTorch)
        start = dict(S)
        old_env = dict(P)
        old_env.update(S)
        old_env["not_refractory"] = sp.Integer(1)
        if a.input_name and not a.input_is_state:
            old_env[a.input_name] = u
        for name in a.subs:
            old_env[name] = a.exprs[name].sym(old_env)
        start_env = dict(old_env)
        if delay:
            for target, rop, e in resets:
                if rop == "=":
                    start[target] = fp * e.sym(start_env) + (1 - fp) * start[target]
                    start_env[target] = start[target]
        phis = {}
        for nr_val in ((1, 0) if self._has_refractory() else (1,)):
            phi = self._phi(S, P, u, sp.Integer(nr_val), coef)
            if delay:
                phi = {s: e.xreplace({S[t]: start[t] for t in a.states}) for s, e in phi.items()}
                for target, rop, e in resets:
                    if rop != "=":
                        val = e.sym(start_env)
                        after = {"+": phi[target] + val, "-": phi[target] - val, "*": phi[target] * val,
                                 "/": phi[target] / val}[rop[0]]
                        phi[target] = phi[target] + fp * (after - phi[target])
            if nr_val == 0:
                for target, _, e in a.clamp:
                    phi[target] = e.sym(start_env)
            phis[nr_val] = phi
        Xi = {s: sp.Symbol(f"_i_{s}", real=True) for s in a.states}
        names.update({v: f"_i_{k}" for k, v in Xi.items()})
        # threshold U and reset as functions of the integrated state
        env = dict(P)
        env.update(Xi)
        # old(x): x as the update reads it (with an input into x, after its jump)
        env.update({f"{_OLD}({s})": S[s] + u if a.input_is_state and s == a.input_name else S[s] for s in a.states})
        env["not_refractory"] = sp.Integer(1)
        if a.input_name and not a.input_is_state:
            env[a.input_name] = u
        for name in a.subs:
            env[name] = a.exprs[name].sym(env)
        lhs, op, rhs = a.thr
        U = lhs.sym(env) - rhs.sym(env) if op in (">", ">=") else rhs.sym(env) - lhs.sym(env)
        spk, sg = sp.Symbol("_spk", real=True), sp.Symbol("_sg", real=True)
        names.update({spk: "_spk", sg: "_sg"})
        new = dict(Xi)
        cur_env = dict(env)
        for target, rop, e in ([] if delay else resets):
            val = e.sym(cur_env)
            assigned = val if rop == "=" else {"+": new[target] + val, "-": new[target] - val,
                                                "*": new[target] * val, "/": new[target] / val}[rop[0]]
            new[target] = new[target] + spk * (assigned - new[target])
            cur_env[target] = new[target]
        gS = sp.Symbol("_g_spike", real=True)
        gN = {s: sp.Symbol(f"_gn_{s}", real=True) for s in a.states}
        names.update({gS: "g_spike"})
        names.update({v: f"_gn_{k}" for k, v in gN.items()})
        # L = gS * S + sum gN . new, with dS/dz = sg * dU/dz (z in integrated state and params)
        Lsc = sum(gN[s] * new[s] for s in a.states)
        dL_dS = sp.diff(Lsc, spk) if not self.detach_reset else sp.Integer(0)
        spike_weight = (gS + dL_dS) * sg
        g_int = {s: sp.diff(Lsc, Xi[s]) + spike_weight * sp.diff(U, Xi[s]) for s in a.states}
        direct = {p: sp.diff(Lsc, P[p]) + spike_weight * sp.diff(U, P[p]) for p in a.params}
        # the threshold and reset reading old(x) depend on the state the step starts from directly, besides through
        # the integrated state (zero without old())
        direct_old = [sp.diff(Lsc, x) + spike_weight * sp.diff(U, x) for x in X]
        kparams = self._kernel_params()
        body = self._advance(pool, resets, delay, ind)
        pr = _SympyPrinter(pool, names)
        ret_names = [f"_go_{s}" for s in a.states] + (["_ZERO"] if self._counter else []) + ["_gx"] + \
            [f"_gp_{k}" for k in kparams]
        grad_params = [k for k in kparams if k != "_t_ref"]
        tag = next(tags)
        for branch, nr_val in (("if _nr > _ZERO:", 1), ("else:", 0)):
            if nr_val not in phis:
                continue
            ind2 = ind + "    " if len(phis) > 1 else ind
            if len(phis) > 1:
                body.append(ind + branch)
            phi = phis[nr_val]
            gi = g_int if nr_val == 1 else {s: gN[s] for s in a.states}
            dparams = direct if nr_val == 1 else {}
            if nr_val == 1:
                body.append(f"{ind2}_u = {pr(U)}")
                thr_lines, cond, _ = self._threshold_code(pool, ind2)
                body += thr_lines
                body.append(f"{ind2}_spk = _ONE if {cond} else _ZERO")
                body.append(f"{ind2}_sg = surrogate(_u, slope)")
            gi_syms = {s: sp.Symbol(f"_gi_{s}", real=True) for s in a.states}
            names.update({v: f"_gi_{k}" for k, v in gi_syms.items()})
            exprs = [gi[s] for s in a.states]
            # chain through the integration map
            outs_old = [sum(gi_syms[t] * sp.diff(phi[t], x) for t in a.states) + (d if nr_val == 1 else 0)
                        for x, d in zip(X, direct_old, strict=True)]
            out_x = sum(gi_syms[t] * sp.diff(phi[t], u) for t in a.states)
            if a.input_is_state:
                out_x = outs_old[a.states.index(a.input_name)]
            out_p = []
            for k in grad_params:
                sym = P.get(k) if k in P else coef[k]
                out_p.append(sum(gi_syms[t] * sp.diff(phi[t], sym) for t in a.states)
                             + (dparams.get(k, sp.Integer(0)) if k in P else sp.Integer(0)))
            reps, reduced = sp.cse(exprs, symbols=sp.numbered_symbols(f"_c{tag}_{nr_val}a"))
            for sym, e in reps:
                names[sym] = str(sym)
                body.append(f"{ind2}{sym} = {pr(e)}")
            for s, e in zip(a.states, reduced, strict=True):
                body.append(f"{ind2}_gi_{s} = {pr(e)}")
            reps, reduced = sp.cse(outs_old + [out_x] + out_p, symbols=sp.numbered_symbols(f"_c{tag}_{nr_val}b"))
            for sym, e in reps:
                names[sym] = str(sym)
                body.append(f"{ind2}{sym} = {pr(e)}")
            outs = [f"_go_{s}" for s in a.states] + ["_gx"] + [f"_gp_{k}" for k in grad_params]
            for name, e in zip(outs, reduced, strict=True):
                body.append(f"{ind2}{name} = {pr(e)}")
            if "_t_ref" in kparams:
                body.append(f"{ind2}_gp__t_ref = _ZERO")
        body.append(f"{ind}return {', '.join(ret_names)}")
        return body

    def _phi(self, S, P, u, nr, coef) -> dict[str, sp.Expr]:
        """The integrated state as sympy expressions of the old state (the method's one-step map)."""
        a = self._a
        st = a.states
        X0 = dict(S)
        if a.input_is_state:
            X0[a.input_name] = S[a.input_name] + u
        dt = sp.Symbol("_dt", real=True)

        def f(vals):
            return self._rhs_sym(S, P, u, nr, {s: vals[s] for s in st})

        if self.method == "discrete":
            new = self._rhs_sym(S, P, u, nr, X0, apply_frozen=False)
            return {s: new[s] if s not in a.frozen or nr == 1 else X0[s] for s in st}
        if self.method == "euler":
            k = f(X0)
            return {s: X0[s] + dt * k[s] for s in st}
        if self.method == "rk2":
            k1 = f(X0)
            k2 = f({s: X0[s] + k1[s] * dt / 2 for s in st})
            return {s: X0[s] + dt * k2[s] for s in st}
        if self.method == "rk4":
            k1 = f(X0)
            k2 = f({s: X0[s] + dt * k1[s] / 2 for s in st})
            k3 = f({s: X0[s] + dt * k2[s] / 2 for s in st})
            k4 = f({s: X0[s] + dt * k3[s] for s in st})
            return {s: X0[s] + dt * (k1[s] + 2 * k2[s] + 2 * k3[s] + k4[s]) / 6 for s in st}
        if self.method == "exponential_euler":
            rhs = f(X0)
            out = {}
            for s in st:
                A = sp.diff(rhs[s], S[s])
                B = sp.simplify(rhs[s] - A * S[s])
                out[s] = X0[s] + dt * B if A == 0 else -B / A + (X0[s] + B / A) * sp.exp(A * dt)
            return out
        n = len(st)
        pre = ("_E", "_q", "_r") if nr == 1 or not self._needs_ref_system() else ("_Er", "_qr", "_rr")
        return {s: X0[s] + (sum(coef[f"{pre[0]}_{i}_{j}"] * X0[st[j]] for j in range(n)) + coef[f"{pre[1]}_{i}"]
                            + coef[f"{pre[2]}_{i}"] * u) for i, s in enumerate(st)}

    # -- dynamics ----------------------------------------------------------------------------------------------
    def _build_dynamics(self) -> Dynamics:
        from neuro.kernels.codegen import load

        key_text = repr((self.equations, self.threshold, self.reset_text, self.refractory if isinstance(
            self.refractory, str) else bool(self.t_refractory), self.method, self.input, self.refractory_timing,
            self.detach_reset, self._a.params, self.refractory_clamp, self.options,
            self.reset_modes if "reset_mode" in self.options else None,
            None if "reset_delay" in self.options else self.reset_delay))
        self._key = hashlib.sha1(key_text.encode()).hexdigest()[:16]
        _REGISTRY[self._key] = self
        dyn = _DYNAMICS.get(self._key)
        if dyn is None:  # one Dynamics per structure: every instance of a model shares its compiled kernels
            module = load(f"eqmodel_{self._key}", self._source())
            membrane = self._a.thr[0].text.strip()
            state, params = tuple(self._kernel_state()), tuple(self._kernel_params())
            # the refractory counter: set to max(_t_ref - 0 or 1, 0) at a spike, counted down while positive,
            # and its backward returns zero, so with _t_ref = 0 from a zero start it stays 0
            inert = ((state.index("_ref"), params.index("_t_ref")),) if self._counter else ()
            dyn = Dynamics(name=f"eq_{self._key}", state=state, params=params, options=self.options,
                           step=module.step, make_backward=module.make_backward,
                           membrane=membrane if membrane in self._a.states else self._a.states[0], inert=inert)
            _DYNAMICS[self._key] = dyn
        return dyn

    # -- NeuronModel interface ---------------------------------------------------------------------------------
    @property
    def state_names(self) -> tuple[str, ...]:
        return tuple(self._a.states)

    def refractory_ms(self) -> np.ndarray:
        """The refractory time [ms] of each neuron (length 1 or N)."""
        if self._ref_time is None:
            return np.asarray([self.t_refractory], np.float64)
        env = {p: sp.Symbol(p, real=True) for p in self._a.params}
        expr = self._ref_time.sym(env)
        args = sorted(expr.free_symbols, key=str)
        value = sp.lambdify(args, expr, modules="numpy")(*[self.parameters[str(a)] for a in args])
        t = np.asarray(value, np.float64).reshape(-1)
        if not np.all(np.isfinite(t)) or np.any(t < 0):
            raise ValueError(f"refractory {self.refractory!r} must be a time >= 0 ms for every neuron, got {t}")
        return t

    def kernel_params(self, dt: float) -> dict[str, np.ndarray]:
        dt = self._dt(dt)
        coefs = self.coefficients(self.parameters, dt)
        out = {k: coefs[k] for k in self._direct_params()}
        out.update({k: coefs[k] for k in self._coef_names()})
        if self._counter:
            out["_t_ref"] = steps(self.refractory_ms(), dt)
        return self._pack(**out)

    def initial_state(self, n: int) -> dict[str, np.ndarray]:
        vals = {s: self.initial.get(s, 0.0) for s in self._a.states}
        if self._counter:
            vals["_ref"] = 0.0
        return self._state(n, **vals)

    def __repr__(self) -> str:
        return (f"Equations({self.equations.strip()!r}, threshold={self.threshold!r}, reset={self.reset_text!r}, "
                f"refractory={self.refractory!r}, method={self.method!r}, input={self.input!r})")

    def nir_node(self, parameters: dict | None = None, time_scale: float = 1.0, shape: tuple | None = None):
        """The NIR node these equations are, with ``parameters`` (default: the model's own values).

        NIR has nodes for a few linear models; the equations must be one of them exactly (method aside: NIR is
        continuous time)::

            IF       dv/dt = r I / tau_unit       threshold v > v_th, reset v = v_reset
            LIF      dv/dt = (v_leak - v + r I) / tau
            CubaLIF  dI_s/dt = (-I_s + w_in I) / tau_syn,   dv/dt = (v_leak - v + r I_s) / tau_mem

        with a strict threshold on ``v`` and one reset ``v = v_reset``, no refractory period. Times are multiplied
        by ``time_scale`` (NIR time units per ms; IF's ``r`` is a rate, so it is divided by it). Every field has
        ``shape`` (default: one value per neuron, the longest parameter). Anything else
        gets an :class:`EquationError` that names what has no NIR form.
        """
        import nir

        a = self._a
        values = {k: np.asarray(v, np.float64) for k, v in (parameters or self.parameters).items()}
        why = self._nir_mismatch()
        if why:
            raise EquationError(f"these equations have no NIR node: {why} (NIR has LIF, CubaLIF and IF, each "
                                "with a strict threshold 'v > v_th', the reset 'v = v_reset' and no refractory "
                                "period)")
        A, c, B = (a.linear["_nir_system"][k] for k in ("A", "c", "B"))  # derived by _nir_mismatch
        args = [sp.Symbol(p, real=True) for p in a.params]

        def ev(expr) -> np.ndarray:
            f = sp.lambdify(args, expr, modules="numpy")
            return np.asarray(f(*[values[p] for p in a.params]), np.float64)

        if shape is None:
            shape = (max([v.size for v in values.values()] + [1]),)
            values = {k: v.reshape(-1) for k, v in values.items()}

        def full(x) -> np.ndarray:
            return np.broadcast_to(np.asarray(x, np.float64), tuple(shape)).astype(np.float32)

        lhs, _, rhs = a.thr
        v_th = full(ev(rhs.sym({p: sp.Symbol(p, real=True) for p in a.params})))
        v_reset = full(ev(a.resets[0][2].sym({p: sp.Symbol(p, real=True) for p in a.params})))
        iv = a.states.index("v")
        if len(a.states) == 1:
            a_vv, b_v, c_v = ev(A[0, 0]), ev(B[0]), ev(c[0])
            if np.all(a_vv == 0):
                return nir.IF(r=full(b_v / time_scale), v_threshold=v_th, v_reset=v_reset)
            tau = -1.0 / a_vv
            return nir.LIF(tau=full(tau * time_scale), r=full(b_v * tau), v_leak=full(c_v * tau), v_threshold=v_th,
                           v_reset=v_reset)
        isyn = 1 - iv
        tau_syn, tau_mem = -1.0 / ev(A[isyn, isyn]), -1.0 / ev(A[iv, iv])
        return nir.CubaLIF(tau_syn=full(tau_syn * time_scale), tau_mem=full(tau_mem * time_scale),
                           r=full(ev(A[iv, isyn]) * tau_mem), v_leak=full(ev(c[iv]) * tau_mem),
                           v_threshold=v_th, v_reset=v_reset, w_in=full(ev(B[isyn]) * tau_syn))

    def _nir_system(self) -> None:
        """dX/dt = A X + c + B I for the NIR check (any method: NIR is continuous time)."""
        if "A" not in self._a.linear:
            self._exact_system()
        self._a.linear["_nir_system"] = dict(self._a.linear)

    def _nir_mismatch(self) -> str:
        """Why these equations are not a NIR node, or "" when they are one."""
        a = self._a
        if a.states.count("v") != 1 or len(a.states) > 2:
            return f"state variables {', '.join(a.states)} (NIR neurons have v, and a synaptic current for CubaLIF)"
        if a.discrete:
            return "update equations (NIR neurons are continuous-time differential equations)"
        if self._has_refractory():
            return "a refractory period"
        if self.options or self.reset_delay:
            return "a reset at the next step or a reset mode chosen at run time"
        lhs, op, rhs = a.thr
        if lhs.text.strip() != "v" or op != ">" or rhs.names & (set(a.states) | set(a.subs)):
            return f"the threshold {self.threshold!r} (NIR tests v > v_threshold, strictly)"
        if len(a.resets) != 1 or a.resets[0][0] != "v" or a.resets[0][1] != "=" or \
                a.resets[0][2].names & (set(a.states) | set(a.subs)):
            return f"the reset {self.reset_text!r} (NIR resets v = v_reset and nothing else)"
        if a.input_is_state:
            return "an input added to a state variable"
        try:
            self._nir_system()
        except EquationError:
            return "nonlinear equations"
        A, c, B = (a.linear["_nir_system"][k] for k in ("A", "c", "B"))
        iv = a.states.index("v")
        if len(a.states) == 1:
            if A[0, 0] == 0 and c[0] != 0:
                return "a constant drive in an integrator (NIR's IF has none)"
            return ""
        isyn = 1 - iv
        syn = a.states[isyn]
        if A[isyn, iv] != 0 or c[isyn] != 0:
            return f"{syn!r} depends on v or has a constant term (NIR CubaLIF: d{syn}/dt = (-{syn} + w_in I)/tau_syn)"
        if B[iv] != 0:
            return "the input reaching v directly (NIR CubaLIF feeds it through the synaptic current)"
        if A[iv, isyn] == 0:
            return f"v does not depend on {syn!r}"
        return ""


_REGISTRY: dict[str, Equations] = {}
_DYNAMICS: dict[str, Dynamics] = {}


def _backward_for(key: str, surrogate):
    """The backward step of a registered model (its source is generated on first use: the sympy work is
    paid only by models that are trained)."""
    from neuro.kernels.codegen import load

    model = _REGISTRY.get(key)
    if model is None:
        raise RuntimeError(f"model {key} is not defined in this process; build its Equations first")
    module = load(f"eqback_{key}", model._backward_source())
    return module.make_backward(surrogate)
