"""Write a :class:`neuro.sim.Network` as a runnable native NEST (PyNEST 3.x) script or PyNN script.

``Network.to_nest(path)`` / ``Network.to_pynn(path)`` write ``path`` (the script) and ``path.with_suffix(".npz")``
(its arrays: explicit connection lists, per-neuron parameters, initial values, spike times). The network on
NEST is the same network: every synapse is listed (``nest.Connect`` with arrays of node ids;
``FromListConnector`` in PyNN), no connector is re-drawn. Run it with ``python net.py [--duration MS]
[--threads N] [--out PREFIX]``, or ``mpirun -n K python net.py``: each rank writes the events of its own
neurons to ``PREFIX.rank<r>.npz``; :func:`read_results` gathers the ranks.

Models (each mapped to the NEST/PyNN model of the same equations; anything else is refused by name):

=========================================== ============================ ===================== =================
neuro.sim population                        NEST                         PyNN                  weights on NEST
=========================================== ============================ ===================== =================
LIF, exponential current receptors          ``iaf_psc_exp``              ``IF_curr_exp``       w [nA] x 1000 pA
LIF, delta receptors (``tau_syn=0``)        ``iaf_psc_delta``            ``IF_curr_delta``     w [mV]
LIF, conductance receptors (``e_rev``)      ``iaf_cond_exp``             ``IF_cond_exp``       w [uS] x 1000 nS
IF (no leak), delta receptors               ``iaf_psc_delta`` (tau 1e9)  ``IF_curr_delta``     w [mV]
CubaLIF, delta receptors                    ``iaf_psc_exp``              ``IF_curr_exp``       w w_in x 1000 pA
Izhikevich, delta receptors                 ``izhikevich``               ``Izhikevich``        w dt [mV]
AdEx, delta / exp / conductance receptors   ``aeif_psc_delta/_exp``,     ``EIF_cond_exp_isfa_  w dt / cm [mV],
(no receptors: ``aeif_cond_exp``)           ``aeif_cond_exp``            ista`` (cond only)    x1000 pA / nS
=========================================== ============================ ===================== =================

At most two receptors a population (NEST's ``ex``/``in`` channels, chosen by the weight's sign): one time
constant for both signs, or two whose weights have one sign each. ALIF, the reset rules ``"subtract"`` and
``"none"``, ``reset_delay=True`` (snnTorch's timing), LIF with ``integration="euler"`` or ``"discrete"`` feeding
exponential synapses, CubaLIF with an integration other than ``"exact"``, and delta synapses mixed with exponential
ones are refused with a ValueError naming the population. LIF membranes with ``integration="euler"`` or
``"discrete"`` (:meth:`LIF.discrete`) map exactly: ``tau_m' = -dt / ln(decay)`` and ``C_m`` chosen so that the input
gain per step is the same (decay and gain from :meth:`LIF.step_factors`).

Time (checked on NEST 3.10 in ``tests/test_nest.py``):

* neuro.sim stamps a spike with the start of the step that produced it (``s dt``), NEST with its end
  (``(s + 1) dt``); :func:`read_results` returns neuro.sim's stamps (NEST's minus ``dt``). State samples
  likewise. Spike-time sources are given to ``spike_generator`` at ``t + dt``.
* A delta synapse with delay ``d`` steps makes the membrane jump in step ``s + d`` on both: NEST delay
  ``d dt``. A current (or conductance) arriving in step ``s + d`` acts within that step in neuro.sim but from
  the next step in NEST, so NEST gets ``(d - 1) dt``; NEST's minimum delay is ``dt``, so a one-step delay onto
  an exponential synapse lags neuro.sim by one step on NEST (a warning says so).
* Injected currents: the constant part is NEST's ``I_e`` (acts in the same step, as here); a series goes
  through ``step_current_generator`` (amplitude times one step early, delay ``dt``); its first two steps
  cannot reach NEST through a generator and are set through ``I_e`` in two one-step ``Simulate`` calls.
* Thresholds: neuro.sim fires on ``v > v_thresh``, NEST on ``V_m >= V_th`` (equal only on exact ties);
  NEST computes in float64, neuro.sim in float32, so a neuron that grazes threshold can fire one step apart.
* Poisson sources become ``poisson_generator`` -> ``parrot_neuron`` (one train per source sent to all its
  targets; the parrot adds one step); ``poisson_drive`` a ``poisson_generator`` into the population (one
  independent train a neuron). Different random numbers: only rates compare. ``seed`` -> ``rng_seed``.
* AdEx and conductance synapses: NEST integrates them with adaptive Runge-Kutta (GSL), neuro.sim with the
  steps in :mod:`neuro.models.adex` / a conductance held over a step: same equations, spikes agree to O(dt).
* STDP: additive (``w_min = 0``) and multiplicative (``w_min = 0``) pair rules map to NEST's
  ``stdp_synapse`` (``mu_plus = mu_minus = 0`` or ``1``, ``lambda = a_plus / w_max`` or ``a_plus``,
  ``alpha = a_minus / a_plus``, ``tau_minus`` on the target neurons) and PyNN's ``SpikePairRule`` with
  ``Additive``/``MultiplicativeWeightDependence``; NEST's traces use exact spike times and dendritic
  delays (the synaptic delay counts as dendritic), and NEST applies a synapse's potentiation only when its
  next presynaptic spike arrives: weights read after the run lack the pairs of postsynaptic spikes after
  each synapse's last presynaptic spike. ``w_min != 0`` is refused (NEST clips at 0), and so is STDP onto
  delta-synapse cells in PyNN (pyNN.nest scales STDP's ``w_max`` by 1000 but not their mV weights).
  Native NEST scripts save the plastic weights (:func:`read_results` ``"weights"``), PyNN scripts too.

Example:
    >>> import tempfile, pathlib, neuro
    >>> net = neuro.sim.Network(dt=0.1, seed=1)
    >>> pop = net.population(3, neuro.models.LIF(tau_m=20.0, cm=1.0, v_rest=-65.0, v_thresh=-50.0))
    >>> pop.inject(1.0)
    >>> _ = net.spike_monitor(pop)
    >>> path = net.to_nest(pathlib.Path(tempfile.mkdtemp()) / "net.py", duration_ms=100.0)
    >>> "iaf_psc_delta" in path.read_text() or "iaf_psc_exp" in path.read_text()
    True
"""

from __future__ import annotations

import glob
import json
import math
import os
import warnings
from pathlib import Path

import numpy as np

from neuro.models import IF, LIF, AdEx, CubaLIF, Izhikevich, coefficients
from neuro.models._base import RESET_TO_VALUE

_TAU_INF = 1e9  # ms: a membrane without leak (IF) on NEST


def _arr(x, n):
    return np.broadcast_to(np.asarray(x, np.float64).reshape(-1), (n,)).copy()


def _scalar_or_list(a):
    a = np.asarray(a, np.float64).reshape(-1)
    return float(a[0]) if np.all(a == a[0]) else a.tolist()


class _Plan:
    """The network in NEST's terms (NEST names and units: ms, mV, pF, pA, nS), plus the arrays."""

    def __init__(self, net, duration_ms: float):
        from neuro.sim.network import PoissonSource, SpikeMonitor, SpikeTimeSource, StateMonitor

        if net.t_steps:
            raise ValueError(f"the network has already run for {net.t:g} ms; call net.reset() before exporting "
                             "(the scripts start from the initial state)")
        if not (isinstance(duration_ms, int | float) and math.isfinite(duration_ms) and duration_ms > 0):
            raise ValueError(f"duration_ms must be a finite number > 0, got {duration_ms!r}")
        self.net, self.dt = net, net.dt
        self.arrays: dict[str, np.ndarray] = {}
        self.lagged: list[str] = []
        self.spec = {"dt": net.dt, "seed": int(net.seed) % (2 ** 31 - 2) + 1, "duration_ms": float(duration_ms),
                     "populations": [], "sources": [], "projections": [], "spike_monitors": [],
                     "state_monitors": [], "drives": [], "tau_minus": {}, "parrot_sources": []}
        self.pop_spec = {}
        for k, pop in enumerate(net.populations):
            self.pop_spec[id(pop)] = self._population(k, pop)
        for k, src in enumerate(net.sources):
            key = f"src{k}"
            if isinstance(src, PoissonSource):
                self.arrays[f"{key}_rate"] = src.rate_hz.astype(np.float64)
                self.spec["sources"].append({"key": key, "name": src.name, "kind": "poisson", "n": src.n})
            elif isinstance(src, SpikeTimeSource):
                # NEST stamps a spike at the end of its step: neuro.sim's step s is NEST's (s + 1) dt
                steps = [np.round(t / net.dt).astype(np.int64) for t in src.times]
                self.arrays[f"{key}_ptr"] = np.concatenate([[0], np.cumsum([len(s) for s in steps])]).astype(np.int64)
                self.arrays[f"{key}_times"] = ((np.concatenate(steps) if steps else np.zeros(0, np.int64)) + 1
                                               ).astype(np.float64) * net.dt
                self.spec["sources"].append({"key": key, "name": src.name, "kind": "times", "n": src.n})
            else:
                raise ValueError(f"cannot export source {src!r}")
            self.pop_spec[id(src)] = {"key": key, "kind": "source", "name": src.name, "n": src.n}
        for j, proj in enumerate(net.projections):
            self._projection(j, proj)
        for m in net.monitors:
            if isinstance(m, SpikeMonitor):
                ps = self.pop_spec[id(m.target)]
                if isinstance(m.target, SpikeTimeSource):
                    continue  # known in advance: read_results fills them in from the arrays
                if ps["key"] not in self.spec["spike_monitors"]:
                    self.spec["spike_monitors"].append(ps["key"])
            elif isinstance(m, StateMonitor):
                if m.var != "v":
                    raise ValueError(f"state monitor of {m.var!r} on {m.pop.name}: only 'v' (NEST's V_m) is "
                                     "exported")
                ps = self.pop_spec[id(m.pop)]
                self.arrays[f"{ps['key']}_smon_ids"] = m.ids.astype(np.int64)
                self.spec["state_monitors"].append({"pop": ps["key"], "every": m.every})
        if self.lagged:
            warnings.warn(f"projections {', '.join(self.lagged)}: a one-step delay onto an exponential or "
                          "conductance synapse acts within the arrival step in neuro.sim, but NEST's minimum delay "
                          "is dt and its synaptic current acts from the next step: these connections lag "
                          "neuro.sim by one step on NEST", stacklevel=3)

    # -- populations ----------------------------------------------------------------------------
    def _channels(self, pop, name):
        """Assign the population's receptors to NEST's ``ex``/``in`` channels. Returns
        (kind, tau_ex, tau_in, e_ex, e_in, receptor -> channel sign)."""
        keys = pop.receptor_keys
        if not keys:
            return "none", None, None, None, None, {}
        kinds = {"delta" if t == 0 else ("cond" if e is not None else "exp") for t, e in keys}
        if len(kinds) > 1:
            raise ValueError(f"population {name!r}: receptors {keys} mix {' and '.join(sorted(kinds))} synapses; "
                             "NEST's neuron models have one synapse type a neuron")
        kind = kinds.pop()
        if kind == "delta":
            return "delta", None, None, None, None, {r: 0 for r in range(len(keys))}
        if len(keys) > 2:
            raise ValueError(f"population {name!r} has {len(keys)} receptors {keys}; NEST's {kind} models have "
                             "two (ex, in)")
        projs = [p for p in self.net.projections if p.post is pop]
        signs = []
        for r in range(len(keys)):
            w = np.concatenate([p.weights for p in projs if p.receptor == r] or [np.zeros(0)])
            if pop.drive is not None and pop.drive[2] == r:
                w = np.append(w, pop.drive[1])
            signs.append((bool(np.any(w > 0)), bool(np.any(w < 0))))
        if kind == "cond":
            if len(keys) == 1:
                t, e = keys[0]
                return kind, t, t, e, e, {0: 1}
            order = sorted(range(2), key=lambda r: -keys[r][1])
            (te, ee), (ti, ei) = keys[order[0]], keys[order[1]]
            return kind, te, ti, ee, ei, {order[0]: 1, order[1]: -1}
        if len(keys) == 1:
            return kind, keys[0][0], keys[0][0], None, None, {0: 0}
        if not signs[0][1] and not signs[1][0]:
            ex, inh = 0, 1
        elif not signs[1][1] and not signs[0][0]:
            ex, inh = 1, 0
        else:
            raise ValueError(f"population {name!r}: two current receptors (tau_syn {keys[0][0]} and {keys[1][0]} ms) "
                             "whose weights do not have one sign each; NEST picks the ex/in time constant by the "
                             "weight's sign")
        return kind, keys[ex][0], keys[inh][0], None, None, {ex: 0, inh: 0}

    def _population(self, k, pop):
        dt, n, m, name = self.dt, pop.n, pop.model, pop.name
        key = f"pop{k}"
        kind, tau_e, tau_i, e_e, e_i, chan = self._channels(pop, name)
        st = pop.state
        p: dict[str, np.ndarray] = {}
        wscale = {}  # receptor -> factor from neuro weight to NEST weight
        init = {"V_m": _arr(st["v"], n)}
        i_scale = 1000.0  # nA -> pA
        if isinstance(m, LIF | IF | CubaLIF):
            if m.reset_mode != RESET_TO_VALUE or m.reset_delay:
                raise ValueError(f"population {name!r}: {type(m).__name__}(reset={m.reset!r}, reset_delay="
                                 f"{bool(m.reset_delay)}) has no NEST equivalent; NEST's neurons reset to v_reset in "
                                 "the step they fire (reset='to_value', reset_delay=False)")
        if type(m) is LIF:
            if m.integration == "exact":
                tau, cm = _arr(m.tau_m, n), _arr(m.cm, n)
            else:  # Euler / discrete: the exact propagator with tau' = -dt/ln(decay), the same gain per step
                if kind in ("exp", "cond"):
                    how = "integration='euler'" if m.integration == "euler" else "a discrete decay"
                    raise ValueError(f"population {name!r}: LIF with {how} "
                                     f"feeding {kind} synapses has no exact NEST equivalent (NEST's synaptic "
                                     "propagator is exact); use integration='exact' or delta synapses (tau_syn=0)")
                # float64 here: the float32 kernel coefficients would round tau'
                decay, gain = (_arr(c, n) for c in m.step_factors(dt))
                if np.any(decay <= 0):
                    raise ValueError(f"population {name!r}: decay {decay.min()} <= 0 has no membrane time constant")
                tau = np.where(decay >= 1, _TAU_INF, coefficients.exact_tau(np.minimum(decay, 1 - 1e-16), dt))
                cm = coefficients.exact_capacitance(gain, tau, dt)  # NEST's gain per step: tau/C (1 - e^{-dt/tau})
            model = {"delta": "iaf_psc_delta", "none": "iaf_psc_delta", "exp": "iaf_psc_exp",
                     "cond": "iaf_cond_exp"}[kind]
            p.update(tau_m=tau, C_m=cm * 1000.0, E_L=_arr(m.v_rest, n), V_th=_arr(m.v_thresh, n),
                     V_reset=_arr(m.v_reset, n), t_ref=coefficients.steps(_arr(m.tau_refrac, n), dt) * dt)
            if kind == "cond":  # iaf_cond_exp takes the leak conductance [nS], not tau_m
                p["g_L"] = p["C_m"] / p.pop("tau_m")
            for r in chan:
                wscale[r] = {"delta": 1.0, "exp": 1000.0, "cond": 1000.0}[kind]
        elif type(m) is IF:
            if kind not in ("delta", "none"):
                raise ValueError(f"population {name!r}: IF takes delta synapses (tau_syn=0) on NEST; its input "
                                 f"is integrated without a leak, got {kind} receptors")
            model = "iaf_psc_delta"
            p.update(tau_m=np.full(n, _TAU_INF), C_m=1000.0 / _arr(m.r, n), E_L=np.zeros(n),
                     V_th=_arr(m.v_thresh, n), V_reset=_arr(m.v_reset, n),
                     t_ref=coefficients.steps(_arr(m.tau_refrac, n), dt) * dt)
            wscale = dict.fromkeys(chan, 1.0)
        elif type(m) is CubaLIF:
            if m.integration != "exact":
                what = "CubaLIF.discrete (snnTorch's Synaptic)" if m.integration == "discrete" else \
                    f"CubaLIF with integration={m.integration!r}"
                raise ValueError(f"population {name!r}: {what} has no NEST equivalent (NEST's iaf_psc_exp is the "
                                 "exact propagator: integration='exact')")
            if kind not in ("delta", "none"):
                raise ValueError(f"population {name!r}: CubaLIF filters its input with its own tau_syn; connect "
                                 "with tau_syn=0 (NEST: iaf_psc_exp with the model's tau_syn)")
            model = "iaf_psc_exp"
            tau_s = _arr(m.tau_syn, n)
            p.update(tau_m=_arr(m.tau_m, n), C_m=_arr(m.cm, n) * 1000.0, E_L=_arr(m.v_rest, n),
                     V_th=_arr(m.v_thresh, n), V_reset=_arr(m.v_reset, n),
                     t_ref=coefficients.steps(_arr(m.tau_refrac, n), dt) * dt, tau_syn_ex=tau_s, tau_syn_in=tau_s)
            init["I_syn_ex"] = np.where(_arr(st["i"], n) > 0, _arr(st["i"], n), 0.0) * 1000.0
            init["I_syn_in"] = np.where(_arr(st["i"], n) < 0, _arr(st["i"], n), 0.0) * 1000.0
            if np.any(np.abs(_arr(m.w_in, n) - _arr(m.w_in, n)[0]) > 0):
                raise ValueError(f"population {name!r}: per-neuron w_in is not exported")
            w_in = float(_arr(m.w_in, n)[0])
            wscale = dict.fromkeys(chan, 1000.0 * w_in)
            kind = "cuba"
        elif type(m) is Izhikevich:
            if kind not in ("delta", "none"):
                raise ValueError(f"population {name!r}: NEST's izhikevich takes delta synapses (tau_syn=0), got "
                                 f"{kind} receptors")
            model = "izhikevich"
            p.update(a=_arr(m.a, n), b=_arr(m.b, n), c=_arr(m.c, n), d=_arr(m.d, n), V_th=_arr(m.v_peak, n),
                     consistent_integration=True, V_min=-1e300)
            init["U_m"] = _arr(st["u"], n)
            i_scale = 1.0  # the model's dimensionless current is NEST's pA
            wscale = dict.fromkeys(chan, dt)  # x = w for one step: v += dt w
        elif type(m) is AdEx:
            model = {"delta": "aeif_psc_delta", "none": "aeif_cond_exp", "exp": "aeif_psc_exp",
                     "cond": "aeif_cond_exp"}[kind]
            cm = _arr(m.cm, n)
            p.update(C_m=cm * 1000.0, g_L=cm / _arr(m.tau_m, n) * 1000.0, E_L=_arr(m.v_rest, n),
                     V_th=_arr(m.v_thresh, n), Delta_T=_arr(m.delta_t, n), tau_w=_arr(m.tau_w, n),
                     a=_arr(m.a, n) * 1000.0, b=_arr(m.b, n) * 1000.0, V_reset=_arr(m.v_reset, n),
                     V_peak=_arr(m.v_spike, n), t_ref=coefficients.steps(_arr(m.tau_refrac, n), dt) * dt)
            init["w"] = _arr(st["w"], n) * 1000.0
            wscale = {r: ({"delta": dt / cm[0], "exp": 1000.0, "cond": 1000.0}[kind]) for r in chan}
            if kind == "delta" and np.any(cm != cm[0]):
                raise ValueError(f"population {name!r}: per-neuron cm with delta synapses is not exported")
        else:
            raise ValueError(f"population {name!r}: {type(m).__name__} has no NEST/PyNN model of the same equations "
                             "(exported: LIF, IF, CubaLIF, Izhikevich, AdEx)")
        if kind in ("exp", "cond"):
            p["tau_syn_ex"], p["tau_syn_in"] = np.full(n, tau_e), np.full(n, tau_i)
        if kind == "cond":
            p["E_ex"], p["E_in"] = np.full(n, e_e), np.full(n, e_i)
        for name_, val in list(p.items()):
            if isinstance(val, np.ndarray):
                self.arrays[f"{key}_p_{name_}"] = val
                p[name_] = f"@{key}_p_{name_}"
        for name_, val in init.items():
            self.arrays[f"{key}_i_{name_}"] = val
        i_e = np.broadcast_to(pop.i_ext.astype(np.float64), (n,)) * i_scale
        self.arrays[f"{key}_I_e"] = i_e.copy()
        series = pop.i_series.astype(np.float64) * i_scale
        has_series = bool(pop.i_series.any())
        if has_series:
            self.arrays[f"{key}_series"] = series
        spec = {"key": key, "name": name, "n": n, "model": model, "kind": kind, "params": p,
                "initial": sorted(init), "series_start": int(pop.i_series_start) if has_series else None,
                "wscale": {str(r): float(s) for r, s in wscale.items()}, "chan": {str(r): c for r, c in chan.items()},
                "neuro_model": type(m).__name__, "delay_lag": kind in ("exp", "cond", "cuba")}
        if pop.drive is not None:
            rate, w, r, _ = pop.drive
            self.spec["drives"].append({"pop": key, "rate": rate, "weight": self._weight(spec, r, np.array([w]))[0]})
        self.spec["populations"].append(spec)
        return spec

    def _weight(self, spec, r, w):
        w = np.asarray(w, np.float64) * spec["wscale"][str(r)]
        if spec["chan"].get(str(r)) == -1:  # inhibitory conductance channel: NEST routes negative weights there
            w = -w
        return w

    def _projection(self, j, proj):
        post = self.pop_spec[id(proj.post)]
        pre = self.pop_spec[id(proj.pre)]
        n_syn = proj.n_synapses
        idx = np.int32 if max(len(proj.pre), len(proj.post)) < 2 ** 31 else np.int64
        src = np.repeat(np.arange(len(proj.pre), dtype=idx), np.diff(proj.indptr))
        tgt = proj.targets.astype(idx)
        w = self._weight(post, proj.receptor, np.broadcast_to(proj.weights.astype(np.float64), (n_syn,)))
        d = np.broadcast_to(proj.delays.astype(np.int32), (n_syn,))
        if post["delay_lag"]:
            if np.any(d == 1):
                self.lagged.append(proj.name)
            d = np.maximum(d - 1, 1)
        key = f"proj{j}"
        self.arrays[f"{key}_src"], self.arrays[f"{key}_tgt"] = src, tgt
        self.arrays[f"{key}_w"], self.arrays[f"{key}_d"] = w, (d * self.dt).astype(np.float64)
        spec = {"key": key, "name": proj.name, "pre": pre["key"], "post": post["key"], "stdp": None,
                "wscale": post["wscale"][str(proj.receptor)]}
        if proj.stdp is not None:
            s = proj.stdp
            if s.w_min != 0:
                raise ValueError(f"projection {proj.name!r}: STDP with w_min={s.w_min}; NEST's stdp_synapse clips "
                                 "weights at 0 (w_min=0)")
            if s.a_plus <= 0 or s.w_max <= 0:
                raise ValueError(f"projection {proj.name!r}: STDP needs a_plus > 0 and w_max > 0 on NEST, got "
                                 f"{s.a_plus}, {s.w_max}")
            if np.any(w < 0):
                raise ValueError(f"projection {proj.name!r}: STDP on negative weights is not exported")
            scale = post["wscale"][str(proj.receptor)]
            mu = 1.0 if s.multiplicative else 0.0
            spec["stdp"] = {"tau_plus": s.tau_plus, "lambda": s.a_plus if s.multiplicative else s.a_plus / s.w_max,
                            "alpha": s.a_minus / s.a_plus, "mu_plus": mu, "mu_minus": mu, "Wmax": s.w_max * scale,
                            "A_plus": s.a_plus if s.multiplicative else s.a_plus / s.w_max,
                            "A_minus": s.a_minus if s.multiplicative else s.a_minus / s.w_max,
                            "w_max": s.w_max, "multiplicative": bool(s.multiplicative), "tau_minus": s.tau_minus}
            old = self.spec["tau_minus"].get(post["key"])
            if old is not None and old != s.tau_minus:
                raise ValueError(f"population {post['name']!r}: STDP projections with different tau_minus ({old}, "
                                 f"{s.tau_minus}); NEST keeps tau_minus on the target neuron")
            self.spec["tau_minus"][post["key"]] = s.tau_minus
            if pre["kind"] == "source" and pre["key"] not in self.spec["parrot_sources"]:
                self.spec["parrot_sources"].append(pre["key"])
        self.spec["projections"].append(spec)

    def save_arrays(self, path: Path, overwrite: bool) -> None:
        from neuro.files import atomic_output

        with atomic_output(path, overwrite=overwrite, what="network arrays") as tmp:
            with open(tmp, "wb") as f:  # uncompressed: 100 M synapses would take minutes to deflate
                np.savez(f, **self.arrays)


# --------------------------------------------------------------------------------------------------
# script texts: one fixed body each, reading the JSON spec and the .npz arrays

_COMMON_HEAD = '''"""{title}

Written by neuro-snn (neuro.sim.Network.{method}). Runs unchanged with ``mpirun -n K``: each rank writes
the events of its own neurons to ``<out>.rank<r>.npz`` (neuro.sim.nest_export.read_results gathers them).
Times in the result files are {engine}'s: a spike is stamped at the end of its step (neuro.sim: the start).
Usage: python {{script}} [--duration MS] [--threads N] [--out PREFIX]
"""
import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

SPEC = json.loads(r"""{spec}""")
HERE = Path(__file__).resolve()
ap = argparse.ArgumentParser()
ap.add_argument("--duration", type=float, default=SPEC["duration_ms"])
ap.add_argument("--threads", type=int, default=1)
ap.add_argument("--out", default=str(HERE.with_suffix("")) + ".results")
args = ap.parse_args()
A = np.load(HERE.with_suffix(".npz"))
dt = SPEC["dt"]


def par(v):
    return A[v[1:]] if isinstance(v, str) and v.startswith("@") else v


def launcher_rank():
    """(rank, size) the MPI launcher gave this process (0, 1 without one)."""
    for r, s in (("OMPI_COMM_WORLD_RANK", "OMPI_COMM_WORLD_SIZE"), ("PMI_RANK", "PMI_SIZE"),
                 ("PMIX_RANK", "PMIX_SIZE")):
        if r in os.environ and s in os.environ:
            return int(os.environ[r]), int(os.environ[s])
    return 0, 1


def save(results, rank, n_proc):
    """This rank's events; under a launcher whose NEST has no MPI every process ran the whole network, and
    only the first writes."""
    lr, ls = launcher_rank()
    if n_proc == 1 and ls > 1:
        if lr > 0:
            return
        print(f"note: {{ls}} processes but this NEST was built without MPI: each ran the whole network",
              file=sys.stderr)
    results["num_processes"] = np.array(n_proc)
    results["rank"] = np.array(rank)
    tmp = f"{{args.out}}.rank{{rank}}.tmp.npz"
    np.savez(tmp, **results)
    os.replace(tmp, f"{{args.out}}.rank{{rank}}.npz")
'''

_NEST_BODY = '''
import nest

nest.set_verbosity("M_ERROR")
nest.ResetKernel()
nest.SetKernelStatus({"resolution": dt, "local_num_threads": args.threads, "rng_seed": SPEC["seed"]})
t_build = time.perf_counter()
nodes, first = {}, {}
for p in SPEC["populations"]:
    params = {k: par(v) for k, v in p["params"].items()}
    if p["key"] in SPEC["tau_minus"]:
        params["tau_minus"] = SPEC["tau_minus"][p["key"]]
    pop = nest.Create(p["model"], p["n"], params=params)
    pop.set({k: A[f"{p['key']}_i_{k}"] for k in p["initial"]})
    pop.set(I_e=A[f"{p['key']}_I_e"])
    nodes[p["key"]] = pop
    if p["series_start"] is not None:  # a series reaches the membrane 2 steps after the generator's time
        ser, s0 = A[f"{p['key']}_series"], p["series_start"]
        steps = np.arange(len(ser)) + s0
        late = steps >= 2
        if late.any():
            cols = [ser[late, i] for i in range(p["n"])]
            times = (steps[late] - 1) * dt
            gens = nest.Create("step_current_generator", p["n"])
            gens.set([{"amplitude_times": list(times) + [(steps[late][-1]) * dt],
                       "amplitude_values": list(c) + [0.0]} for c in cols])
            nest.Connect(gens, pop, "one_to_one", syn_spec={"delay": dt})
for s in SPEC["sources"]:
    if s["kind"] == "poisson":
        gen = nest.Create("poisson_generator", s["n"], params={"rate": A[f"{s['key']}_rate"]})
        parrots = nest.Create("parrot_neuron", s["n"])
        nest.Connect(gen, parrots, "one_to_one", syn_spec={"delay": dt})
        nodes[s["key"]] = parrots
    else:
        ptr, times = A[f"{s['key']}_ptr"], A[f"{s['key']}_times"]
        gen = nest.Create("spike_generator", s["n"])
        if s["key"] in SPEC["parrot_sources"]:  # plastic synapses need a neuron as source: relay, one step earlier
            times = times - dt
            if np.any(times < dt / 2):
                print(f"warning: {s['name']}: spikes of the first step are dropped (relayed source)", file=sys.stderr)
        gen.set([{"spike_times": [t for t in times[ptr[i]:ptr[i + 1]] if t > dt / 2]} for i in range(s["n"])])
        nodes[s["key"]] = gen
        if s["key"] in SPEC["parrot_sources"]:
            parrots = nest.Create("parrot_neuron", s["n"])
            nest.Connect(gen, parrots, "one_to_one", syn_spec={"delay": dt})
            nodes[s["key"]] = parrots
for dr in SPEC["drives"]:
    gen = nest.Create("poisson_generator", params={"rate": dr["rate"]})
    nest.Connect(gen, nodes[dr["pop"]], "all_to_all", syn_spec={"weight": dr["weight"], "delay": dt})
for j in SPEC["projections"]:
    pre, post = nodes[j["pre"]], nodes[j["post"]]
    k = j["key"]
    src = np.asarray(pre.tolist(), np.int64)[A[f"{k}_src"]]
    tgt = np.asarray(post.tolist(), np.int64)[A[f"{k}_tgt"]]
    syn = {"weight": A[f"{k}_w"], "delay": A[f"{k}_d"]}
    if j["stdp"] is not None:
        st = j["stdp"]
        name = f"neuro_stdp_{k}"
        nest.CopyModel("stdp_synapse", name, {q: st[q] for q in ("tau_plus", "lambda", "alpha", "mu_plus",
                                                                  "mu_minus", "Wmax")})
        syn["synapse_model"] = name
    if len(src):
        nest.Connect(src, tgt, "one_to_one", syn_spec=syn)
recorders = {}
for key in SPEC["spike_monitors"]:
    rec = nest.Create("spike_recorder")
    nest.Connect(nodes[key], rec)
    recorders[key] = rec
meters = {}
for sm in SPEC["state_monitors"]:
    ids = A[f"{sm['pop']}_smon_ids"]
    mm = nest.Create("multimeter", params={"record_from": ["V_m"], "interval": sm["every"] * dt})
    nest.Connect(mm, nodes[sm["pop"]][ids.tolist()] if len(ids) != len(nodes[sm["pop"]]) else nodes[sm["pop"]])
    meters[sm["pop"]] = mm
build_s = time.perf_counter() - t_build
t_sim = time.perf_counter()
steps_total = int(round(args.duration / dt))
early = [p for p in SPEC["populations"] if p["series_start"] is not None and p["series_start"] < 2]
done = 0
if early:  # a generator cannot reach steps 0 and 1: those values go through I_e, one step at a time
    for step in range(min(2, steps_total)):
        for p in early:
            ser, s0 = A[f"{p['key']}_series"], p["series_start"]
            extra = ser[step - s0] if 0 <= step - s0 < len(ser) else 0.0
            nodes[p["key"]].set(I_e=A[f"{p['key']}_I_e"] + extra)
        nest.Simulate(dt)
        done += 1
    for p in early:
        nodes[p["key"]].set(I_e=A[f"{p['key']}_I_e"])
if steps_total > done:
    nest.Simulate((steps_total - done) * dt)
simulate_s = time.perf_counter() - t_sim
rank, n_proc = nest.Rank(), nest.NumProcesses()
res = {"build_s": np.array(build_s), "simulate_s": np.array(simulate_s), "dt": np.array(dt),
       "duration_ms": np.array(steps_total * dt), "threads": np.array(args.threads)}
for key, rec in recorders.items():
    ev = rec.get("events")
    res[f"spikes/{key}/times"] = np.asarray(ev["times"], np.float64)
    res[f"spikes/{key}/ids"] = np.asarray(ev["senders"], np.int64) - nodes[key][0].global_id
for key, mm in meters.items():
    ev = mm.get("events")
    res[f"state/{key}/times"] = np.asarray(ev["times"], np.float64)
    res[f"state/{key}/ids"] = np.asarray(ev["senders"], np.int64) - nodes[key][0].global_id
    res[f"state/{key}/v"] = np.asarray(ev["V_m"], np.float64)
for j in SPEC["projections"]:  # plastic weights after the run (this rank's synapses)
    if j["stdp"] is not None:
        c = nest.GetConnections(synapse_model=f"neuro_stdp_{j['key']}")
        if len(c):
            st = c.get(["source", "target", "weight"])
            res[f"weights/{j['key']}/pre"] = np.atleast_1d(st["source"]).astype(np.int64) - nodes[j["pre"]][0].global_id
            res[f"weights/{j['key']}/post"] = (np.atleast_1d(st["target"]).astype(np.int64)
                                               - nodes[j["post"]][0].global_id)
            res[f"weights/{j['key']}/w"] = np.atleast_1d(st["weight"]).astype(np.float64) / j["wscale"]
save(res, rank, n_proc)
'''

_PYNN_BODY = '''
import importlib

BACKEND = os.environ.get("NEURO_PYNN_BACKEND", @BACKEND@)
sim = importlib.import_module("pyNN." + BACKEND)
from pyNN.parameters import Sequence
# pyNN.nest defaults to NEST's precise-spike-time models (off-grid); neuro.sim is on the grid
extra = {"spike_precision": "on_grid"} if BACKEND == "nest" else {}
sim.setup(timestep=dt, min_delay=dt, threads=args.threads, rng_seed=SPEC["seed"], **extra)
if BACKEND == "nest" and getattr(sim.IF_curr_delta, "variable_map", None) is None:
    # pyNN 0.13's NEST IF_curr_delta has no variable map: initialize(v=...) and record("v") would fail
    sim.IF_curr_delta.variable_map, sim.IF_curr_delta.scale_factors = {"v": "V_m"}, {"v": 1}
t_build = time.perf_counter()
CELLS = {"iaf_psc_exp": "IF_curr_exp", "iaf_psc_delta": "IF_curr_delta", "iaf_cond_exp": "IF_cond_exp",
         "izhikevich": "Izhikevich", "aeif_cond_exp": "EIF_cond_exp_isfa_ista"}
pops = {}
for p in SPEC["populations"]:
    params = {k: par(v) for k, v in p["pynn"]["params"].items()}
    if p["key"] in SPEC["tau_minus"]:
        pass  # PyNN sets tau_minus from the timing rule
    pop = sim.Population(p["n"], getattr(sim, CELLS[p["model"]])(**params), label=p["name"])
    pop.initialize(**{k: A[f"{p['key']}_i_{v}"] * s for k, (v, s) in p["pynn"]["initial"].items()})
    pop.set(i_offset=A[f"{p['key']}_I_e"] * p["pynn"]["i_scale"])
    pops[p["key"]] = pop
    if p["series_start"] is not None:
        ser, s0 = A[f"{p['key']}_series"] * p["pynn"]["i_scale"], p["series_start"]
        steps = np.arange(len(ser)) + s0
        late = steps >= 2
        for i in range(p["n"]):
            # pyNN.nest moves the times min_delay (dt) earlier itself
            src = sim.StepCurrentSource(times=list(steps[late] * dt) + [(steps[late][-1] + 1) * dt],
                                        amplitudes=list(ser[late, i]) + [0.0])
            src.inject_into(pop[i:i + 1])
for s in SPEC["sources"]:
    if s["kind"] == "poisson":
        rates = A[f"{s['key']}_rate"]
        pops[s["key"]] = sim.Population(s["n"], sim.SpikeSourcePoisson(rate=rates), label=s["name"])
    else:
        ptr, times = A[f"{s['key']}_ptr"], A[f"{s['key']}_times"]
        if BACKEND == "nest":  # pyNN.nest: precise spike_generator -> parrot (min_delay earlier); half a step
            times = times - 0.5 * dt  # keeps each time inside its step whatever the float rounding
            if np.any(times < dt):
                print(f"warning: {s['name']}: spikes in the first step are dropped on pyNN.nest", file=sys.stderr)
        trains = [Sequence(times[ptr[i]:ptr[i + 1]][times[ptr[i]:ptr[i + 1]] >= (dt if BACKEND == "nest"
                                                                                    else 0)])
                  for i in range(s["n"])]
        pops[s["key"]] = sim.Population(s["n"], sim.SpikeSourceArray(spike_times=trains), label=s["name"])
for dr in SPEC["drives"]:
    p = pops[dr["pop"]]
    spec = next(q for q in SPEC["populations"] if q["key"] == dr["pop"])
    gen = sim.Population(p.size, sim.SpikeSourcePoisson(rate=dr["rate"]))
    w = dr["pynn_weight"]
    sim.Projection(gen, p, sim.OneToOneConnector(), sim.StaticSynapse(weight=abs(w), delay=dt),
                   receptor_type="excitatory" if w >= 0 else "inhibitory")
plastic = []
for j in SPEC["projections"]:
    k = j["key"]
    src, tgt, w, d = A[f"{k}_src"], A[f"{k}_tgt"], A[f"{k}_pynn_w"], A[f"{k}_d"]
    for receptor, sel in (("excitatory", w >= 0), ("inhibitory", w < 0)):
        if not sel.any():
            continue
        conns = np.stack([src[sel], tgt[sel], w[sel] if j["signed"] else np.abs(w[sel]), d[sel]], 1)
        if j["stdp"] is not None:
            st = j["stdp"]
            dep = sim.MultiplicativeWeightDependence if st["multiplicative"] else sim.AdditiveWeightDependence
            syn = sim.STDPMechanism(
                timing_dependence=sim.SpikePairRule(tau_plus=st["tau_plus"], tau_minus=st["tau_minus"],
                                                    A_plus=st["A_plus"], A_minus=st["A_minus"]),
                weight_dependence=dep(w_min=0.0, w_max=st["w_max_pynn"]), weight=0.0, delay=dt)
        else:
            syn = sim.StaticSynapse()
        prj = sim.Projection(pops[j["pre"]], pops[j["post"]],
                             sim.FromListConnector(conns, column_names=["weight", "delay"]), syn,
                             receptor_type=receptor)
        if j["stdp"] is not None:
            plastic.append((j, prj))
for key in SPEC["spike_monitors"]:
    pops[key].record("spikes")
for sm in SPEC["state_monitors"]:
    ids = A[f"{sm['pop']}_smon_ids"]
    pops[sm["pop"]][ids.tolist()].record("v", sampling_interval=sm["every"] * dt)
build_s = time.perf_counter() - t_build
t_sim = time.perf_counter()
steps_total = int(round(args.duration / dt))
early = [p for p in SPEC["populations"] if p["series_start"] is not None and p["series_start"] < 2]
done = 0
if early:  # a current source cannot reach steps 0 and 1: those values go through i_offset, one step at a time
    for step in range(min(2, steps_total)):
        for p in early:
            ser, s0 = A[f"{p['key']}_series"] * p["pynn"]["i_scale"], p["series_start"]
            extra = ser[step - s0] if 0 <= step - s0 < len(ser) else 0.0
            pops[p["key"]].set(i_offset=A[f"{p['key']}_I_e"] * p["pynn"]["i_scale"] + extra)
        sim.run(dt)
        done += 1
    for p in early:
        pops[p["key"]].set(i_offset=A[f"{p['key']}_I_e"] * p["pynn"]["i_scale"])
if steps_total > done:
    sim.run((steps_total - done) * dt)
simulate_s = time.perf_counter() - t_sim
rank, n_proc = sim.rank(), sim.num_processes()
res = {"build_s": np.array(build_s), "simulate_s": np.array(simulate_s), "dt": np.array(dt),
       "duration_ms": np.array(steps_total * dt), "threads": np.array(args.threads)}
for key in SPEC["spike_monitors"]:
    seg = pops[key].get_data("spikes", gather=False).segments[0]
    times = [np.asarray(st.magnitude, np.float64) for st in seg.spiketrains]
    ids = [np.full(len(t), int(st.annotations["source_index"]), np.int64)
           for t, st in zip(times, seg.spiketrains)]
    res[f"spikes/{key}/times"] = np.concatenate(times) if times else np.zeros(0)
    res[f"spikes/{key}/ids"] = np.concatenate(ids) if ids else np.zeros(0, np.int64)
for sm in SPEC["state_monitors"]:
    key = sm["pop"]
    ids = A[f"{key}_smon_ids"]
    seg = pops[key][ids.tolist()].get_data("v", gather=False).segments[0]
    if seg.analogsignals:
        sig = seg.analogsignals[0]
        t = np.asarray(sig.times.magnitude, np.float64)
        ch = np.asarray(sig.array_annotations["channel_index"], np.int64)
        res[f"state/{key}/times"] = np.repeat(t, sig.shape[1])
        res[f"state/{key}/ids"] = np.tile(ids[ch], len(t))
        res[f"state/{key}/v"] = np.asarray(sig.magnitude, np.float64).reshape(-1)
for j, prj in plastic:  # plastic weights after the run (this rank's synapses), in neuro.sim's units
    lst = np.asarray(prj.get("weight", format="list", gather=False), np.float64).reshape(-1, 3)
    for col, name in ((0, "pre"), (1, "post")):
        prev = res.get(f"weights/{j['key']}/{name}", np.zeros(0, np.int64))
        res[f"weights/{j['key']}/{name}"] = np.concatenate([prev, lst[:, col].astype(np.int64)])
    prev = res.get(f"weights/{j['key']}/w", np.zeros(0))
    res[f"weights/{j['key']}/w"] = np.concatenate([prev, np.abs(lst[:, 2]) / j["pynn_wscale"]])
sim.end()
save(res, rank, n_proc)
'''


def _pynn_spec(plan: _Plan) -> None:
    """Add PyNN's names and units (ms, mV, nF, nA, uS) to each population of the plan."""
    spec = plan.spec
    for p in spec["populations"]:
        key, model = p["key"], p["model"]
        if model not in ("iaf_psc_exp", "iaf_psc_delta", "iaf_cond_exp", "izhikevich", "aeif_cond_exp"):
            raise ValueError(f"population {p['name']!r}: {p['neuro_model']} with {p['kind']} synapses maps to NEST's "
                             f"{model}, which PyNN has no standard cell for (AdEx: conductance synapses "
                             "only, EIF_cond_exp_isfa_ista); use Network.to_nest")

        def g(name, _key=key, _p=p):
            v = _p["params"][name]
            return plan.arrays[v[1:]] if isinstance(v, str) else v

        if model == "izhikevich":
            params = {"a": g("a"), "b": g("b"), "c": g("c"), "d": g("d")}
            if np.any(np.asarray(g("V_th")) != 30.0):
                raise ValueError(f"population {p['name']!r}: PyNN's Izhikevich fires at 30 mV, got v_peak "
                                 f"{g('V_th')}")
            initial = {"v": ("V_m", 1.0), "u": ("U_m", 1.0)}
            i_scale = 1e-3  # pyNN.nest: I_e = 1000 i_offset
        elif model == "aeif_cond_exp":
            params = {"cm": g("C_m") / 1000.0, "tau_m": g("C_m") / g("g_L"), "v_rest": g("E_L"),
                      "v_thresh": g("V_th"), "delta_T": g("Delta_T"), "tau_w": g("tau_w"), "a": g("a"),
                      "b": g("b") / 1000.0, "v_reset": g("V_reset"), "v_spike": g("V_peak"),
                      "tau_refrac": g("t_ref")}
            if "E_ex" in p["params"]:  # AdEx without synapses is written as aeif_cond_exp with NEST's defaults
                params.update(tau_syn_E=g("tau_syn_ex"), tau_syn_I=g("tau_syn_in"), e_rev_E=g("E_ex"),
                              e_rev_I=g("E_in"))
            initial = {"v": ("V_m", 1.0), "w": ("w", 1e-3)}
            i_scale = 1e-3
        else:
            cm = g("C_m") / 1000.0
            params = {"tau_m": g("C_m") / g("g_L") if model == "iaf_cond_exp" else g("tau_m"), "cm": cm,
                      "v_rest": g("E_L"), "v_thresh": g("V_th"), "v_reset": g("V_reset"), "tau_refrac": g("t_ref")}
            if model == "iaf_cond_exp":
                params.update(tau_syn_E=g("tau_syn_ex"), tau_syn_I=g("tau_syn_in"), e_rev_E=g("E_ex"),
                              e_rev_I=g("E_in"))
            elif model == "iaf_psc_exp":
                params.update(tau_syn_E=g("tau_syn_ex"), tau_syn_I=g("tau_syn_in"))
            initial = {"v": ("V_m", 1.0)}
            if "I_syn_ex" in p["initial"]:
                initial.update(isyn_exc=("I_syn_ex", 1e-3), isyn_inh=("I_syn_in", -1e-3))
            i_scale = 1e-3
        for k, v in list(params.items()):
            if isinstance(v, np.ndarray):
                plan.arrays[f"{key}_pp_{k}"] = v
                params[k] = f"@{key}_pp_{k}"
        # NEST weights -> PyNN's: current nA (pA / 1000), conductance uS, Izhikevich mV (undone by PyNN)
        p["pynn"] = {"params": params, "initial": initial, "i_scale": i_scale,
                     "w_scale": 1.0 if model in ("iaf_psc_delta", "izhikevich") else 1e-3}
    by_key = {p["key"]: p for p in spec["populations"]}
    for j in spec["projections"]:
        post = by_key[j["post"]]
        plan.arrays[f"{j['key']}_pynn_w"] = plan.arrays[f"{j['key']}_w"] * post["pynn"]["w_scale"]
        # current synapses keep their sign on the inhibitory receptor; conductances are positive
        j["signed"] = post["model"] in ("iaf_psc_exp", "iaf_psc_delta", "izhikevich")
        j["pynn_wscale"] = j["wscale"] * post["pynn"]["w_scale"]
        if j["stdp"] is not None:
            if post["model"] in ("iaf_psc_delta", "izhikevich"):
                raise ValueError(f"projection {j['name']!r}: STDP onto {post['name']!r} ({post['model']}, delta "
                                 "synapses): pyNN.nest scales STDP's w_max by 1000 but not these cells' mV weights; "
                                 "use exponential synapses or Network.to_nest")
            j["stdp"]["w_max_pynn"] = j["stdp"]["Wmax"] * post["pynn"]["w_scale"]
    for dr in spec["drives"]:
        dr["pynn_weight"] = dr["weight"] * by_key[dr["pop"]]["pynn"]["w_scale"]


def _write(net, path, overwrite: bool, duration_ms: float, engine: str, backend: str = "nest") -> Path:
    from neuro.files import check_output_path, write_text

    path = check_output_path(path, overwrite=overwrite, what=f"{engine} script")
    if path.suffix != ".py":
        raise ValueError(f"path must name a .py script, got {str(path)!r}")
    check_output_path(path.with_suffix(".npz"), overwrite=overwrite, what=f"{engine} script's arrays")
    plan = _Plan(net, duration_ms)
    if engine == "PyNN":
        _pynn_spec(plan)
        title, method, body = (f"PyNN script of a neuro.sim network (backend {backend!r}; set NEURO_PYNN_BACKEND "
                               "to change it).", "to_pynn", _PYNN_BODY.replace("@BACKEND@", repr(backend)))
    else:
        title, method, body = "Native NEST (PyNEST 3.x) script of a neuro.sim network.", "to_nest", _NEST_BODY
    spec = json.dumps(plan.spec, indent=1)
    text = _COMMON_HEAD.format(title=title, method=method, engine="NEST" if engine != "PyNN" else "PyNN",
                               spec=spec) + body
    plan.save_arrays(path.with_suffix(".npz"), overwrite)
    write_text(path, text, overwrite=overwrite, what=f"{engine} script")
    return path


def to_nest(net, path, overwrite: bool = False, duration_ms: float = 1000.0) -> Path:
    """Write ``net`` as a native NEST script ``path`` (+ ``path.with_suffix('.npz')``); see the module docstring
    for the mapping. ``duration_ms`` is the script's default run time (``--duration`` overrides it)."""
    return _write(net, path, overwrite, duration_ms, "NEST")


def to_pynn(net, path, overwrite: bool = False, duration_ms: float = 1000.0, backend: str = "nest") -> Path:
    """Write ``net`` as a PyNN script for ``backend`` (``"nest"``, ``"spiNNaker"``, ...; the environment
    variable ``NEURO_PYNN_BACKEND`` overrides it at run time)."""
    if not isinstance(backend, str) or not backend.isidentifier():
        raise ValueError(f"backend must be a PyNN backend module name such as 'nest', got {backend!r}")
    return _write(net, path, overwrite, duration_ms, "PyNN", backend)


def read_results(script, out: str | None = None) -> dict:
    """Gather the per-rank result files of a script written by :func:`to_nest` / :func:`to_pynn`.

    Returns ``{"spikes": {name: (times_ms, ids)}, "state": {name: (times_ms, ids, v)}, "weights": {projection:
    (pre, post, w)} (plastic projections, neuro.sim's units), "simulate_s": max over ranks,
    "build_s": ..., "ranks": K}`` with times in neuro.sim's convention (the engine's stamps minus
    ``dt``) and ids local to each population or source (names as in the network).
    """
    script = Path(script)
    prefix = out or str(script.with_suffix("")) + ".results"
    files = sorted(glob.glob(glob.escape(prefix) + ".rank*.npz"))
    if not files:
        raise FileNotFoundError(f"no result files {prefix}.rank*.npz; run the script first")
    text = script.read_text()
    spec = json.loads(text.split('SPEC = json.loads(r"""', 1)[1].split('""")', 1)[0])
    names = {p["key"]: p["name"] for p in spec["populations"] + spec["sources"]}
    dt = spec["dt"]
    spikes: dict[str, list] = {}
    state: dict[str, list] = {}
    weights: dict[str, list] = {}
    pnames = {j["key"]: j["name"] for j in spec["projections"]}
    sim_s, build_s = 0.0, 0.0
    for f in files:
        with np.load(f) as z:
            sim_s, build_s = max(sim_s, float(z["simulate_s"])), max(build_s, float(z["build_s"]))
            for k in z.files:
                parts = k.split("/")
                if parts[0] == "spikes" and parts[2] == "times":
                    spikes.setdefault(names[parts[1]], []).append((z[k] - dt, z[f"spikes/{parts[1]}/ids"]))
                if parts[0] == "weights" and parts[2] == "w":
                    weights.setdefault(pnames[parts[1]], []).append((z[f"weights/{parts[1]}/pre"],
                                                                     z[f"weights/{parts[1]}/post"], z[k]))
                if parts[0] == "state" and parts[2] == "times":
                    state.setdefault(names[parts[1]], []).append((z[k] - dt, z[f"state/{parts[1]}/ids"],
                                                                  z[f"state/{parts[1]}/v"]))

    def cat(lst, n):
        out_ = [np.concatenate([x[i] for x in lst]) for i in range(n)]
        order = np.lexsort((out_[1], out_[0]))
        return tuple(a[order] for a in out_)

    arrays = np.load(script.with_suffix(".npz"))
    for s in spec["sources"]:
        if s["kind"] == "times":
            ptr = arrays[f"{s['key']}_ptr"]
            spikes.setdefault(s["name"], []).append((arrays[f"{s['key']}_times"] - dt,
                                                     np.repeat(np.arange(s["n"]), np.diff(ptr))))
    return {"spikes": {k: cat(v, 2) for k, v in spikes.items()}, "state": {k: cat(v, 3) for k, v in state.items()},
            "weights": {k: cat(v, 3) for k, v in weights.items()},
            "simulate_s": sim_s, "build_s": build_s, "ranks": len(files)}


def nest_available() -> str | None:
    """``None`` if PyNEST imports in a fresh interpreter here, else the reason it does not."""
    import subprocess
    import sys

    r = subprocess.run([sys.executable, "-c", "import nest"], capture_output=True, text=True,
                       env={**os.environ, "PYNEST_QUIET": "1"})
    return None if r.returncode == 0 else (r.stderr.strip().splitlines() or ["import nest failed"])[-1]
