"""Loihi 2: the bit-accurate netx/Lava reference against integer traces worked out by hand, and emitted netx
files of small neuro.nn networks against the float networks (shifted by one step per synaptic layer)."""

import h5py
import numpy as np
import pytest
import torch
from torch import nn

import neuro
from neuro.hardware_targets import TargetError, get
from neuro.hardware_targets.loihi2_reference import dense_weights, lif_step, load
from neuro.nn import TimeDistributed as TD


def _trace(a_in, **params):
    u = v = np.zeros(1, np.int64)
    us, vs, ss = [], [], []
    for a in a_in:
        u, v, s = lif_step(u, v, np.array([a]), **params)
        us.append(int(u[0]))
        vs.append(int(v[0]))
        ss.append(int(s[0]))
    return us, vs, ss


def test_cuba_lif_matches_hand_computed_integer_traces():
    # A: no decay of v, full decay of u (IF). u = a << 6 = 256 each step; v = 256, 512, 768 > 10 << 6 = 640:
    # spike at step 2 and v = 0 (hard reset); step 3: u = 0, v = 0.
    assert _trace([4, 4, 4, 0], i_decay=4096, v_decay=0, vth=10) == ([256, 256, 256, 0], [256, 512, 0, 0],
                                                                      [0, 0, 1, 0])
    # B: u keeps (4096-1024)/4096 = 3/4, v keeps 1/2, bias 3 << 6 = 192, threshold 11 << 6 = 704.
    # t0: u = 320, v = 320 + 192 = 512.  t1: u = 240, v = 256 + 240 + 192 = 688 (not > 704).
    # t2: u = 180, v = 344 + 180 + 192 = 716 > 704: spike, v = 0.  t3: u = trunc(135.0) = 135, v = 135 + 192.
    assert _trace([5, 0, 0, 0], i_decay=1024, v_decay=2048, vth=11, bias=3) == ([320, 240, 180, 135],
                                                                                 [512, 688, 0, 327], [0, 0, 1, 0])
    # C: decays truncate towards zero on negative states. t0: u = -3 << 6 = -192, v = -192 - 64 = -256.
    # t1: u = -(192 * 3096 >> 12) = -(594432 >> 12) = -145 (floor would give -146);
    #     v = -(256 * 1096 >> 12) - 145 - 64 = -68 - 209 = -277.
    assert _trace([-3, 0], i_decay=1000, v_decay=3000, vth=1, bias=-1)[:2] == ([-192, -145], [-256, -277])
    # D: 24-bit wrap of u, tested as Lava tests it (u > 2**23 wraps, u == 2**23 does not); v clips to
    # 2**23 - 1 = 8388607, which exceeds the largest threshold (2**17 - 1) << 6 = 8388544.
    # t0: u = v = 2**22.  t1: u = 2**23 (kept), v = clip(2**23) = 8388607 > 8388544: spike.  t2: u = 3 * 2**22
    # - 2**24 = -2**22, v = -2**22.
    assert _trace([2**16] * 3, i_decay=0, v_decay=4096, vth=2**17 - 1) == ([4194304, 8388608, -4194304],
                                                                          [4194304, 0, -4194304], [0, 1, 0])
    # E: u <= -2**23 wraps up by 2**24 (-2**23 becomes +2**23); v clips at -(2**23 - 1).
    assert _trace([-(2**16)] * 2, i_decay=0, v_decay=4096, vth=2**17 - 1)[0] == [-4194304, 8388608]
    assert _trace([-(2**16)] * 3, i_decay=4096, v_decay=0, vth=1)[1] == [-4194304, -8388607, -8388607]


def _write_dense_file(path, weight, vth, x_shape=2):
    with h5py.File(path, "w") as f:
        f["layer/0/type"] = np.bytes_("input")
        f["layer/0/shape"] = np.array([1, 1, x_shape])
        f["layer/1/type"] = np.bytes_("dense")
        f["layer/1/shape"] = np.array([1, 1, len(weight)])
        f["layer/1/weight"] = np.array(weight)
        for k, v in {"iDecay": 4096, "vDecay": 0, "vThMant": vth, "refDelay": 1, "gradedSpike": 0}.items():
            f[f"layer/1/neuron/{k}"] = v
        f["layer/1/neuron/type"] = np.bytes_("CUBA")


def test_dense_buffers_one_step_and_keeps_netx_weights_exact(tmp_path):
    # netx's optimize_weight_bits on [[64, -32], [6, 0]]: mixed signs, scale = min(127/64, 128/32) = 1.98,
    # floor(log2) + 1 = 1 bit of shift: weights [[128, -64], [12, 0]] with exponent -1; all divisible by 2
    # (n = 1, minus the sign bit: 0) -> 7 weight bits, Lava truncates 8 - 7 + 1 = 2 low bits (none set).
    w, exp = dense_weights(np.array([[64, -32], [6, 0]]))
    assert w.tolist() == [[128, -64], [12, 0]] and exp == -1
    path = tmp_path / "dense.net"
    _write_dense_file(path, [[64, -32], [6, 0]], vth=90)
    x = np.array([[1, 1], [1, 0], [0, 0], [0, 0]])[:, None, :]
    out = load(path).run(x, record_v=True)
    # the neuron sees W s[t-1]: a_in = [0, 0], [32, 6], [64, 6], [0, 0]; u = a_in << 6 (full current decay);
    # row 0: v = 0, 2048, 6144 > 90 << 6 = 5760 -> spike at step 2, reset to 0; row 1: v = 0, 384, 768, 768
    assert out["u"][0][:, 0].tolist() == [[0, 0], [2048, 384], [4096, 384], [0, 0]]
    assert out["v"][0][:, 0].tolist() == [[0, 0], [2048, 384], [0, 768], [0, 768]]
    assert out["spikes"][0][:, 0].astype(int).tolist() == [[0, 0], [0, 0], [1, 0], [0, 0]]


def _dyadic(rng, shape, lo=-2, hi=7, den=8):
    return torch.tensor(rng.integers(lo, hi, size=shape) / den, dtype=torch.float32)


def _first(spikes):
    """First spike step of every neuron ([T, ...] -> [...]), -1 for neurons that never fire."""
    s = np.asarray(spikes).astype(bool)
    return np.where(s.any(0), s.argmax(0), -1)


def _chip_layers(graph, x, tmp_path):
    path = tmp_path / "net.h5"
    get("loihi2").emit(graph, path)
    net = load(path)
    L = len(net)
    T = x.shape[0]
    xs = np.concatenate([x.numpy().astype(np.int64), np.zeros((L, *x.shape[1:]), np.int64)])
    # netx's staggered reset (reset_offset=1): layer k starts afresh at step k + 1, when the input reaches it
    spk = net.run(xs, reset_interval=T + L, reset_offset=1)["spikes"]
    return [s[k + 1:k + 1 + T] for k, s in enumerate(spk)]  # layer k answers the input k + 1 steps late


def test_emitted_dense_if_lif_network_gives_the_float_spikes_one_step_later_per_layer(tmp_path):
    rng = np.random.default_rng(0)
    net = nn.Sequential(TD(nn.Linear(6, 5)), neuro.nn.IF(threshold=1.0, reset="zero"),
                        TD(nn.Linear(5, 3)), neuro.nn.LIF(beta=0.75, threshold=1.0, reset="zero", reset_delay=False))
    with torch.no_grad():  # multiples of 1/8: exact on the 8-bit integer scale (2**8 here) and in float32
        net[0].layer.weight.copy_(_dyadic(rng, (5, 6)))
        net[0].layer.bias.copy_(_dyadic(rng, (5,), -1, 2))
        net[2].layer.weight.copy_(_dyadic(rng, (3, 5), -1, 7))
        net[2].layer.bias.copy_(_dyadic(rng, (3,), 0, 2))
        x = torch.tensor(rng.random((24, 4, 6)) < 0.5, dtype=torch.float32)
        s1 = net[1](net[0](x))
        s2 = net[3](net[2](s1))
    chip1, chip2 = _chip_layers(neuro.to_nir(net, (6,)), x, tmp_path)
    assert s1.sum() > 0 and s2.sum() > 0
    # IF with integer-exact weights, bias and threshold and the same hard reset: every spike equal
    np.testing.assert_array_equal(chip1, s1.numpy().astype(bool))
    # LIF: Lava truncates 0.75 v towards zero where float32 keeps it: first spikes within one step
    f_float, f_chip = _first(s2.numpy()), _first(chip2)
    assert np.array_equal(f_float >= 0, f_chip >= 0)
    assert np.all(np.abs(f_float - f_chip) <= 1)
    # the simulate path returns the same output layer, aligned the same way
    out = get("loihi2").simulate(neuro.to_nir(net, (6,)), x)
    np.testing.assert_array_equal(out.numpy().astype(bool), chip2)


def test_emitted_conv_network_with_folded_pooling_gives_the_float_spikes(tmp_path):
    rng = np.random.default_rng(1)
    net = nn.Sequential(TD(nn.Conv2d(2, 4, 3, padding=1, bias=False)), neuro.nn.IF(threshold=1.0, reset="zero"),
                        TD(nn.AvgPool2d(2)), TD(nn.Conv2d(4, 4, 3, padding=1, bias=False)),
                        neuro.nn.IF(threshold=1.0, reset="zero"), TD(nn.AvgPool2d(2)), neuro.nn.Flatten(),
                        TD(nn.Linear(16, 3, bias=False)),
                        neuro.nn.LIF(beta=0.75, threshold=1.0, reset="zero", reset_delay=False))
    with torch.no_grad():
        net[0].layer.weight.copy_(_dyadic(rng, (4, 2, 3, 3), -1, 4, 4))
        net[3].layer.weight.copy_(_dyadic(rng, (4, 4, 3, 3), -1, 4, 4))
        net[7].layer.weight.copy_(_dyadic(rng, (3, 16), -1, 7))
        x = torch.tensor(rng.random((16, 2, 2, 8, 8)) < 0.3, dtype=torch.float32)
        s1 = net[1](net[0](x))
        s2 = net[4](net[3](net[2](s1)))
        s3 = net[8](net[7](net[6](net[5](s2))))
    graph = neuro.to_nir(net, (2, 8, 8))
    chip1, chip2, chip3 = _chip_layers(graph, x, tmp_path)
    assert s1.sum() > 0 and s2.sum() > 0 and s3.sum() > 0
    # pooled taps W/4 of multiples of 1/4 are multiples of 1/16: exact in float32 and on the 2**10 scale
    np.testing.assert_array_equal(chip1, s1.numpy().astype(bool))
    np.testing.assert_array_equal(chip2, s2.numpy().astype(bool))
    f_float, f_chip = _first(s3.numpy()), _first(chip3)
    assert np.array_equal(f_float >= 0, f_chip >= 0) and np.all(np.abs(f_float - f_chip) <= 1)


def test_subtractive_reset_graph_keeps_first_spikes_and_reports_the_hard_reset(tmp_path):
    rng = np.random.default_rng(2)
    net = nn.Sequential(TD(nn.Linear(4, 6, bias=False)), neuro.nn.IF(threshold=1.0))  # subtract reset
    with torch.no_grad():
        net[0].layer.weight.copy_(_dyadic(rng, (6, 4), 0, 5))
        x = torch.tensor(rng.random((20, 3, 4)) < 0.4, dtype=torch.float32)
        s = net(x)
    graph = neuro.to_nir(net, (4,))
    rep = get("loihi2").fit(graph)
    assert rep.fits and any("hard reset to 0" in n for n in rep.notes)
    assert any("one step of delay" in n for n in rep.notes)
    chip = get("loihi2").simulate(graph, x).numpy()
    np.testing.assert_array_equal(_first(chip), _first(s.numpy()))  # before any reset the two agree


def test_graded_input_and_integrator_readout_compute_the_float_sums(tmp_path):
    # analog input in multiples of 1/16 in [0, 1): graded messages q = x * 2**k_in are exact (k_in >= 4);
    # a readout without neurons integrates W x + b: its summed output is the float sum of currents
    rng = np.random.default_rng(3)
    net = nn.Sequential(TD(nn.Linear(5, 3)))
    with torch.no_grad():
        net[0].layer.weight.copy_(_dyadic(rng, (3, 5), -4, 5))
        net[0].layer.bias.copy_(_dyadic(rng, (3,), -2, 3))
        x = torch.tensor(rng.integers(0, 16, size=(6, 2, 5)) / 16, dtype=torch.float32)
        ref = net(x)
    out, info = get("loihi2").simulate(neuro.to_nir(net, (5,)), x, return_info=True)
    assert info["input_bits"] == 8 and info["input_scale"] >= 16 and not info["readout_fired"]
    np.testing.assert_array_equal(out.numpy(), ref.numpy())


def test_refuses_layer_types_netx_cannot_build(tmp_path):
    path = tmp_path / "avg.net"
    _write_dense_file(path, [[2, 2]], vth=1)
    with h5py.File(path, "a") as f:
        f["layer/2/type"] = np.bytes_("average")
        f["layer/2/shape"] = np.array([1, 1, 1])
    with pytest.raises(ValueError, match="'average'"):
        load(path)
    # pooling that cannot be folded (stride != kernel) is a violation and nothing is written, even forced
    net = nn.Sequential(TD(nn.Conv2d(1, 2, 3)), neuro.nn.IF(), TD(nn.AvgPool2d(2, stride=1)), neuro.nn.Flatten(),
                        TD(nn.Linear(2 * 5 * 5, 2)), neuro.nn.IF())
    graph = neuro.to_nir(net, (1, 8, 8))
    rep = get("loihi2").fit(graph)
    assert not rep.fits and "pooling folded into the next layer" in str(rep)
    with pytest.raises(TargetError):
        get("loihi2").emit(graph, tmp_path / "x.h5", force=True)
    assert not (tmp_path / "x.h5").exists()


def test_threshold_beyond_17_bits_is_a_violation():
    net = nn.Sequential(TD(nn.Linear(2, 2, bias=False)), neuro.nn.IF(threshold=1e6))
    with torch.no_grad():
        net[0].layer.weight.fill_(0.5)
    rep = get("loihi2").fit(neuro.to_nir(net, (2,)))
    # vThMant <= 2**17 - 1 bounds the layer scale to 2**-3 (1e6 * 2**-3 = 125000), where 0.5 rounds to 0
    assert not rep.fits and "all round to 0" in str(rep)


def test_converted_digits_cnn_bit_accurate_accuracy_within_two_points():
    """The demo's converted CNN, converted for the chip (hard reset, no initial membrane, bias shift
    threshold/T per step), run bit-accurately from its netx file at T=16: within 2 points of the float SNN of
    the default conversion, and within 1 point of its own float model."""
    import digits_models as dm

    torch.manual_seed(0)
    xtr, ytr, xte, yte = dm.digits_split()
    ann = dm.train(dm.cnn("avg"), xtr, ytr, epochs=10)  # the demo trains 30 epochs; 10 keep the test short
    T = 16
    x = xte.unsqueeze(0).expand(T, *xte.shape)
    snn = neuro.convert.ann_to_snn(ann, xtr[:512], progress=False)
    chip_snn = neuro.convert.ann_to_snn(ann, xtr[:512], progress=False, reset="zero", v_init=0.0,
                                        bias_shift_timesteps=T // 2)
    with torch.no_grad():
        full = float((snn(x).sum(0).argmax(-1) == yte).float().mean())
        own = float((chip_snn(x).sum(0).argmax(-1) == yte).float().mean())
    graph = neuro.to_nir(chip_snn, (1, 8, 8))
    assert get("loihi2").fit(graph).fits
    chip = get("loihi2").accuracy(graph, xte, yte, T)
    assert full - chip <= 0.02 and abs(own - chip) <= 0.01, (full, own, chip)
