"""Equations models shared by the GPU compile checks and the host-compiled CUDA C tests: every integration method,
reset statements of each kind, refractory by time and by condition, exp/clip/sqrt in the right-hand side."""

from neuro.models import Equations

CASES = {
    # user LIF, exact, reset to a value, refractory time (frozen membrane)
    "lif_exact": dict(eqs="dv/dt = (v_rest - v + R*I) / tau_m : volt (unless refractory)", threshold="v > v_th",
                      reset="v = v_reset", refractory=2.0, method="exact",
                      params=dict(tau_m=20.0, R=1.0, v_rest=0.0, v_th=1.0, v_reset=0.0)),
    # subtractive reset, no refractory
    "lif_subtract": dict(eqs="dv/dt = (-v + I) / tau : volt", threshold="v > v_th", reset="v -= v_th",
                         refractory=0.0, method="exact", params=dict(tau=5.0, v_th=1.0)),
    # adaptive LIF, exact (coupled linear system), two reset statements
    "alif_exact": dict(eqs="""dv/dt = (-v - w + I) / tau_m : volt (unless refractory)
                              dw/dt = -w / tau_w : volt""", threshold="v > v_th", reset="v = 0; w += b",
                       refractory=1.0, method="exact", params=dict(tau_m=10.0, tau_w=50.0, v_th=1.0, b=0.2)),
    # AdEx, euler, exp and clip in the right-hand side
    "adex_euler": dict(eqs="""dv/dt = (-g_l*(v - e_l) + g_l*d_t*exp(clip((v - v_t)/d_t, -50, 20)) - w + I)/c_m
                                  : volt (unless refractory)
                              dw/dt = (a*(v - e_l) - w)/tau_w : amp""",
                       threshold="v > v_peak", reset="v = v_reset; w += b", refractory=0.5, method="euler",
                       params=dict(g_l=0.05, e_l=-70.6, d_t=2.0, v_t=-50.4, c_m=0.281, a=0.004, tau_w=144.0,
                                   v_peak=0.0, v_reset=-70.6, b=0.0805)),
    # Izhikevich, euler, refractory by condition
    "izhikevich_euler": dict(eqs="""dv/dt = (0.04*v**2 + 5*v + 140 - u + I) / ms : volt
                                    du/dt = a*(b*v - u) / ms : volt""",
                             threshold="v >= 30", reset="v = c; u += d", refractory=0.0, method="euler",
                             params=dict(a=0.02, b=0.2, c=-65.0, d=8.0)),
    # rk4 and exponential Euler with a sqrt, input into a state (a jump)
    "rk4_jump": dict(eqs="dv/dt = -v / tau + sqrt(abs(v) + 1) * k : volt", threshold="v > 1.5", reset="v *= 0.5",
                     refractory="v > 10", method="rk4", input="v", params=dict(tau=5.0, k=0.01)),
    "expeuler": dict(eqs="""dv/dt = (g_k*n*(e_k - v) + g_l*(e_l - v) + I) / c_m : volt
                            dn/dt = an*(1 - n) - bn*n : 1
                            an = 0.01*exprel((v + 55)/10) : Hz
                            bn = 0.125*exp(-(v + 65)/80) : Hz""", threshold="v > -20", reset="",
                     refractory="v > -20", method="exponential_euler",
                     params=dict(g_k=0.36, e_k=-77.0, g_l=0.003, e_l=-54.4, c_m=0.01)),
}


def model(name: str) -> Equations:
    c = CASES[name]
    return Equations(c["eqs"], threshold=c["threshold"], reset=c["reset"], refractory=c["refractory"],
                     method=c["method"], input=c.get("input", "I"), **c["params"])
