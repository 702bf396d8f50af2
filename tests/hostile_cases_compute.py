"""Hostile inputs to the compute side: neuro.models, neuro.kernels, neuro.nn (neuron_scan, modules, encoding,
losses, surrogates), neuro.sim, neuro.convert and neuro.energy. One line of data a case (see hostile.py).

Legal edge cases (T = 0, B = 0, N = 0 or 1) are checked against hand-computed results: empty outputs of the
right shape, spike trains worked out by hand in the comments, or counts from the definitions."""

import functools
import math

import numpy as np
import torch
from hostile import Case

import neuro
from neuro import encoding, energy, kernels, surrogate
from neuro.hardware_targets import devices
from neuro.models import ALIF, IF, LIF, AdEx, CubaLIF, Izhikevich, alif, lif
from neuro.nn import losses, neuron_scan
from neuro.sim import (
    STDP,
    AllToAll,
    Convolution,
    FixedInDegree,
    FixedProbability,
    FromList,
    FromSubset,
    Network,
    OneToOne,
)

NAN, INF = float("nan"), float("inf")
Z = np.zeros((4, 2), np.float32)
P = {"decay": 0.9, "gain": 1.0, "v_leak": 0.0, "threshold": 1.0, "v_reset": 0.0, "t_ref": 0.0}
OPTS = {"reset_mode": 0, "reset_delay": 1}
# constant input 0.6, decay 0.9, threshold 1, subtract at the next step (hand-computed membrane:
# 0.6, 1.14 (spike), 0.626, 1.1634 (spike), 0.647): spikes 0 1 0 1 0
HAND = [0.0, 1.0, 0.0, 1.0, 0.0]


def kf(x=Z, state=None, params=P, options=OPTS, **kw):
    return kernels.forward(lif.DYNAMICS, x, {} if state is None else state, params, options, **kw)


def kf_hand(options):
    spikes, _ = kernels.forward(lif.DYNAMICS, np.full((5, 1), 0.6, np.float32), {}, P, options)
    return spikes[:, 0].tolist()


def kb(rec=None, g_spikes=None, **kw):
    x = np.full((3, 2), 0.6, np.float32)
    rec = np.zeros((3, 2, 2), np.float32) if rec is None else rec
    g = np.ones((3, 2), np.float32) if g_spikes is None else g_spikes
    return kernels.backward(lif.DYNAMICS, kw.pop("sg", "atan"), x, {}, rec, P, OPTS, g, **kw)


def kfp(state=None, params=None, opts=None, x=None):
    x = np.zeros((3, 4), np.float32) if x is None else x
    state = np.zeros((2, 4), np.float32) if state is None else state
    params = np.zeros((6, 4), np.float32) if params is None else params
    opts = np.zeros(2, np.int64) if opts is None else opts
    return kernels.forward_packed(lif.DYNAMICS, x, state, params, opts)


def read_only(a):
    a.flags.writeable = False
    return a


def scan(x=None, params=None, init=None, options=(0, 1), **kw):
    x = torch.zeros(4, 3) if x is None else x
    n = x.shape[-1] if isinstance(x, torch.Tensor) and x.dim() else 3
    params = torch.tensor([0.9, 1.0, 0.0, 1.0, 0.0, 0.0]).repeat(n, 1).T.contiguous() if params is None else params
    init = torch.zeros(2, n) if init is None else init
    return neuron_scan(lif.DYNAMICS, x, params, init, options, **kw)


def nnlif(x, **kw):
    return neuro.nn.LIF(**{"beta": 0.9, **kw})(x)


def loaded_beta():
    saved, fresh = neuro.nn.LIF(beta=0.5), neuro.nn.LIF(beta=0.9)
    fresh.load_state_dict(saved.state_dict())
    return fresh


def net(**kw):
    return Network(**{"dt": 0.1, **kw})


def pop(n=3, **kw):
    return net().population(n, LIF(), **kw)


def connect(pre_n=3, post_n=3, connector=None, **kw):
    nw = net()
    a, b = nw.population(pre_n, LIF()), nw.population(post_n, LIF())
    return nw.connect(a, b, AllToAll() if connector is None else connector, **kw)


def foreign(what):
    nw, other = net(), net()
    mine, theirs = nw.population(2, LIF()), other.population(2, LIF())
    if what == "pre":
        return nw.connect(theirs, mine, AllToAll())
    if what == "post":
        return nw.connect(mine, theirs, AllToAll())
    if what == "spike":
        return nw.spike_monitor(theirs)
    if what == "rate":
        return nw.rate_monitor(theirs)
    return nw.state_monitor(theirs)


def ran(duration, dt=0.1, monitor=False):
    nw = Network(dt=dt)
    p = nw.population(2, LIF())
    if monitor:
        nw.state_monitor(p, "v", ids=[0])
    nw.run(duration)
    return nw


def one_neuron_spikes():
    # 1 nA into R = tau_m / cm = 20 MOhm from rest: v - v_rest = 20 (1 - exp(-t / 20)) mV crosses the 15 mV
    # to threshold at t = 20 ln 4 ms, then resets to rest: 100 // (20 ln 4) spikes in 100 ms
    nw = Network(dt=0.1)
    p = nw.population(1, LIF(tau_m=20.0, cm=1.0, v_rest=-65.0, v_thresh=-50.0, v_reset=-65.0))
    p.inject(1.0)
    mon = nw.spike_monitor(p)
    nw.run(100.0)
    return mon.count()


@functools.cache
def snn():
    torch.manual_seed(0)
    ann = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.ReLU(), torch.nn.Linear(8, 3))
    return neuro.convert.ann_to_snn(ann, torch.rand(32, 4), progress=False)


ANN = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.ReLU(), torch.nn.Linear(8, 3))
CAL = torch.rand(16, 4)


def a2s(**kw):
    return neuro.convert.ann_to_snn(kw.pop("model", ANN), kw.pop("data", CAL), **{"progress": False, **kw})


def counted_model():
    m = torch.nn.Sequential(torch.nn.Linear(4, 3), neuro.nn.LIF(beta=0.5))
    with torch.no_grad():
        m[0].weight.fill_(1.0)
        m[0].bias.zero_()
    return m


def est(x=None, **kw):
    x = torch.full((5, 2, 4), 0.5) if x is None else x
    return energy.estimate(kw.pop("model", counted_model()), x, **{"progress": False, **kw})


def acc(**kw):
    x = torch.full((5, 2, 4), 0.5)
    return energy.accuracy_energy(counted_model(), x, kw.pop("labels", torch.tensor([0, 1])),
                                  kw.pop("timesteps", [1, 5]), progress=False, **kw)


CASES = [
    # ---------------------------------------------------------------- neuro.models
    Case("lif-nan-tau_m", lambda: LIF(tau_m=NAN), ValueError, "tau_m must be finite"),
    Case("lif-1e39-tau_m", lambda: LIF(tau_m=1e39), ValueError, "tau_m.*float32"),
    Case("lif-str-tau_m", lambda: LIF(tau_m="20"), TypeError, "tau_m must be a number"),
    Case("lif-bool-cm", lambda: LIF(cm=True), TypeError, "cm must be a number"),
    Case("lif-none-v_rest", lambda: LIF(v_rest=None), TypeError, "v_rest"),
    Case("lif-negative-tau_refrac", lambda: LIF(tau_refrac=-1.0), ValueError, "tau_refrac must be >= 0"),
    Case("lif-2d-v_thresh", lambda: LIF(v_thresh=[[1.0]]), ValueError, "v_thresh must be a scalar or 1-D"),
    Case("lif-empty-v_rest", lambda: LIF(v_rest=[]), ValueError, "v_rest must not be empty"),
    Case("lif-reset-as-int", lambda: LIF(reset=0), TypeError, "reset must be one of"),
    Case("lif-reset-unknown", lambda: LIF(reset="hard"), ValueError, "reset must be one of"),
    Case("lif-reset_delay-str", lambda: LIF(reset_delay="yes"), TypeError, "reset_delay"),
    Case("lif-integration-int", lambda: LIF(integration=1), ValueError, "integration"),
    Case("lif-discrete-nan-beta", lambda: LIF.discrete(beta=NAN), ValueError, "beta"),
    Case("cubalif-negative-tau_syn", lambda: CubaLIF(tau_syn=-5.0), ValueError, "tau_syn must be > 0"),
    Case("alif-inf-tau_adapt", lambda: ALIF(tau_adapt=INF), ValueError, "tau_adapt"),
    Case("izhikevich-str-a", lambda: Izhikevich(a="x"), TypeError, "a must be a number"),
    Case("adex-zero-delta_t", lambda: AdEx(delta_t=0.0), ValueError, "delta_t must be > 0"),
    Case("if-nan-v_init", lambda: IF(v_init=NAN), ValueError, "v_init"),
    Case("simulate-dt-zero", lambda: LIF().simulate(Z, dt=0.0), ValueError, "dt must be a finite number > 0"),
    Case("simulate-dt-nan", lambda: LIF().simulate(Z, dt=NAN), ValueError, "dt must be"),
    Case("simulate-dt-str", lambda: LIF().simulate(Z, dt="0.1"), ValueError, "dt must be"),
    Case("simulate-dt-bool", lambda: LIF().simulate(Z, dt=True), ValueError, "dt must be"),
    Case("simulate-dt-1e39", lambda: LIF().simulate(Z, dt=1e39), ValueError, "dt must be"),
    Case("simulate-current-1d", lambda: LIF().simulate(np.zeros(5), dt=0.1), ValueError, r"current must have shape"),
    Case("simulate-current-bool", lambda: LIF().simulate(np.zeros((3, 2), bool), dt=0.1), TypeError, "current"),
    Case("simulate-current-str", lambda: LIF().simulate([["a"]], dt=0.1), TypeError, "current"),
    Case("simulate-current-1e39", lambda: LIF().simulate(np.full((3, 2), 1e39), dt=0.1), ValueError, "current"),
    Case("simulate-current-nan", lambda: LIF().simulate(np.full((3, 2), NAN), dt=0.1), ValueError, "current"),
    Case("simulate-initial-nan", lambda: LIF().simulate(Z, 0.1, initial_state={"v": NAN}), ValueError, "initial v"),
    Case("simulate-initial-1e39", lambda: LIF().simulate(Z, 0.1, initial_state={"v": 1e39}), ValueError,
         "initial v"),
    Case("simulate-initial-unknown", lambda: LIF().simulate(Z, 0.1, initial_state={"w": 0.0}), ValueError,
         "unknown state variable 'w'"),
    Case("simulate-initial-size", lambda: LIF().simulate(Z, 0.1, initial_state={"v": [1.0, 2.0, 3.0]}),
         ValueError, "initial v has 3 values for 2"),
    Case("simulate-initial-not-dict", lambda: LIF().simulate(Z, 0.1, initial_state=[0.0]), TypeError,
         "initial_state"),
    Case("simulate-param-size", lambda: LIF(tau_m=[1.0, 2.0, 3.0]).simulate(Z, 0.1), ValueError, "3 values"),
    Case("simulate-T0", lambda: LIF().simulate(np.zeros((0, 3), np.float32), dt=0.1),
         check=lambda r: r.spikes.shape == (0, 3) and r.v.shape == (0, 3)),
    Case("simulate-N0", lambda: LIF().simulate(np.zeros((5, 0), np.float32), dt=0.1),
         check=lambda r: r.spikes.shape == (5, 0)),
    # v = 0.25 t: 1.0 at step 4 is not > 1, 1.25 at step 5 is (then 0.25 after subtraction)
    Case("simulate-N1-if", lambda: IF(v_thresh=1.0).simulate(np.full((8, 1), 0.25), dt=1.0),
         check=lambda r: r.spikes[:, 0].tolist() == [0, 0, 0, 0, 1, 0, 0, 0]),
    # ---------------------------------------------------------------- neuro.kernels
    Case("kf-dyn-str", lambda: kernels.forward("lif", Z, {}, P, OPTS), TypeError, "dyn must be"),
    Case("kf-x-1d", lambda: kf(np.zeros(3)), ValueError, r"x must have shape \[T, N\]"),
    Case("kf-x-bool", lambda: kf(np.zeros((3, 2), bool)), TypeError, "x must be a float array"),
    Case("kf-x-object", lambda: kf(np.array([[None, 1]], object)), TypeError, "x must be a float array"),
    Case("kf-x-1e39", lambda: kf(np.full((3, 2), 1e39)), ValueError, "x contains NaN or infinite"),
    Case("kf-x-nan", lambda: kf(np.full((3, 2), NAN, np.float32)), ValueError, "x contains NaN"),
    Case("kf-param-size", lambda: kf(params={**P, "decay": np.full(5, 0.9)}), ValueError, "decay has 5 values"),
    Case("kf-param-unknown", lambda: kf(params={**P, "beta": 0.9}), ValueError, r"unknown parameters \['beta'\]"),
    Case("kf-param-missing", lambda: kf(params={k: v for k, v in P.items() if k != "gain"}), ValueError,
         r"missing parameters \['gain'\]"),
    Case("kf-param-nan", lambda: kf(params={**P, "decay": NAN}), ValueError, "decay"),
    Case("kf-param-1e39", lambda: kf(params={**P, "gain": 1e39}), ValueError, "gain.*float32"),
    Case("kf-param-str", lambda: kf(params={**P, "decay": "0.9"}), TypeError, "decay"),
    Case("kf-params-not-dict", lambda: kf(params=[0.9] * 6), TypeError, "parameters must be a dict"),
    Case("kf-threshold-inf-never-fires", lambda: kf(np.full((4, 2), 5.0, np.float32), params={**P, "threshold": INF}),
         check=lambda r: r[0].shape == (4, 2) and not r[0].any()),
    Case("kf-state-unknown", lambda: kf(state={"w": np.zeros(2)}), ValueError, r"unknown state variables \['w'\]"),
    Case("kf-state-nan", lambda: kf(state={"v": np.full(2, NAN)}), ValueError, "state v"),
    Case("kf-state-size", lambda: kf(state={"v": np.zeros(5)}), ValueError, "state v has 5 values"),
    Case("kf-state-not-dict", lambda: kernels.forward(lif.DYNAMICS, Z, [0.0, 0.0], P, OPTS), TypeError,
         "state must be"),
    Case("kf-options-missing", lambda: kf(options={"reset_mode": 0}), ValueError, r"missing options \['reset_delay'\]"),
    Case("kf-options-unknown", lambda: kf(options={**OPTS, "mode": 1}), ValueError, r"unknown options \['mode'\]"),
    Case("kf-reset_mode-7", lambda: kf(options={**OPTS, "reset_mode": 7}), ValueError, "reset_mode must be one of"),
    Case("kf-reset_mode-half", lambda: kf(options={**OPTS, "reset_mode": 0.5}), ValueError, "reset_mode"),
    Case("kf-reset_mode-unknown-name", lambda: kf(options={**OPTS, "reset_mode": "hard"}), ValueError, "reset_mode"),
    Case("kf-reset_delay-2", lambda: kf(options={**OPTS, "reset_delay": 2}), ValueError, "reset_delay"),
    Case("kf-options-by-name", lambda: kf_hand({"reset_mode": "subtract", "reset_delay": True}),
         check=lambda s: s == HAND),
    Case("kf-options-by-code", lambda: kf_hand(OPTS), check=lambda s: s == HAND),
    Case("kf-alif-reset_delay-1",
         lambda: kernels.forward(alif.DYNAMICS, Z, {}, {**P, "adapt_decay": 0.9, "adapt_gain": 0.1},
                                 {"reset_mode": 0, "reset_delay": 1}), ValueError,
         "reset_delay"),
    Case("kf-dt-zero", lambda: kf(dt=0.0), ValueError, "dt must be"),
    Case("kf-dt-nan", lambda: kf(dt=NAN), ValueError, "dt must be"),
    Case("kf-record-str", lambda: kf(record="yes"), TypeError, "record"),
    Case("kf-T0", lambda: kf(np.zeros((0, 3), np.float32), record=True),
         check=lambda r: r[0].shape == (0, 3) and r[1].shape == (0, 2, 3)),
    Case("kf-N0", lambda: kf(np.zeros((4, 0), np.float32)), check=lambda r: r[0].shape == (4, 0)),
    Case("kb-rec-none", lambda: kernels.backward(lif.DYNAMICS, "atan", Z, {}, None, P, OPTS, Z), ValueError, "rec"),
    Case("kb-rec-shape", lambda: kb(rec=np.zeros((3, 2, 5), np.float32)), ValueError, "rec must have shape"),
    Case("kb-rec-nan", lambda: kb(rec=np.full((3, 2, 2), NAN, np.float32)), ValueError, "rec contains"),
    Case("kb-g_spikes-shape", lambda: kb(g_spikes=np.ones((2, 2), np.float32)), ValueError, "g_spikes must have shape"),
    Case("kb-g_spikes-nan", lambda: kb(g_spikes=np.full((3, 2), NAN)), ValueError, "g_spikes contains"),
    Case("kb-g_rec-shape", lambda: kb(g_rec=np.ones((3, 1, 2), np.float32)), ValueError, "g_rec must have shape"),
    Case("kb-surrogate-unknown", lambda: kb(sg="tanh"), ValueError, "unknown surrogate"),
    Case("kb-T0", lambda: kernels.backward(lif.DYNAMICS, "atan", np.zeros((0, 2), np.float32), {},
                                           np.zeros((0, 2, 2), np.float32), P, OPTS, np.zeros((0, 2), np.float32)),
         check=lambda r: r[0].shape == (0, 2) and r[1]["decay"].shape == (2,) and not r[1]["decay"].any()),
    Case("kfp-state-one-neuron", lambda: kfp(state=np.zeros((2, 1), np.float32)), ValueError,
         r"state must have shape \(2, 4\)"),
    Case("kfp-params-one-neuron", lambda: kfp(params=np.zeros((6, 1), np.float32)), ValueError,
         r"params must have shape \(6, 4\)"),
    Case("kfp-params-float64", lambda: kfp(params=np.zeros((6, 4))), TypeError, "params must be float32"),
    Case("kfp-state-not-contiguous", lambda: kfp(state=np.zeros((4, 2), np.float32).T), ValueError, "C-contiguous"),
    Case("kfp-state-read-only", lambda: kfp(state=read_only(np.zeros((2, 4), np.float32))), ValueError,
         "writeable"),
    Case("kfp-opts-short", lambda: kfp(opts=np.zeros(1, np.int64)), ValueError, "opts must have shape"),
    Case("kfp-opts-float", lambda: kfp(opts=np.zeros(2)), TypeError, "opts must be int64"),
    Case("kfp-x-1d", lambda: kfp(x=np.zeros(3, np.float32)), ValueError, "x must have shape"),
    # ---------------------------------------------------------------- neuro.nn.neuron_scan
    Case("scan-params-1-neuron-vs-200k", code="""
        import torch, neuro
        from neuro.models import lif
        neuro.nn.neuron_scan(lif.DYNAMICS, torch.zeros(10, 200_000), torch.zeros(6, 1), torch.zeros(2, 200_000), [0, 1])
        """, error=ValueError, match=r"params must have shape \(6, 200000\)"),
    Case("scan-init-1-neuron-vs-200k", code="""
        import torch, neuro
        from neuro.models import lif
        neuro.nn.neuron_scan(lif.DYNAMICS, torch.zeros(10, 200_000), torch.zeros(6, 200_000), torch.zeros(2, 1), [0, 1])
        """, error=ValueError, match=r"init must have shape \(2, 200000\)"),
    Case("scan-params-rows", lambda: scan(params=torch.zeros(5, 3)), ValueError, r"params must have shape \(6, 3\)"),
    Case("scan-x-3d", lambda: scan(torch.zeros(4, 2, 3)), ValueError, r"x must have shape \[T, N\]"),
    Case("scan-x-int", lambda: scan(torch.zeros(4, 3, dtype=torch.long)), TypeError, "x must be a float tensor"),
    Case("scan-x-list", lambda: scan([[0.0]]), TypeError, "x must be a torch.Tensor"),
    Case("scan-x-nan", lambda: scan(torch.full((4, 3), NAN)), ValueError, "x contains NaN"),
    Case("scan-x-1e39-float64", lambda: scan(torch.full((4, 3), 1e39, dtype=torch.float64)), ValueError, "x contains"),
    Case("scan-init-nan", lambda: scan(init=torch.full((2, 3), NAN)), ValueError, "init contains"),
    Case("scan-params-nan", lambda: scan(params=torch.full((6, 3), NAN)), ValueError, "params contains NaN"),
    Case("scan-options-length", lambda: scan(options=[0]), ValueError, "options must have 2 values"),
    Case("scan-options-code-9", lambda: scan(options=[9, 1]), ValueError, "reset_mode"),
    Case("scan-options-str", lambda: scan(options="subtract"), TypeError, "options must be a sequence"),
    Case("scan-options-by-name", lambda: scan(torch.full((5, 1), 0.6), options=("subtract", True))[0][:, 0].tolist(),
         check=lambda s: s == HAND),
    Case("scan-dt-negative", lambda: scan(dt=-1.0), ValueError, "dt must be"),
    Case("scan-surrogate-int", lambda: scan(surrogate=3), TypeError, "surrogate must be"),
    Case("scan-record-int", lambda: scan(record=1), TypeError, "record"),
    Case("scan-dyn-str", lambda: neuron_scan("lif", torch.zeros(2, 2), torch.zeros(6, 2), torch.zeros(2, 2), [0, 1]),
         TypeError, "dyn must be"),
    Case("scan-T0", lambda: scan(torch.zeros(0, 3)), check=lambda r: r[0].shape == (0, 3) and r[1].shape == (0, 2, 3)),
    Case("scan-N0", lambda: scan(torch.zeros(4, 0)), check=lambda r: r[0].shape == (4, 0)),
    # ---------------------------------------------------------------- neuro.nn modules
    Case("nnlif-nan-beta", lambda: neuro.nn.LIF(beta=NAN), ValueError, "beta must"),
    Case("nnlif-str-beta", lambda: neuro.nn.LIF(beta="0.9"), TypeError, "beta must be a number"),
    Case("nnlif-beta-2", lambda: neuro.nn.LIF(beta=2.0), ValueError, r"beta must lie in \[0, 1\]"),
    Case("nnlif-threshold-1e39", lambda: neuro.nn.LIF(beta=0.9, threshold=1e39), ValueError,
         "threshold must be finite"),
    Case("nnlif-learn_beta-str", lambda: neuro.nn.LIF(beta=0.9, learn_beta="yes"), TypeError, "learn_beta"),
    Case("nnlif-reset-int", lambda: neuro.nn.LIF(beta=0.9, reset=1), TypeError, "reset must be one of"),
    Case("nnlif-reset_delay-str", lambda: neuro.nn.LIF(beta=0.9, reset_delay="no"), TypeError, "reset_delay"),
    Case("nnlif-x-1e39-float64", lambda: nnlif(torch.full((2, 1, 3), 1e39, dtype=torch.float64)), ValueError,
         "x contains NaN or infinite"),
    Case("nnlif-x-2d", lambda: nnlif(torch.zeros(4, 3)), ValueError, "time-major"),
    Case("nnlif-beta-shape", lambda: nnlif(torch.zeros(2, 1, 4), beta=torch.full((5,), 0.9)), ValueError,
         r"beta -> decay of shape \(5,\)"),
    Case("nnlif-return_v-str", lambda: neuro.nn.LIF(beta=0.9)(torch.zeros(2, 1, 3), return_v="yes"), TypeError,
         "return_v"),
    Case("nnlif-beta-in-state_dict", loaded_beta, check=lambda m: float(m.beta) == 0.5),
    Case("nnlif-B0", lambda: nnlif(torch.zeros(3, 0, 4)), check=lambda s: s.shape == (3, 0, 4)),
    Case("nnlif-T0", lambda: nnlif(torch.zeros(0, 2, 4)), check=lambda s: s.shape == (0, 2, 4)),
    Case("nnlif-N1", lambda: nnlif(torch.full((5, 1, 1), 0.6))[:, 0, 0].tolist(), check=lambda s: s == HAND),
    Case("nncubalif-nan-alpha", lambda: neuro.nn.CubaLIF(alpha=NAN, beta=0.9), ValueError, "alpha"),
    Case("nncubalif-alpha-shape", lambda: neuro.nn.CubaLIF(alpha=torch.full((5,), 0.5), beta=0.9)(torch.zeros(2, 1, 4)),
         ValueError, "alpha -> syn_decay"),
    Case("nnalif-adapt_decay-2", lambda: neuro.nn.ALIF(beta=0.9, adapt_decay=2.0), ValueError, "adapt_decay"),
    Case("nnif-v_init-nan", lambda: neuro.nn.IF(v_init=NAN), ValueError, "v_init"),
    Case("nnli-beta-str", lambda: neuro.nn.LI(beta="x"), TypeError, "beta"),
    Case("rlif-size-float", lambda: neuro.nn.RLIF(2.5, beta=0.9), TypeError, "size must be an integer"),
    Case("rlif-size-zero", lambda: neuro.nn.RLIF(0, beta=0.9), ValueError, "size must be >= 1"),
    Case("timedistributed-chunk-zero", lambda: neuro.nn.TimeDistributed(torch.nn.Identity(), chunk=0), ValueError,
         "chunk"),
    Case("timedistributed-chunk-float", lambda: neuro.nn.TimeDistributed(torch.nn.Identity(), chunk=2.5), TypeError,
         "chunk"),
    Case("timedistributed-layer-str", lambda: neuro.nn.TimeDistributed("linear"), TypeError, "layer"),
    Case("flatten-2d", lambda: neuro.nn.Flatten()(torch.zeros(3, 4)), ValueError, "Flatten"),
    # ---------------------------------------------------------------- losses and decoding
    Case("loss-targets-float", lambda: losses.ce_count_loss(torch.zeros(4, 2, 3), torch.zeros(2)), TypeError,
         "targets must be integer"),
    Case("loss-targets-out-of-range", lambda: losses.ce_count_loss(torch.zeros(4, 2, 3), torch.tensor([0, 3])),
         ValueError, r"targets must be class indices in \[0, 3\)"),
    Case("loss-targets-negative", lambda: losses.ce_rate_loss(torch.zeros(4, 2, 3), torch.tensor([-1, 0])),
         ValueError, "targets"),
    Case("loss-spikes-nan", lambda: losses.ce_count_loss(torch.full((4, 2, 3), NAN), torch.tensor([0, 1])),
         ValueError, "spikes contains"),
    Case("loss-spikes-list", lambda: losses.ce_count_loss([[[0.0]]], torch.tensor([0])), TypeError, "spikes must be"),
    Case("loss-B0", lambda: losses.ce_count_loss(torch.zeros(4, 0, 3), torch.zeros(0, dtype=torch.long)),
         ValueError, "empty"),
    Case("loss-mse-correct_rate-2", lambda: losses.mse_count_loss(torch.zeros(4, 2, 3), torch.tensor([0, 1]),
                                                                  correct_rate=2.0), ValueError, "correct_rate"),
    Case("decode-T0", lambda: losses.rate_decode(torch.zeros(0, 2, 3)), check=lambda p: p.shape == (2,)),
    Case("decode-no-classes", lambda: losses.first_spike_decode(torch.zeros(4, 2, 0)), ValueError, "class"),
    # ---------------------------------------------------------------- encoding and surrogates
    Case("rate-num_steps-float", lambda: encoding.rate(torch.rand(2, 3), 2.5), TypeError, "num_steps"),
    Case("rate-num_steps-zero", lambda: encoding.rate(torch.rand(2, 3), 0), ValueError, "num_steps must be >= 1"),
    Case("rate-num_steps-bool", lambda: encoding.rate(torch.rand(2, 3), True), TypeError, "num_steps"),
    Case("rate-seed-negative", lambda: encoding.rate(torch.rand(2, 3), 5, seed=-1), ValueError, "seed"),
    Case("rate-seed-str", lambda: encoding.rate(torch.rand(2, 3), 5, seed="1"), TypeError, "seed"),
    Case("rate-gain-nan", lambda: encoding.rate(torch.rand(2, 3), 5, gain=NAN), ValueError, "gain"),
    Case("rate-x-1e39-float64", lambda: encoding.rate(torch.full((2, 3), 1e39, dtype=torch.float64), 5), ValueError,
         "x contains"),
    Case("rate-B0", lambda: encoding.rate(torch.zeros(0, 3), 5), check=lambda s: s.shape == (5, 0, 3)),
    Case("latency-threshold-str", lambda: encoding.latency(torch.rand(2, 3), 5, threshold="0.1"), TypeError,
         "threshold"),
    Case("delta-threshold-negative", lambda: encoding.delta(torch.rand(5, 3), threshold=-0.1), ValueError, "threshold"),
    Case("delta-x-nan", lambda: encoding.delta(torch.full((5, 3), NAN)), ValueError, "x contains"),
    Case("surrogate-alpha-str", lambda: surrogate.atan(alpha="2"), TypeError, "alpha"),
    Case("surrogate-alpha-inf", lambda: surrogate.atan(alpha=INF), ValueError, "alpha"),
    Case("surrogate-custom-slope-nan", lambda: surrogate.custom(surrogate.atan_grad, slope=NAN), ValueError, "slope"),
    Case("surrogate-custom-not-callable", lambda: surrogate.custom(3), TypeError, "grad"),
    Case("surrogate-get-int", lambda: surrogate.get(2), TypeError, "surrogate must be"),
    # ---------------------------------------------------------------- neuro.sim
    Case("net-dt-zero", lambda: net(dt=0.0), ValueError, "dt must be"),
    Case("net-dt-str", lambda: net(dt="0.1"), ValueError, "dt must be"),
    Case("net-seed-negative", lambda: net(seed=-1), ValueError, "seed"),
    Case("net-seed-float", lambda: net(seed=1.5), TypeError, "seed"),
    Case("net-device-gpu", lambda: net(device="gpu"), ValueError, "device"),
    Case("net-parallel-str", lambda: net(parallel="yes"), TypeError, "parallel"),
    Case("pop-n-float", lambda: pop(2.5), TypeError, "n must be an integer"),
    Case("pop-n-zero", lambda: pop(0), ValueError, "n must be >= 1"),
    Case("pop-n-bool", lambda: pop(True), TypeError, "n must be an integer"),
    Case("pop-model-str", lambda: net().population(3, "LIF"), TypeError, "model"),
    Case("pop-initial-nan", lambda: pop(initial={"v": NAN}), ValueError, "initial v"),
    Case("pop-initial-unknown", lambda: pop(initial={"w": 0.0}), ValueError, "unknown state 'w'"),
    Case("pop-initial-size", lambda: pop(initial={"v": [1.0, 2.0]}), ValueError, "initial v has 2 values for 3"),
    Case("pop-initial-list", lambda: pop(initial=[0.0]), TypeError, "initial"),
    Case("pop-inject-nan", lambda: pop().inject(NAN), ValueError, "current_nA"),
    Case("pop-inject-size", lambda: pop().inject([1.0, 2.0]), ValueError, "current"),
    Case("pop-inject_series-1e39", lambda: pop().inject_series(np.full(4, 1e39)), ValueError, "current_nA"),
    Case("pop-poisson_drive-negative-rate", lambda: pop().poisson_drive(-5.0, 0.1), ValueError, "rate_hz"),
    Case("pop-poisson_drive-seed-float", lambda: pop().poisson_drive(5.0, 0.1, seed=0.5), TypeError, "seed"),
    Case("poisson-n-float", lambda: net().poisson(2.5, 10.0), TypeError, "n must be an integer"),
    Case("poisson-rate-nan", lambda: net().poisson(3, NAN), ValueError, "rate_hz"),
    Case("poisson-rate-size", lambda: net().poisson(3, [1.0, 2.0]), ValueError, "rate_hz has 2 values"),
    Case("spike_source-negative-time", lambda: net().spike_source([[-1.0]]), ValueError, "times_ms"),
    Case("spike_source-str", lambda: net().spike_source("1.0"), TypeError, "times_ms"),
    Case("spike_source-huge-time", lambda: net().spike_source([[1e300]]), ValueError, "times_ms"),
    Case("connect-delay-3e9", lambda: connect(delay=3e9), ValueError, "delay"),
    Case("connect-delay-below-dt", lambda: connect(delay=0.01), ValueError, "delays must be >= dt"),
    Case("connect-delay-nan", lambda: connect(delay=NAN), ValueError, "delay"),
    Case("connect-weight-1e39", lambda: connect(weight=1e39), ValueError, "weight"),
    Case("connect-weight-size", lambda: connect(weight=[0.1, 0.2]), ValueError, "weight has 2 values for 9"),
    Case("connect-pre-str", lambda: net().connect("pop0", net().population(2, LIF()), AllToAll()), TypeError, "pre"),
    Case("connect-pre-foreign", lambda: foreign("pre"), ValueError, "another network"),
    Case("connect-post-foreign", lambda: foreign("post"), ValueError, "another network"),
    Case("connect-connector-str", lambda: connect(connector="all"), TypeError, "connector"),
    Case("connect-tau_syn-negative", lambda: connect(tau_syn=-1.0), ValueError, "tau_syn"),
    Case("connect-stdp-str", lambda: connect(stdp="stdp"), TypeError, "stdp"),
    Case("stdp-tau_plus-zero", lambda: STDP(tau_plus=0.0), ValueError, "tau_plus"),
    Case("stdp-w_max-below-w_min", lambda: STDP(w_min=1.0, w_max=0.0), ValueError, "w_max"),
    Case("fixedindegree-from-empty-source", code="""
        import neuro
        nw = neuro.sim.Network(dt=0.1)
        nw.connect(nw.spike_source([]), nw.population(3, neuro.models.LIF()), neuro.sim.FixedInDegree(2))
        """, error=ValueError, match="empty pre population"),
    Case("fixedindegree-from-empty-subset", code="""
        import neuro
        nw = neuro.sim.Network(dt=0.1)
        a, b = nw.population(4, neuro.models.LIF()), nw.population(3, neuro.models.LIF())
        nw.connect(a, b, neuro.sim.FromSubset(neuro.sim.FixedInDegree(2), 1, 0))
        """, error=ValueError, match="empty pre population"),
    Case("fixedindegree-k-float", lambda: FixedInDegree(2.5), TypeError, "k must be an integer"),
    Case("fixedindegree-k-negative", lambda: FixedInDegree(-1), ValueError, "k must be >= 0"),
    Case("fixedprobability-p-2", lambda: FixedProbability(2.0), ValueError, "p must lie in"),
    Case("fixedprobability-seed-str", lambda: FixedProbability(0.5, seed="1"), TypeError, "seed"),
    Case("fromlist-float-indices", lambda: FromList([(0.7, 1.9)]), TypeError, "pairs must be integer"),
    Case("fromlist-negative", lambda: FromList([(-1, 0)]), ValueError, "pairs must be >= 0"),
    Case("fromlist-three-columns", lambda: FromList([(0, 1, 2)]), ValueError, "pairs must be a list of"),
    Case("fromlist-out-of-range", lambda: connect(connector=FromList([(0, 5)])), ValueError, "out of range"),
    Case("fromsubset-count-float", lambda: FromSubset(AllToAll(), 0, 1.5), TypeError, "count"),
    Case("fromsubset-outside", lambda: connect(connector=FromSubset(AllToAll(), 2, 5)), ValueError, "subset"),
    Case("onetoone-sizes", lambda: connect(3, 4, OneToOne()), ValueError, "equal size"),
    Case("convolution-stride-zero", lambda: Convolution(np.ones((1, 1, 3, 3)), (1, 4, 4), stride=0), ValueError,
         "stride"),
    Case("convolution-in_shape-2d", lambda: Convolution(np.ones((1, 1, 3, 3)), (4, 4)), ValueError, "in_shape"),
    Case("convolution-kernel-too-large", lambda: Convolution(np.ones((1, 1, 5, 5)), (1, 2, 2)), ValueError, "kernel"),
    Case("spike_monitor-foreign", lambda: foreign("spike"), ValueError, "another network"),
    Case("rate_monitor-foreign", lambda: foreign("rate"), ValueError, "another network"),
    Case("state_monitor-foreign", lambda: foreign("state"), ValueError, "another network"),
    Case("spike_monitor-str", lambda: net().spike_monitor("pop0"), TypeError, "target must be"),
    Case("rate_monitor-bin-zero", lambda: (lambda n: n.rate_monitor(n.population(2, LIF()), bin_ms=0.0))(net()),
         ValueError, "bin_ms"),
    Case("state_monitor-var-int", lambda: (lambda n: n.state_monitor(n.population(2, LIF()), var=0))(net()),
         TypeError, "var"),
    Case("state_monitor-ids-float", lambda: (lambda n: n.state_monitor(n.population(2, LIF()), ids=[0.5]))(net()),
         TypeError, "ids"),
    Case("state_monitor-ids-range", lambda: (lambda n: n.state_monitor(n.population(2, LIF()), ids=[2]))(net()),
         ValueError, "ids has index 2 out of range"),
    Case("state_monitor-every-zero", lambda: (lambda n: n.state_monitor(n.population(2, LIF()), every=0))(net()),
         ValueError, "every"),
    Case("run-shorter-than-a-step", lambda: ran(0.04), ValueError, "duration_ms = 0.04 is shorter than one step"),
    Case("run-nan", lambda: ran(NAN), ValueError, "duration_ms"),
    Case("run-str", lambda: ran("10"), TypeError, "duration_ms"),
    Case("run-negative", lambda: ran(-1.0), ValueError, "duration_ms"),
    Case("run-1e30", lambda: ran(1e30), ValueError, "duration_ms"),
    Case("run-state-monitor-too-long", lambda: ran(1e12, monitor=True), ValueError, "state monitor"),
    Case("run-zero", lambda: ran(0.0), check=lambda nw: nw.t == 0.0),
    Case("run-one-step", lambda: ran(0.1), check=lambda nw: nw.t_steps == 1),
    Case("run-N1-analytic", one_neuron_spikes, check=lambda c: c == int(100.0 // (20.0 * math.log(4.0)))),
    # ---------------------------------------------------------------- neuro.convert
    Case("a2s-model-str", lambda: a2s(model="cnn"), TypeError, "model"),
    Case("a2s-calibration-int", lambda: a2s(data=torch.zeros(4, 4, dtype=torch.long)), TypeError, "calibration_data"),
    Case("a2s-calibration-empty", lambda: a2s(data=torch.zeros(0, 4)), ValueError, "calibration_data is empty"),
    Case("a2s-calibration-1e39-float64", lambda: a2s(data=torch.full((4, 4), 1e39, dtype=torch.float64)), ValueError,
         "calibration_data"),
    Case("a2s-threshold-int", lambda: a2s(threshold=99), TypeError, "threshold"),
    Case("a2s-threshold-unknown", lambda: a2s(threshold="mean"), ValueError, "threshold"),
    Case("a2s-percentile-zero", lambda: a2s(percentile=0.0), ValueError, "percentile"),
    Case("a2s-percentile-150", lambda: a2s(percentile=150.0), ValueError, "percentile"),
    Case("a2s-batch_size-zero", lambda: a2s(batch_size=0), ValueError, "batch_size"),
    Case("a2s-output-unknown", lambda: a2s(output="rate"), ValueError, "output"),
    Case("a2s-bias_shift-float", lambda: a2s(bias_shift_timesteps=2.5), TypeError, "bias_shift_timesteps"),
    Case("a2s-v_init-2", lambda: a2s(v_init=2.0), ValueError, "v_init"),
    Case("a2s-channel_wise-str", lambda: a2s(channel_wise="yes"), TypeError, "channel_wise"),
    Case("evaluate-timesteps-float", lambda: snn().evaluate(torch.rand(4, 4), torch.zeros(4, dtype=torch.long), [2.5]),
         TypeError, "timesteps"),
    Case("evaluate-timesteps-zero", lambda: snn().evaluate(torch.rand(4, 4), torch.zeros(4, dtype=torch.long), [0]),
         ValueError, "timesteps"),
    Case("evaluate-y-float", lambda: snn().evaluate(torch.rand(4, 4), torch.zeros(4), [2]), TypeError, "y must be"),
    Case("evaluate-y-shape", lambda: snn().evaluate(torch.rand(4, 4), torch.zeros(3, dtype=torch.long), [2]),
         ValueError, r"y must have shape \(4,\)"),
    Case("evaluate-x-nan", lambda: snn().evaluate(torch.full((4, 4), NAN), torch.zeros(4, dtype=torch.long), [2]),
         ValueError, "x contains"),
    Case("evaluate-batch_size-zero", lambda: snn().evaluate(torch.rand(4, 4), torch.zeros(4, dtype=torch.long), [2],
                                                            batch_size=0), ValueError, "batch_size"),
    Case("snn-forward-2d", lambda: snn()(torch.zeros(4, 4)), ValueError, "time-major"),
    Case("layer_rates-timesteps-float", lambda: snn().layer_rates(torch.rand(2, 4), 2.5), TypeError, "timesteps"),
    # one horizon, two samples: a dict with that horizon, an accuracy that is a multiple of 1/2
    Case("evaluate-T1", lambda: snn().evaluate(torch.rand(2, 4), torch.zeros(2, dtype=torch.long), [1],
                                               progress=False),
         check=lambda r: list(r) == [1] and r[1] in (0.0, 0.5, 1.0)),
    Case("qcfs-levels-float", lambda: neuro.convert.QCFS(levels=2.5), TypeError, "levels"),
    Case("qcfs-lambda-zero", lambda: neuro.convert.QCFS(init_lambda=0.0), ValueError, "init_lambda"),
    # ---------------------------------------------------------------- neuro.energy and device specs
    Case("energy-devices-one-string", lambda: est(devices="45nm"), check=lambda r: list(r.energy_j) == ["45nm"]),
    Case("energy-devices-int", lambda: est(devices=4), TypeError, "devices"),
    Case("energy-devices-unknown", lambda: est(devices=["4nm"]), ValueError, "unknown device '4nm'"),
    Case("energy-devices-empty", lambda: est(devices=[]), ValueError, "devices is empty"),
    Case("energy-devices-list-of-int", lambda: est(devices=[45]), TypeError, "device must be a name"),
    Case("energy-inputs-list", lambda: est([[[0.5]]]), TypeError, "inputs must be a torch.Tensor"),
    Case("energy-inputs-nan", lambda: est(torch.full((5, 2, 4), NAN)), ValueError, "inputs contain NaN"),
    Case("energy-inputs-1e39-float64", lambda: est(torch.full((5, 2, 4), 1e39, dtype=torch.float64)), ValueError,
         "inputs contain"),
    Case("energy-inputs-shape", lambda: est(torch.zeros(5, 2, 7)), ValueError, r"inputs must have shape \[T, B, 4\]"),
    Case("energy-B0", lambda: est(torch.zeros(5, 0, 4)), ValueError, "B = 0"),
    Case("energy-T0", lambda: est(torch.zeros(0, 2, 4)), ValueError, "T = 0"),
    Case("energy-batch_size-zero", lambda: est(batch_size=0), ValueError, "batch_size"),
    Case("energy-model-str", lambda: est(model="net"), TypeError, "model"),
    # T = 5, B = 2, analog input of 4 into 3 neurons: 5 x 4 x 3 input MACs and 5 x 3 neuron updates a sample
    Case("energy-counts-by-definition", lambda: est(devices="45nm"),
         check=lambda r: r.total("input_macs") == 60.0 and r.total("neuron_updates") == 15.0),
    Case("accuracy_energy-timesteps-float", lambda: acc(timesteps=[2.5]), TypeError, "timesteps"),
    Case("accuracy_energy-labels-float", lambda: acc(labels=torch.zeros(2)), TypeError, "labels"),
    Case("accuracy_energy-timesteps-too-long", lambda: acc(timesteps=[9]), ValueError, "exceeds"),
    Case("devicespec-negative-synop", lambda: devices.DeviceSpec("x", synop=-1.0, neuron_update=0.0), ValueError,
         "synop"),
    Case("devicespec-name-int", lambda: devices.DeviceSpec(4, synop=1e-12, neuron_update=0.0), TypeError, "name"),
    Case("devicespec-mac-str", lambda: devices.DeviceSpec("x", synop=1e-12, neuron_update=0.0, mac="4pJ"), ValueError,
         "mac"),
    Case("devicespec-kind-unknown", lambda: devices.DeviceSpec("x", synop=1e-12, neuron_update=0.0, kind="asic"),
         ValueError, "kind"),
    Case("devices-get-int", lambda: devices.get(45), TypeError, "device must be a name"),
    Case("devices-register-str", lambda: devices.register("45nm"), TypeError, "DeviceSpec"),
]
