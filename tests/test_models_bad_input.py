"""Bad input to the models and kernels gets an error that names the argument and what was expected;
nothing the caller gave is modified."""

import numpy as np
import pytest

from neuro import kernels, surrogate
from neuro.models import ALIF, IF, LIF, AdEx, CubaLIF, Izhikevich, lif


@pytest.mark.parametrize("kwargs,match", [
    ({"tau_m": -1.0}, "tau_m must be > 0"),
    ({"tau_m": 0.0}, "tau_m must be > 0"),
    ({"cm": float("nan")}, "cm must be finite"),
    ({"tau_refrac": -0.5}, "tau_refrac must be >= 0"),
    ({"v_thresh": [[1.0, 2.0]]}, "v_thresh must be a scalar or 1-D"),
    ({"reset": "bounce"}, "reset must be one of"),
    ({"integration": "rk4"}, "integration must be 'exact' or 'euler'"),
    ({"v_rest": "abc"}, "v_rest must be a number"),
])
def test_lif_rejects_bad_parameters(kwargs, match):
    with pytest.raises((ValueError, TypeError), match=match):
        LIF(**kwargs)


@pytest.mark.parametrize("factory,match", [
    (lambda: LIF.discrete(beta=1.5), r"beta must lie in \[0, 1\]"),
    (lambda: LIF.discrete(beta=-0.1), r"beta must lie in \[0, 1\]"),
    (lambda: CubaLIF.discrete(alpha=2.0), r"alpha must lie in \[0, 1\]"),
    (lambda: CubaLIF(tau_syn=0.0), "tau_syn must be > 0"),
    (lambda: ALIF(tau_adapt=-3.0), "tau_adapt must be > 0"),
    (lambda: AdEx(delta_t=0.0), "delta_t must be > 0"),
    (lambda: Izhikevich(a=float("inf")), "a must be finite"),
    (lambda: IF(v_thresh=float("nan")), "v_thresh must be finite"),
])
def test_models_reject_bad_parameters(factory, match):
    with pytest.raises(ValueError, match=match):
        factory()


@pytest.mark.parametrize("dt", [0.0, -0.1, float("nan"), float("inf"), "0.1"])
def test_dt_must_be_positive_finite_number(dt):
    with pytest.raises(ValueError, match="dt must be a finite number > 0"):
        LIF().simulate(np.zeros((3, 2), np.float32), dt=dt)


def test_simulate_checks_current_shape_dtype_and_values():
    cell = LIF()
    with pytest.raises(ValueError, match=r"current must have shape \[T, N\].*got shape \(5,\)"):
        cell.simulate(np.zeros(5, np.float32), dt=0.1)
    with pytest.raises(TypeError, match="current must be a float array, got dtype"):
        cell.simulate(np.zeros((5, 2), dtype=bool), dt=0.1)
    with pytest.raises(ValueError, match="current contains NaN"):
        cell.simulate(np.array([[0.0, np.nan]], np.float32), dt=0.1)
    with pytest.raises(ValueError, match="parameter .* has 3 values but current has 2 neurons"):
        LIF(tau_m=[10.0, 20.0, 30.0]).simulate(np.zeros((4, 2), np.float32), dt=0.1)


def test_simulate_does_not_modify_callers_arrays():
    current = np.full((20, 3), 2.0, np.float32)
    v0 = np.array([-60.0, -55.0, -52.0], np.float32)
    keep_c, keep_v = current.copy(), v0.copy()
    LIF().simulate(current, dt=0.1, initial_state={"v": v0})
    np.testing.assert_array_equal(current, keep_c)
    np.testing.assert_array_equal(v0, keep_v)


def test_unknown_state_and_missing_kernel_parameters_are_named():
    with pytest.raises(ValueError, match="unknown state variable 'w'"):
        LIF().simulate(np.zeros((2, 1), np.float32), dt=0.1, initial_state={"w": 0.0})
    with pytest.raises(ValueError, match=r"lif: missing parameters \['t_ref'\]"):
        params = {k: 1.0 for k in lif.DYNAMICS.params if k != "t_ref"}
        kernels.forward(lif.DYNAMICS, np.zeros((2, 1), np.float32), {}, params, {"reset_mode": 0, "reset_delay": 0})
    with pytest.raises(ValueError, match="x must have shape"):
        kernels.forward(lif.DYNAMICS, np.zeros(3, np.float32), {}, {}, {})


@pytest.mark.parametrize("bad", [0.0, -1.0, float("nan")])
def test_surrogate_slopes_are_checked(bad):
    with pytest.raises(ValueError, match="must be a finite number > 0"):
        surrogate.atan(alpha=bad)
    with pytest.raises(ValueError, match="unknown surrogate 'tanh'"):
        surrogate.get("tanh")


def test_nothing_compiles_at_import():
    """Importing neuro must not compile kernels: checked in a fresh interpreter."""
    import subprocess
    import sys

    code = ("import neuro, neuro.kernels, neuro.models, neuro.nn, neuro.sim; "
            "from neuro.models import ALL_DYNAMICS; "
            "print(sum(len(d.step.signatures) for d in ALL_DYNAMICS.values()), len(ALL_DYNAMICS))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    compiled, models = out.stdout.split()
    assert int(models) >= 5  # every built-in model's step was looked at
    assert compiled == "0"
