"""A bit-accurate model of what lava-dl's netx builds from an HDF5 network file and what Lava's fixed-point
processes then compute, written from their public source (read, not copied):

* lava-dl ``src/lava/lib/dl/netx/hdf5.py`` (``Network._create``, ``create_input``, ``create_dense``,
  ``create_conv``, ``get_neuron_params``) and ``netx/utils.py`` (``NetDict``, ``optimize_weight_bits``);
  ``netx/blocks/process.py`` (``AbstractBlock._neuron``: per-neuron or per-channel bias);
* Lava ``src/lava/proc/lif/models.py`` (``AbstractPyLifModelFixed.subthr_dynamics``, ``PyLifModelBitAcc``),
  ``src/lava/proc/dense/models.py`` (``PyDenseModelBitAcc.run_spk``), ``src/lava/utils/weightutils.py``
  (``clip_weights``, ``truncate_weights``), ``src/lava/proc/conv/models.py`` (``PyConvModelBinaryFixed``) and
  ``src/lava/proc/conv/utils.py`` (``conv``, ``signed_clamp``).

What netx builds. Layers ``layer/0..n-1`` in order, each with a ``type``; only ``input``, ``dense``, ``conv``
and ``flatten`` are built here (netx also has ``dense_rec`` and ``dense_comp``; it raises NotImplementedError
for ``pool``, ``average``, ``convT``, ``unpool``, ``concat``); any other type is refused by name. Shapes
are stored as (x, y, z) = (W, H, C). An ``input`` layer without a ``neuron`` group only fixes the input
shape (current netx: the network's input port then feeds the first synapse directly, with
``Network(..., input_message_bits=B)`` for graded input); an ``input`` layer with a neuron group is a CUBA
layer driven by the network input on its ``a_in`` (no synapse) and by its bias. ``flatten`` makes the next
dense layer read the previous output transposed from (x, y, z) to (z, y, x) and flattened, i.e. in
(C, H, W) order, which is the order this model keeps every map in.

Per step ``t`` (all integers; ``>>`` is an arithmetic shift):

* Dense synapse: netx derives ``(W', bits, exp, sign) = optimize_weight_bits(W)`` from the stored integers
  (``W' = W << sb``, ``exp = -sb``); Lava clips ``W'`` to 8 bits and truncates ``8 - bits (+1 if mixed)``
  low bits, then ``a_buff = (W' . s[t]) >> sb``. The output is **buffered one step**: the neuron receives
  at step t what the synapse computed from the spikes of step t-1 (0 at the first step).
* Conv synapse: netx reads the stored ``weight`` as (C_out, C_in, H, W) and hands Lava a kernel that Lava's
  ``conv`` flips back, so the stored kernel acts as a PyTorch cross-correlation; netx does not optimise conv
  weight bits and Lava uses them as they are; the result wraps to 24 signed bits (``signed_clamp``) and is
  buffered one step like Dense.
* CUBA LIF (``PyLifModelBitAcc``), netx passing ``du = iDecay - 1``, ``dv = vDecay``, ``bias_exp = 6``,
  ``vth = vThMant``, and the model adding ``ds_offset = 1`` to ``du`` (so the current decay is ``iDecay``)
  and ``dm_offset = 0`` to ``dv``::

      u = sign(u (4096 - iDecay)) (|u (4096 - iDecay)| >> 12) + (a_in << 6)
      u -= 2**24 if u > 2**23;  u += 2**24 if u <= -2**23           (24-bit wrap, exactly as Lava tests it)
      v = sign(v (4096 - vDecay)) (|v (4096 - vDecay)| >> 12) + u + (bias << 6)
      v = clip(v, -(2**23 - 1), 2**23 - 1)
      s = v > (vThMant << 6);  v[s] = 0                               (strict threshold, hard reset)

  A dense layer without a ``neuron`` group gets netx's default non-leaky integrator (iDecay 0, vDecay 4096,
  vThMant ``1 << 17``).

Each synaptic layer therefore adds one step of delay: the spikes of the k-th synaptic layer at step t
answer the network input of step t - k.

Example:
    >>> import numpy as np
    >>> from neuro.hardware_targets.loihi2_reference import lif_step
    >>> u, v, s = lif_step(np.array([0]), np.array([0]), np.array([3]), i_decay=4096, v_decay=0, vth=2, bias=0)
    >>> int(u[0]), int(v[0]), bool(s[0])   # 3 << 6 = 192 > 2 << 6 = 128: spike, hard reset
    (192, 0, True)
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

BUILT = ("input", "dense", "conv", "flatten")
MAX_UV = 1 << 23  # AbstractPyLifModelFixed.max_uv_val (24-bit states)
DECAY_UNITY = 1 << 12


def _shr_trunc(x: np.ndarray, shift: int) -> np.ndarray:
    """``sign(x) * (|x| >> shift)``: truncation towards zero, as Lava's fixed-point decay."""
    return np.sign(x) * (np.abs(x) >> shift)


def lif_step(u, v, a_in, *, i_decay: int, v_decay: int, vth: int, bias=0):
    """One step of Lava's ``PyLifModelBitAcc`` as netx configures it (see the module docstring).

    Args:
        u, v: int arrays, the 24-bit current and voltage before the step.
        a_in: int array, the synaptic input arriving this step (already delayed by the synapse).
        i_decay, v_decay: the file's ``iDecay`` and ``vDecay`` (12 bit, 0..4096).
        vth: the file's ``vThMant`` (17 bit).
        bias: the file's ``bias`` (``bias_mant``), shifted left by netx's ``bias_exp = 6``.
    Returns:
        ``(u, v, spikes)`` after the step.
    """
    u = np.asarray(u, np.int64)
    v = np.asarray(v, np.int64)
    decayed = _shr_trunc(u * (DECAY_UNITY - int(i_decay)), 12) + (np.asarray(a_in, np.int64) << 6)
    wrapped = np.where(decayed > MAX_UV, decayed - 2 * MAX_UV, decayed)
    u_new = np.where(wrapped <= -MAX_UV, decayed + 2 * MAX_UV, wrapped)
    v_new = _shr_trunc(v * (DECAY_UNITY - int(v_decay)), 12) + u_new + (np.asarray(bias, np.int64) << 6)
    v_new = np.clip(v_new, -MAX_UV + 1, MAX_UV - 1)
    spikes = v_new > (int(vth) << 6)
    v_new = np.where(spikes, 0, v_new)
    return u_new, v_new, spikes


def optimize_weight_bits(weight: np.ndarray) -> tuple[np.ndarray, int, int, str]:
    """lava-dl ``netx/utils.py::optimize_weight_bits``: ``(W << sb, num_weight_bits, -sb, sign_mode)``.

    Raises ValueError for matrices netx clips with a warning or shifts by a negative amount (outside
    [-256, 254] for mixed signs): the emitter never writes such weights, and the model refuses to guess.
    """
    w = np.asarray(weight, np.int64)
    wmax, wmin = int(w.max()), int(w.min())
    if (wmax > 254 and wmin < 0) or (wmin < -256 and wmax > 0):
        raise ValueError(f"weight range [{wmin}, {wmax}] is clipped by netx (mixed signs need [-256, 254])")
    if wmax == 0 and wmin == 0:
        return w, 8, 0, "excitatory"
    if wmax < 0:
        sign, signed, scale = "inhibitory", 0, -256 / wmin
    elif wmin >= 0:
        sign, signed, scale = "excitatory", 0, 255 / wmax
    else:
        sign, signed, scale = "mixed", 1, min(127 / wmax, -128 / wmin)
    sb = int(np.floor(np.log2(scale))) + signed
    if sb < 0:
        raise ValueError(f"weight range [{wmin}, {wmax}] needs a negative shift in netx's optimize_weight_bits")
    n = 8
    while n > 0 and np.any(w % (1 << n)):
        n -= 1
    n -= signed
    return w << sb, 8 - sb - n, -sb, sign


def dense_weights(weight: np.ndarray) -> tuple[np.ndarray, int]:
    """The weights Lava's ``PyDenseModelBitAcc`` multiplies by, and its weight exponent: netx's
    ``optimize_weight_bits``, then Lava's ``clip_weights(..., 8)`` and ``truncate_weights``."""
    w, bits, exp, sign = optimize_weight_bits(weight)
    mixed = int(sign == "mixed")
    if sign == "inhibitory":
        w = -w
    w = np.clip(w, -(1 << 8) * mixed, (1 << 8) - 1)
    trunc = 8 - bits + mixed
    if trunc > 0:
        w = (w >> trunc) << trunc
    if sign == "inhibitory":
        w = -w
    return w, exp


def _conv_int(s: np.ndarray, weight: np.ndarray, stride, padding, dilation, groups) -> np.ndarray:
    """Integer cross-correlation ``[B, C_in, H, W] -> [B, C_out, H', W']`` (float64 is exact below 2**53)."""
    import torch
    import torch.nn.functional as F

    out = F.conv2d(torch.from_numpy(s.astype(np.float64)), torch.from_numpy(weight.astype(np.float64)),
                   stride=tuple(int(a) for a in stride), padding=tuple(int(a) for a in padding),
                   dilation=tuple(int(a) for a in dilation), groups=int(groups))
    return np.rint(out.numpy()).astype(np.int64)


def signed_clamp(x: np.ndarray, bits: int) -> np.ndarray:
    """Lava ``conv/utils.py::signed_clamp``: wrap to ``bits`` signed bits."""
    base = 1 << bits
    return (x + base // 2) % base - base // 2


@dataclass
class NetxLayer:
    """One layer netx builds: a synapse (``dense`` or ``conv``) and its CUBA neurons, or the input layer."""

    kind: str
    shape: tuple  # (C, H, W) or (N,): the order this model keeps maps in
    neuron: dict
    weight: np.ndarray | None = None
    weight_exp: int = 0
    bias: np.ndarray | int = 0
    conv: dict = field(default_factory=dict)
    flatten_before: bool = False


def _neuron_fields(group) -> dict:
    kind = group["type"][()]
    kind = kind.decode() if isinstance(kind, bytes) else str(kind)
    if kind not in ("CUBA", "LOIHI"):
        raise ValueError(f"neuron type {kind!r} is not modelled (only CUBA/LOIHI, netx's LIF)")
    return {"type": kind, "iDecay": int(group["iDecay"][()]), "vDecay": int(group["vDecay"][()]),
            "vThMant": int(group["vThMant"][()])}


def _chw(xyz) -> tuple:
    x, y, z = (int(a) for a in np.asarray(xyz).reshape(-1))
    return (z,) if x == 1 and y == 1 else (z, y, x)


def _bias(layer, shape) -> np.ndarray | int:
    """netx ``AbstractBlock._neuron``: a bias per neuron or per channel (channel-wise broadcast)."""
    if "bias" not in layer:
        return 0
    b = np.asarray(layer["bias"][()]).astype(np.int64)  # NetDict copies it as int
    if len(shape) == 1:
        return b.reshape(shape)
    if b.size == shape[0]:
        return np.broadcast_to(b.reshape(-1, 1, 1), shape).copy()
    if b.size == int(np.prod(shape)):  # stored as (x, y, z): reorder to (C, H, W)
        return b.reshape(shape[2], shape[1], shape[0]).transpose(2, 1, 0).copy()
    raise ValueError(f"bias of shape {b.shape} cannot be broadcast to neurons of shape {shape}")


class NetxNetwork:
    """The layers netx builds from a file, run step by step in Lava's fixed-point arithmetic.

    Example:
        >>> import tempfile, os, h5py, numpy as np
        >>> from neuro.hardware_targets.loihi2_reference import load
        >>> path = os.path.join(tempfile.mkdtemp(), "tiny.net")
        >>> with h5py.File(path, "w") as f:
        ...     f["layer/0/type"] = b"input"; f["layer/0/shape"] = np.array([1, 1, 2])
        ...     f["layer/1/type"] = b"dense"; f["layer/1/shape"] = np.array([1, 1, 1])
        ...     f["layer/1/weight"] = np.array([[4, 2]])
        ...     for k, val in dict(iDecay=4096, vDecay=0, vThMant=5).items():
        ...         f[f"layer/1/neuron/{k}"] = val
        ...     f["layer/1/neuron/type"] = b"CUBA"
        >>> out = load(path).run(np.ones((4, 1, 2), np.int64))
        >>> out["spikes"][-1][:, 0, 0].astype(int).tolist()   # input 4 + 2 = 6 > 5 a step, one step late
        [0, 1, 1, 1]
    """

    def __init__(self, layers: list[NetxLayer], input_shape: tuple, attrs: dict | None = None):
        self.layers = layers
        self.input_shape = input_shape
        self.attrs = attrs or {}

    def __len__(self) -> int:
        return len(self.layers)

    def run(self, x: np.ndarray, record_v: bool | list = False, reset_interval: int | None = None,
            reset_offset: int = 0) -> dict:
        """Run ``x`` (``[T, B, *input_shape]`` integers: 0/1 spikes, or graded values when the network was
        loaded for graded input) through every layer.

        ``reset_interval`` / ``reset_offset`` are netx's ``Network`` arguments of the same names: the
        neurons become Lava's ``LIFReset`` (``PyLifResetModelBitAcc``), and built layer ``i`` sets ``u = v = 0``
        before its update at hardware time steps ``n`` (counted from 1) with ``n % reset_interval ==
        (reset_offset + 1 + i) % reset_interval``, staggered by layer so each layer starts afresh when a
        sample's input reaches it. Synapse buffers are not reset.

        Returns ``{"spikes": [per layer [T, B, *shape] bool], "v": [...], "u": [...]}``, one entry per built
        layer (the input layer without neurons has none); ``v`` and ``u`` (after the step's reset) only with
        ``record_v``: True for every layer, or a list of layer indices (the others hold None).
        """
        x = np.asarray(x)
        if x.ndim < 2 or tuple(x.shape[2:]) != tuple(self.input_shape):
            raise ValueError(f"x must be [T, B, {', '.join(map(str, self.input_shape))}], got {tuple(x.shape)}")
        if not np.issubdtype(x.dtype, np.integer) and not np.array_equal(x, np.round(x)):
            raise ValueError("x must hold integers (spikes or graded integer messages)")
        x = x.astype(np.int64)
        T, B = x.shape[:2]
        state = [(np.zeros((B, *ly.shape), np.int64), np.zeros((B, *ly.shape), np.int64),
                  np.zeros((B, *ly.shape), np.int64)) for ly in self.layers]  # u, v, synapse buffer
        spikes = [np.zeros((T, B, *ly.shape), bool) for ly in self.layers]
        n = len(self.layers)
        rec = set(range(n)) if record_v is True else {i % n for i in (record_v or [])}
        vs = [np.zeros((T, B, *ly.shape), np.int64) if i in rec else None for i, ly in enumerate(self.layers)]
        us = [np.zeros((T, B, *ly.shape), np.int64) if i in rec else None for i, ly in enumerate(self.layers)]
        if reset_interval is not None and (not isinstance(reset_interval, int) or reset_interval < 1):
            raise ValueError(f"reset_interval must be an int >= 1 or None, got {reset_interval!r}")
        for t in range(T):
            s_prev = x[t]
            for i, ly in enumerate(self.layers):
                u, v, buf = state[i]
                if reset_interval is not None and (t + 1) % reset_interval == (reset_offset + 1 + i) % reset_interval:
                    u, v = np.zeros_like(u), np.zeros_like(v)
                if ly.kind == "input":
                    a_in = s_prev  # the network input drives the input neurons' a_in directly (no synapse)
                else:
                    a_in = buf  # what the synapse computed one step ago
                    buf = self._synapse(ly, s_prev)
                n = ly.neuron
                u, v, s = lif_step(u, v, a_in, i_decay=n["iDecay"], v_decay=n["vDecay"], vth=n["vThMant"],
                                   bias=ly.bias)
                state[i] = (u, v, buf)
                spikes[i][t] = s
                if i in rec:
                    vs[i][t], us[i][t] = v, u
                s_prev = s.astype(np.int64)
        out = {"spikes": spikes}
        if rec:
            out["v"], out["u"] = vs, us
        return out

    @staticmethod
    def _synapse(ly: NetxLayer, s: np.ndarray) -> np.ndarray:
        B = s.shape[0]
        if ly.kind == "dense":
            acc = s.reshape(B, -1) @ ly.weight.T
            acc = acc << ly.weight_exp if ly.weight_exp > 0 else acc >> -ly.weight_exp
            return acc.reshape(B, *ly.shape)
        c = ly.conv
        return signed_clamp(_conv_int(s, ly.weight, c["stride"], c["padding"], c["dilation"], c["groups"]), 24)


def load(path, graded_input: bool = False) -> NetxNetwork:
    """Read a netx HDF5 file with h5py and build the layers netx builds (``input``, ``dense``, ``conv``,
    ``flatten``); any other layer type raises ValueError naming it. ``graded_input`` is netx's
    ``input_message_bits > 0``: the first synapse multiplies integer messages instead of 0/1 spikes."""
    import h5py

    layers: list[NetxLayer] = []
    with h5py.File(path, "r") as f:
        if "layer" not in f:
            raise ValueError(f"{path}: no 'layer' group (not a netx file)")
        grp = f["layer"]
        attrs = dict(f.attrs)
        input_shape = None
        flatten_next = False
        for i in range(len(grp)):
            ly = grp[str(i)]
            kind = ly["type"][()]
            kind = kind.decode() if isinstance(kind, bytes) else str(kind)
            if kind not in BUILT:
                raise ValueError(f"{path}: layer {i} has type {kind!r}, which this model (and netx for pool, "
                                 f"average, convT, unpool, concat) does not build; built types: {', '.join(BUILT)}")
            if kind == "flatten":
                flatten_next = True
                continue
            shape = _chw(ly["shape"][()])
            if kind == "input":
                if "neuron" in ly:
                    layers.append(NetxLayer("input", shape, _neuron_fields(ly["neuron"]), bias=_bias(ly, shape)))
                input_shape = shape
                continue
            prev = layers[-1].shape if layers else input_shape
            if prev is None:
                raise ValueError(f"{path}: layer {i} ({kind}) has no input shape before it")
            neuron = _neuron_fields(ly["neuron"]) if "neuron" in ly else \
                {"type": "CUBA", "iDecay": 0, "vDecay": 4096, "vThMant": 1 << 17}  # netx's default integrator
            if kind == "dense":
                w = np.asarray(ly["weight"][()]).astype(np.int64)
                if w.ndim == 1:
                    w = w.reshape(int(np.prod(shape)), -1)
                if w.shape[1] != int(np.prod(prev)):
                    raise ValueError(f"{path}: layer {i} dense weight {w.shape} does not take input {prev}")
                w, exp = dense_weights(w)
                layers.append(NetxLayer("dense", shape, neuron, w, exp, _bias(ly, shape),
                                        flatten_before=flatten_next))
            else:
                w = np.asarray(ly["weight"][()]).astype(np.int64)
                w = w.reshape(w.shape[:4])  # (C_out, C_in/groups, H, W) as netx reads it
                # netx reverses the stored pairs to hand Lava (x, y): the file holds them as (H, W)
                conv = {k: np.broadcast_to(np.asarray(ly[k][()]).reshape(-1), 2).copy()
                        for k in ("stride", "padding", "dilation")}
                conv["groups"] = int(np.asarray(ly["groups"][()]).reshape(-1)[0]) if "groups" in ly else 1
                if len(prev) != 3 or w.shape[1] * conv["groups"] != prev[0]:
                    raise ValueError(f"{path}: layer {i} conv weight {w.shape} does not take input {prev}")
                layers.append(NetxLayer("conv", shape, neuron, w, 0, _bias(ly, shape), conv))
            flatten_next = False
    if input_shape is None and not layers:
        raise ValueError(f"{path}: no layers")
    return NetxNetwork(layers, input_shape if input_shape is not None else layers[0].shape, attrs)


__all__ = ["lif_step", "optimize_weight_bits", "dense_weights", "signed_clamp", "load", "NetxNetwork",
           "NetxLayer"]
