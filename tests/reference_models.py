"""Plain NumPy re-implementations of every model's equations, written from the docstrings, for tests.

Vectorised over neurons, looping over time, float32 throughout and the same operation order as the
equations, so the compiled kernels must reproduce spikes exactly.
"""

import numpy as np

f32 = np.float32


def lif(x, p, reset_mode, reset_delay, v0=None):
    T, n = x.shape
    v = np.zeros(n, f32) if v0 is None else v0.astype(f32).copy()
    ref = np.zeros(n, f32)
    spikes = np.zeros((T, n), f32)
    vs = np.zeros((T, n), f32)
    thr, vr, tref = p["threshold"], p["v_reset"], p["t_ref"]
    for t in range(T):
        v_base, sub, ref = _delayed_reset(v, ref, thr, vr, tref, reset_mode, reset_delay)
        v_int = (p["v_leak"] + p["decay"] * (v_base - p["v_leak"]) + p["gain"] * x[t] - sub).astype(f32)
        v, ref, s = _fire(v_int, ref, thr, vr, tref, reset_mode, reset_delay)
        spikes[t], vs[t] = s, v
    return spikes, vs


def _delayed_reset(v, ref, thr, vr, tref, reset_mode, reset_delay):
    """snnTorch's next-step reset from the previous step's spike: (v_base, subtracted amount, refractory)."""
    if not reset_delay:
        return v, np.zeros_like(v), ref
    fired = v > thr
    sub = np.where(fired & (reset_mode == 0), thr, f32(0)).astype(f32)
    v_base = np.where(fired & (reset_mode == 1), vr, v).astype(f32)
    return v_base, sub, np.where(fired & (tref > 0), tref, ref).astype(f32)


def _fire(v_int, ref, thr, vr, tref, reset_mode, reset_delay):
    clamped = ref > 0
    s = (~clamped) & (v_int > thr)
    v_new = v_int
    new_ref = ref
    if not reset_delay:
        if reset_mode == 0:
            v_new = np.where(s, v_int - thr, v_int)
        elif reset_mode == 1:
            v_new = np.where(s, vr, v_int)
        new_ref = np.where(s & (tref > 0), tref, ref)
    v_new = np.where(clamped, vr, v_new).astype(f32)
    new_ref = np.where(clamped, ref - f32(1), new_ref).astype(f32)
    return v_new, new_ref, s.astype(f32)


def cuba_lif(x, p, reset_mode, reset_delay):
    T, n = x.shape
    i = np.zeros(n, f32)
    v = np.zeros(n, f32)
    ref = np.zeros(n, f32)
    spikes, vs, cur = (np.zeros((T, n), f32) for _ in range(3))
    thr, vr, tref = p["threshold"], p["v_reset"], p["t_ref"]
    for t in range(T):
        v_base, sub, ref = _delayed_reset(v, ref, thr, vr, tref, reset_mode, reset_delay)
        i_n = (p["syn_decay"] * i + p["syn_gain"] * x[t]).astype(f32)
        v_int = (p["v_leak"] + p["mem_decay"] * (v_base - p["v_leak"]) + p["i_old"] * i + p["i_new"] * i_n
                 - sub).astype(f32)
        i = i_n
        v, ref, s = _fire(v_int, ref, thr, vr, tref, reset_mode, reset_delay)
        spikes[t], vs[t], cur[t] = s, v, i
    return spikes, vs, cur


def alif(x, p, reset_mode):
    T, n = x.shape
    v, a, ref = (np.zeros(n, f32) for _ in range(3))
    spikes, vs, aa = (np.zeros((T, n), f32) for _ in range(3))
    for t in range(T):
        theta = (p["threshold"] + p["adapt_gain"] * a).astype(f32)
        v_int = (p["v_leak"] + p["decay"] * (v - p["v_leak"]) + p["gain"] * x[t]).astype(f32)
        v, ref, s = _fire(v_int, ref, theta, p["v_reset"], p["t_ref"], reset_mode, 0)
        a = (p["adapt_decay"] * a + s).astype(f32)
        spikes[t], vs[t], aa[t] = s, v, a
    return spikes, vs, aa


def izhikevich(x, p, dt, v0, u0):
    T, n = x.shape
    v, u = v0.astype(f32).copy(), u0.astype(f32).copy()
    dt = f32(dt)
    spikes, vs = np.zeros((T, n), f32), np.zeros((T, n), f32)
    for t in range(T):
        v_new = (v + dt * (f32(0.04) * v * v + f32(5) * v + f32(140) - u + x[t])).astype(f32)
        u_new = (u + dt * (p["a"] * (p["b"] * v - u))).astype(f32)
        s = v_new >= p["v_peak"]
        v = np.where(s, p["c"], v_new).astype(f32)
        u = np.where(s, u_new + p["d"], u_new).astype(f32)
        spikes[t], vs[t] = s, v
    return spikes, vs


def adex(x, p, dt, v0):
    T, n = x.shape
    dt = f32(dt)
    v = v0.astype(f32).copy()
    w, ref = np.zeros(n, f32), np.zeros(n, f32)
    spikes, vs = np.zeros((T, n), f32), np.zeros((T, n), f32)
    for t in range(T):
        clamped = ref > 0
        arg = np.minimum((v - p["v_t"]) / p["delta_t"], f32(20)).astype(f32)
        dv = ((-p["g_l"] * (v - p["e_l"]) + p["g_l"] * p["delta_t"] * np.exp(arg) - w + x[t]) / p["C"]).astype(f32)
        dw = ((p["a"] * (v - p["e_l"]) - w) / p["tau_w"]).astype(f32)
        v_new = (v + dt * dv).astype(f32)
        w_new = (w + dt * dw).astype(f32)
        s = (~clamped) & (v_new > p["v_peak"])
        v = np.where(clamped | s, p["v_reset"], v_new).astype(f32)
        w = np.where(s, w_new + p["b"], w_new).astype(f32)
        ref = np.where(clamped, ref - 1, np.where(s, p["_t_ref"], ref)).astype(f32)
        spikes[t], vs[t] = s, v
    return spikes, vs
