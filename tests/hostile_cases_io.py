"""Hostile inputs for files, NIR reading and writing, chip-target emitters and the command line.

Each case is one line of data (see ``hostile.py``). Helpers below build the inputs (files on disk, broken
graphs) and turn the outcomes that are not plain exceptions into exceptions to judge:

- ``_cli(...)`` runs ``neuro.cli.main`` in-process and raises :class:`CliFailure` carrying the exit code
  and the error line, after asserting the failure is well-formed: exactly one ``error:`` line on stderr and
  no traceback;
- ``_keeps(path_maker, write)`` runs a write that must fail over an existing file, asserts the old file is
  byte-identical and no temporary file is left behind, then re-raises the write's error.
"""

from __future__ import annotations

import atexit
import contextlib
import io
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import h5py
import nir
import numpy as np
import torch
from hostile import Case
from torch import nn

import neuro
from neuro.demo import run_demo
from neuro.files import atomic_output, check_output_path, save_figure, write_text
from neuro.nn import TimeDistributed as TD

F = np.float32


class CliFailure(Exception):
    """A well-formed CLI failure: message 'exit <code>: <the error line>'."""


_TMP_ROOT: list[str] = []


def _tmp() -> Path:
    """A fresh directory under one per-process root that is removed when the process exits (the cases build
    hundreds of small files; none is left in the system temp folder)."""
    if not _TMP_ROOT:
        _TMP_ROOT.append(tempfile.mkdtemp(prefix="neuro-hostile-"))
        atexit.register(shutil.rmtree, _TMP_ROOT[0], ignore_errors=True)
    return Path(tempfile.mkdtemp(dir=_TMP_ROOT[0]))


# ---------------------------------------------------------------------------------------------- graphs

def _lif(n=2, **kw):
    p = {"tau": np.full(n, 1e-3, F), "r": np.ones(n, F), "v_leak": np.zeros(n, F), "v_threshold": np.ones(n, F),
         "v_reset": np.zeros(n, F)}
    p.update(kw)
    return nir.LIF(**p)


def _g(nodes=None, edges=None, drop=(), **replace):
    """A valid graph input[3] -> fc (Affine 2x3) -> lif[2] -> output[2], with nodes replaced/added/dropped."""
    base = {"input": nir.Input({"input": np.array([3])}),
            "fc": nir.Affine(weight=np.ones((2, 3), F), bias=np.zeros(2, F)),
            "lif": _lif(), "output": nir.Output({"output": np.array([2])})}
    base.update(nodes or {})
    base.update(replace)
    for k in drop:
        base.pop(k)
    e = [("input", "fc"), ("fc", "lif"), ("lif", "output")] if edges is None else edges
    return nir.NIRGraph(nodes=base, edges=e, type_check=False)


def _w(weight, bias=None):
    weight = np.asarray(weight, F)
    return nir.Affine(weight=weight, bias=np.zeros(weight.shape[0], F) if bias is None else np.asarray(bias, F))


def _inp(shape):
    node = nir.Input({"input": np.array([1])})
    node.input_type = {"input": np.asarray(shape)}
    return node


def _conv(in_shape=(1, 4, 4), weight=(2, 1, 3, 3), **kw):
    p = {"input_shape": None, "weight": np.ones(weight, F), "stride": 1, "padding": 0, "dilation": 1, "groups": 1,
         "bias": np.zeros(weight[0], F)}
    p.update(kw)
    node = nir.Conv2d(**p)
    return node


def _set(node, **attrs):
    """``node`` with attributes set after construction (what a file's values can be; nir's constructors
    would refuse some of them)."""
    for k, v in attrs.items():
        setattr(node, k, v)
    return node


def _conv_g(conv, in_shape=(1, 4, 4), out=(2, 2, 2)):
    return _g(nodes={"input": nir.Input({"input": np.array(in_shape)}), "fc": conv,
                     "lif": _lif(int(np.prod(out)), **{k: np.full(out, v, F) for k, v in
                                                       (("tau", 1e-3), ("r", 1), ("v_leak", 0), ("v_threshold", 1),
                                                        ("v_reset", 0))}),
                     "output": nir.Output({"output": np.array(out)})})


def _pool(kernel=2, stride=2, padding=0, in_shape=(1, 4, 4)):
    return _g(nodes={"input": nir.Input({"input": np.array(in_shape)}),
                     "fc": nir.AvgPool2d(kernel_size=np.array([kernel, kernel]), stride=np.array([stride, stride]),
                                         padding=np.array([padding, padding])),
                     "lif": nir.Scale(scale=np.ones(1, F)), "output": nir.Output({"output": np.array([1, 2, 2])})})


def _run(graph, x=None, **kw):
    net = neuro.from_nir(graph, **kw)
    return net(torch.rand(4, 2, 3) if x is None else x)


# ----------------------------------------------------------------------------------------------- files

def _file(graph=None) -> Path:
    path = _tmp() / "net.nir"
    nir.write(str(path), graph if graph is not None else _g())
    return path


def _h5(build) -> Path:
    path = _tmp() / "x.nir"
    with h5py.File(path, "w") as f:
        build(f)
    return path


def _text(content: str | bytes, name="x.nir") -> Path:
    path = _tmp() / name
    path.write_bytes(content if isinstance(content, bytes) else content.encode())
    return path


def _truncated() -> Path:
    path = _file()
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    return path


def _unknown_type(f):
    f.create_dataset("version", data=b"1.0.8")
    n = f.create_group("node")
    n.create_dataset("type", data=b"NIRGraph")
    nodes = n.create_group("nodes")
    n.create_dataset("edges", data=np.array([[b"input", b"spooky"]]))
    g = nodes.create_group("input")
    g.create_dataset("type", data=b"Input")
    g.create_dataset("shape", data=np.array([3]))
    g = nodes.create_group("spooky")
    g.create_dataset("type", data=b"QuantumNeuron")


def _untyped(f):
    n = f.create_group("node")
    n.create_dataset("type", data=b"NIRGraph")
    nodes = n.create_group("nodes")
    n.create_dataset("edges", data=np.zeros((0, 2), "S1"))
    nodes.create_group("mystery")


def _huge_dataset(f):
    n = f.create_group("node")
    n.create_dataset("type", data=b"NIRGraph")
    nodes = n.create_group("nodes")
    n.create_dataset("edges", data=np.zeros((0, 2), "S1"))
    g = nodes.create_group("fc")
    g.create_dataset("type", data=b"Linear")
    g.create_dataset("weight", shape=(2**20, 2**10), dtype="f4", chunks=(1024, 64))  # declared, never written


def _no_tau() -> Path:
    path = _file()
    with h5py.File(path, "a") as f:
        del f["node/nodes/lif/tau"]
    return path


def _keeps(write, name="old.nir"):
    """Run ``write(path)`` over an existing file; it must fail, leave the file byte-identical and no temp."""
    folder = _tmp()
    path = folder / name
    old = b"the user's precious old file\n" * 7
    path.write_bytes(old)
    try:
        write(path)
    except BaseException as exc:
        assert path.read_bytes() == old, "the old file was changed by a failed write"
        left = sorted(p.name for p in folder.iterdir() if p.name != name)
        assert not left, f"temporary files left behind: {left}"
        raise exc
    raise AssertionError("the write did not fail")


def _writes_new(write, name="new.nir"):
    """A legal write into an empty folder: only the file itself appears."""
    folder = _tmp()
    path = folder / name
    result = write(path)
    return result, sorted(p.name for p in folder.iterdir())


def _nan_graph():
    return _g(fc=_w([[np.nan, 1, 1], [1, 1, 1]]))


def _bad_meta_graph():
    g = _g()
    g.metadata = {"note": object()}  # h5py cannot store it: nir.write fails part-way through the file
    return g


def _symlink_to_input():
    folder = _tmp()
    src = folder / "in.txt"
    src.write_text("input")
    os.symlink(src, folder / "link.txt")
    return write_text(folder / "link.txt", "out", overwrite=True, inputs=[src])


def _no_file_written(path):
    with atomic_output(path, overwrite=True) as tmp:
        tmp.unlink()


def _raises_inside(path):
    with atomic_output(path, overwrite=True) as tmp:
        tmp.write_bytes(b"half of the new fi")
        raise RuntimeError("writer failed half-way")


def _bad_format_figure(path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, _ = plt.subplots()
    try:
        save_figure(fig, path, overwrite=True, format="no-such-format")
    finally:
        plt.close(fig)


def _under_file():
    folder = _tmp()
    (folder / "afile").write_text("x")
    return folder / "afile" / "net.nir"


# --------------------------------------------------------------------------------------------- targets

class _HalfWriter(neuro.hardware_targets.Target):
    """A target whose toolchain writer dies half-way (as an emitter meeting a bad value does)."""

    name = "halfwriter"
    spec: dict = {}

    def fit(self, graph):
        return neuro.hardware_targets.FitReport(self.name)

    def _write(self, graph, path, report):
        with open(path, "wb") as f:
            f.write(b"partial toolchain file")
        raise ValueError("weight of node 'fc' is NaN: cannot quantise")


def _emit(target, graph=None, **kw):
    return lambda path: neuro.hardware_targets.get(target).emit(graph if graph is not None else _g(), path, **kw)


def _big_speck_graph():
    net = nn.Sequential(TD(nn.Conv2d(1, 2048, 3)), neuro.nn.IF())
    return neuro.to_nir(net, (1, 8, 8))


# ------------------------------------------------------------------------------------------------- CLI

_CACHE: dict = {}


def _cnn_file() -> str:
    """A small conv net as a NIR file (made once per process; never written to by a case)."""
    if "cnn" not in _CACHE:
        torch.manual_seed(0)
        net = nn.Sequential(TD(nn.Conv2d(1, 4, 3, padding=1)), neuro.nn.IF(), TD(nn.AvgPool2d(2)),
                            neuro.nn.Flatten(), TD(nn.Linear(64, 10)), neuro.nn.IF())
        path = _tmp() / "cnn.nir"
        neuro.io.write(path, net, (1, 8, 8))
        _CACHE["cnn"] = str(path)
    return _CACHE["cnn"]


def _cli(*args, expect_ok=False):
    from neuro.cli import main

    err, out = io.StringIO(), io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(out):
        rc = main([str(a) for a in args])
    stderr = err.getvalue()
    assert "Traceback" not in stderr, stderr
    if rc == 0 or expect_ok:
        return rc, out.getvalue(), stderr
    lines = [ln for ln in stderr.splitlines() if "error:" in ln]
    assert len(lines) == 1, f"expected exactly one error line, got: {stderr!r}"
    assert lines[0].startswith("neuro"), lines[0]
    raise CliFailure(f"exit {rc}: {lines[0]}")


def _cli_sub(*args):
    proc = subprocess.run([sys.executable, "-m", "neuro.cli", *map(str, args)], capture_output=True, text=True,
                          timeout=300)
    assert "Traceback" not in proc.stderr, proc.stderr
    lines = [ln for ln in proc.stderr.splitlines() if "error:" in ln]
    assert proc.returncode != 0 and len(lines) == 1, (proc.returncode, proc.stderr)
    raise CliFailure(f"exit {proc.returncode}: {lines[0]}")


def _energy(*extra):
    return _cli("energy", _cnn_file(), "--no-progress", "--devices", "45nm", *extra)


def _sim(*extra):
    return _cli("simulate", _cnn_file(), *extra)


def _emit_cli(output, *extra, src=None):
    return _cli("emit", src or _cnn_file(), "--target", "loihi2", "-o", output, *extra)


def _emit_over_existing():
    path = _tmp() / "out.h5"
    path.write_bytes(b"old")
    try:
        _emit_cli(path)
    finally:
        assert path.read_bytes() == b"old"


def _emit_over_own_input():
    src = _tmp() / "net.nir"
    src.write_bytes(Path(_cnn_file()).read_bytes())
    before = src.read_bytes()
    try:
        _cli("emit", src, "--target", "loihi2", "-o", src, "--overwrite")
    finally:
        assert src.read_bytes() == before


def _patched(exc):
    """Run `neuro info` with its command replaced by one raising ``exc`` (what a bug or Ctrl-C would do)."""
    import neuro.cli_nir as cn

    def boom(args):
        raise exc

    saved = cn.cmd_info
    cn.cmd_info = boom
    try:
        return _cli("info", _cnn_file())
    finally:
        cn.cmd_info = saved


def _user_folder():
    folder = _tmp()
    (folder / "report.md").write_text("my thesis notes")
    try:
        _cli("demo", "--out", folder, "--size", "tiny", "--no-progress")
    finally:
        assert (folder / "report.md").read_text() == "my thesis notes"


def _two_bad_nodes_file():
    return _file(_g(fc=_w([[np.nan, 1, 1], [1, 1, 1]]), lif=_lif(tau=np.full(2, -1.0, F))))


def _ok_rc(expected):
    return lambda r: r[0] == expected and "error:" not in r[2]


# ----------------------------------------------------------------------------------------------- cases

_X = torch.rand(4, 2, 3)

CASES = [
    # from_nir: what is given instead of a graph or a file
    Case("io-from-nir-int", lambda: neuro.from_nir(123), TypeError, r"(?s)graph_or_path.*int"),
    Case("io-from-nir-none", lambda: neuro.from_nir(None), TypeError, "graph_or_path"),
    Case("io-from-nir-empty-path", lambda: neuro.from_nir(""), ValueError, "empty path"),
    Case("io-from-nir-missing-file", lambda: neuro.from_nir(_tmp() / "gone.nir"), FileNotFoundError, "no NIR file"),
    Case("io-from-nir-missing-is-valueerror", lambda: neuro.from_nir(_tmp() / "gone.nir"), ValueError,
         "gone.nir"),
    Case("io-from-nir-folder", lambda: neuro.from_nir(_tmp()), ValueError, "is a folder"),
    Case("io-from-nir-text-file", lambda: neuro.from_nir(_text("not hdf5 at all")), ValueError,
         r"x\.nir is not a readable NIR file"),
    Case("io-from-nir-empty-file", lambda: neuro.from_nir(_text(b"")), ValueError, "not a readable NIR file"),
    Case("io-from-nir-png-bytes", lambda: neuro.from_nir(_text(b"\x89PNG\r\n\x1a\n" + b"\0" * 64)), ValueError,
         "not HDF5, or truncated"),
    Case("io-from-nir-truncated", lambda: neuro.from_nir(_truncated()), ValueError, r"net\.nir"),
    Case("io-from-nir-hdf5-not-nir", lambda: neuro.from_nir(_h5(lambda f: f.create_dataset("x", data=[1]))),
         ValueError, "HDF5 file but not a NIR file"),
    Case("io-from-nir-unknown-node-type", lambda: neuro.from_nir(_h5(_unknown_type)), ValueError,
         r"(?s)'spooky'.*unknown NIR node type 'QuantumNeuron'"),
    Case("io-from-nir-node-without-type", lambda: neuro.from_nir(_h5(_untyped)), ValueError,
         r"(?s)'mystery'.*no 'type'"),
    Case("io-from-nir-huge-declared-dataset", lambda: neuro.from_nir(_h5(_huge_dataset)), ValueError,
         r"(?s)'fc'.*weight declares.*MAX_ELEMENTS"),
    Case("io-from-nir-missing-field", lambda: neuro.from_nir(_no_tau()), ValueError, r"(?s)net\.nir.*not a readable"),
    Case("io-from-nir-file-nan-weight", lambda: neuro.from_nir(_file(_nan_graph())), ValueError,
         r"(?s)net\.nir.*fc: weight.*NaN"),
    Case("io-from-nir-file-two-bad-nodes", lambda: neuro.from_nir(_two_bad_nodes_file()), ValueError,
         r"(?s)fc: weight.*\n.*lif: tau must be > 0"),
    # from_nir: graph structure
    Case("io-graph-not-a-graph", lambda: neuro.io.check_graph({"input": 1}), TypeError, "nir.NIRGraph"),
    Case("io-graph-unsupported-delay", lambda: _run(_g(lif=nir.Delay(delay=np.ones(2, F)))), ValueError,
         "lif: Delay"),
    Case("io-graph-node-not-nir", lambda: _run(_g(lif="LIF please")), ValueError, "lif: str is not a NIR node"),
    Case("io-graph-nested-subgraph", lambda: _run(_g(lif=_g())), ValueError, "lif: nested NIRGraph"),
    Case("io-graph-edge-to-unknown", lambda: _run(_g(edges=[("input", "fc"), ("fc", "ghost"), ("lif", "output")])),
         ValueError, "'ghost' is not a node"),
    Case("io-graph-edge-from-unknown", lambda: _run(_g(edges=[("input", "fc"), ("nobody", "lif"), ("lif", "output")])),
         ValueError, "'nobody' is not a node"),
    Case("io-graph-duplicate-edge", lambda: _run(_g(edges=[("input", "fc"), ("input", "fc"), ("fc", "lif"),
                                                       ("lif", "output")])), ValueError, "duplicate edge"),
    Case("io-graph-edge-into-input", lambda: _run(_g(edges=[("input", "fc"), ("fc", "lif"), ("lif", "output"),
                                                        ("lif", "input")])), ValueError, "into the Input node"),
    Case("io-graph-edge-out-of-output", lambda: _run(_g(edges=[("input", "fc"), ("fc", "lif"), ("lif", "output"),
                                                           ("output", "fc")])), ValueError, "leaves the Output"),
    Case("io-graph-no-input", lambda: _run(_g(drop=["input"], edges=[("fc", "lif"), ("lif", "output")])),
         ValueError, "no Input node"),
    Case("io-graph-no-output", lambda: _run(_g(drop=["output"], edges=[("input", "fc"), ("fc", "lif")])),
         ValueError, "no Output node"),
    Case("io-graph-edge-triple", lambda: _run(_g(edges=[("input", "fc", "x"), ("fc", "lif"), ("lif", "output")])),
         ValueError, "not a \\(source, target\\) pair"),
    Case("io-graph-edges-none", lambda: _run(nir.NIRGraph(
        nodes=_g().nodes, edges=None, type_check=False)), ValueError, "edges must be a list"),
    Case("io-graph-cycle-without-neuron", lambda: _run(_g(nodes={"sc": nir.Scale(scale=np.ones(2, F))}, edges=[
        ("input", "fc"), ("fc", "sc"), ("sc", "fc"), ("fc", "lif"), ("lif", "output")])), ValueError, r"(?s)cycle.*fc"),
    Case("io-graph-unreachable", lambda: _run(_g(nodes={"island": _lif()},
                                                 edges=[("input", "fc"), ("fc", "lif"), ("lif", "output")])),
         ValueError, r"(?s)unreachable.*island"),
    # from_nir: shapes between connected nodes and declared shapes
    Case("io-shape-affine-vs-input", lambda: _run(_g(fc=_w(np.ones((2, 4))))), ValueError,
         r"fc: weight \[2, 4\] takes 4 inputs but the incoming shape is \[3\]"),
    Case("io-shape-neuron-params", lambda: _run(_g(lif=_lif(3))), ValueError, r"lif: tau has shape \[3\]"),
    Case("io-shape-sum-mismatch", lambda: _run(_g(nodes={"fc2": _w(np.ones((5, 3)))},
                                                  edges=[("input", "fc"), ("input", "fc2"), ("fc", "lif"),
                                                         ("fc2", "lif"), ("lif", "output")])), ValueError,
         "lif: sums inputs of different shapes"),
    Case("io-shape-output-declared", lambda: _run(_g(output=nir.Output({"output": np.array([7])}))), ValueError,
         r"output: declares output shape \[7\]"),
    Case("io-shape-input-nan", lambda: _run(_g(input=_inp([np.nan]))), ValueError, "input: input shape"),
    Case("io-shape-input-negative", lambda: _run(_g(input=_inp([-3]))), ValueError, r"(?s)input: input shape.*-3"),
    Case("io-shape-input-zero", lambda: _run(_g(input=_inp([0]))), ValueError, "input: input shape"),
    Case("io-shape-input-huge", lambda: _run(_g(input=_inp([10**6, 10**6]))), ValueError, "MAX_ELEMENTS"),
    Case("io-shape-input-fraction", lambda: _run(_g(input=_inp([2.5]))), ValueError, "whole numbers"),
    Case("io-shape-input-inf", lambda: _run(_g(input=_inp([np.inf]))), ValueError, "input shape"),
    Case("io-shape-input-strings", lambda: _run(_g(input=_inp(["3"]))), ValueError, "input shape must be integers"),
    # from_nir: parameters
    Case("io-param-nan-weight", lambda: _run(_nan_graph()), ValueError, r"(?s)fc: weight has 1 value.*NaN"),
    Case("io-param-inf-bias", lambda: _run(_g(fc=_w(np.ones((2, 3)), [np.inf, 0]))), ValueError, "fc: bias"),
    Case("io-param-1e39-weight", lambda: _run(_g(fc=nir.Affine(weight=np.full((2, 3), 1e39), bias=np.zeros(2)))),
         ValueError, r"(?s)fc: weight.*not finite in float32"),
    Case("io-param-nan-tau", lambda: _run(_g(lif=_lif(tau=np.array([np.nan, 1e-3], F)))), ValueError, "lif: tau"),
    Case("io-param-negative-tau", lambda: _run(_g(lif=_lif(tau=np.array([-1e-3, 1e-3], F)))), ValueError,
         "lif: tau must be > 0"),
    Case("io-param-zero-tau", lambda: _run(_g(lif=_lif(tau=np.zeros(2, F)))), ValueError, "lif: tau must be > 0"),
    Case("io-param-nan-threshold", lambda: _run(_g(lif=_lif(v_threshold=np.array([1, np.nan], F)))), ValueError,
         "lif: v_threshold"),
    Case("io-param-cubalif-tau-syn", lambda: _run(_g(lif=nir.CubaLIF(
        tau_syn=np.array([-1.0, 1.0], F), tau_mem=np.ones(2, F), r=np.ones(2, F), v_leak=np.zeros(2, F),
        v_threshold=np.ones(2, F), v_reset=np.zeros(2, F), w_in=np.ones(2, F)))), ValueError, "lif: tau_syn must be"),
    Case("io-param-string-weight", lambda: _run(_g(fc=nir.Affine(weight=np.array([["a"] * 3] * 2), bias=np.zeros(2)))),
         ValueError, "fc: weight must be numeric"),
    Case("io-param-3d-affine", lambda: _run(_g(fc=nir.Affine(weight=np.ones((2, 3, 1), F), bias=np.zeros(2, F)))),
         ValueError, "fc: weight must be 2-D"),
    Case("io-param-euler-unstable", lambda: _run(_g(lif=_lif(tau=np.full(2, 1e-5, F))), dt=1e-4), ValueError,
         "lif: dt = 0.0001 exceeds tau"),
    # from_nir: convolution, pooling, flatten, scale geometry
    Case("io-conv-channels", lambda: _run(_conv_g(_conv(weight=(2, 3, 3, 3)))), ValueError,
         r"(?s)fc: .*takes 3 channels"),
    Case("io-conv-kernel-too-big", lambda: _run(_conv_g(_conv(weight=(2, 1, 9, 9)))), ValueError,
         r"(?s)fc: kernel.*does not fit"),
    Case("io-conv-stride-zero", lambda: _run(_conv_g(_conv(stride=0))), ValueError, "fc: stride"),
    Case("io-conv-negative-padding", lambda: _run(_conv_g(_conv(padding=-1))), ValueError, "fc: padding"),
    Case("io-conv-groups-zero", lambda: _run(_conv_g(_conv(groups=0))), ValueError, "fc: groups"),
    Case("io-conv-padding-word", lambda: _run(_conv_g(_set(_conv(), padding="full"))), ValueError,
         "fc: padding must be 'same', 'valid'"),
    Case("io-conv-declared-input-shape", lambda: _run(_conv_g(_conv(input_shape=np.array([5, 5])))), ValueError,
         "fc: input_shape"),
    Case("io-conv-nan-dilation", lambda: _run(_conv_g(_conv(dilation=np.nan))), ValueError, "fc: dilation"),
    Case("io-pool-kernel-zero", lambda: _run(_pool(kernel=0)), ValueError, "fc: kernel_size"),
    Case("io-pool-padding-too-big", lambda: _run(_pool(padding=2)), ValueError, r"(?s)fc: padding.*half"),
    Case("io-pool-on-vector", lambda: _run(_g(fc=nir.AvgPool2d(kernel_size=np.array([2, 2]),
                                                               stride=np.array([2, 2]), padding=np.array([0, 0])))),
         ValueError, r"fc: expects a \[C, H, W\] input"),
    Case("io-flatten-dims", lambda: _run(_g(fc=nir.Flatten(input_type={"input": np.array([3])}, start_dim=2,
                                                           end_dim=4))), ValueError, "fc: start_dim=2"),
    Case("io-flatten-declared-input", lambda: _run(_g(fc=nir.Flatten(input_type={"input": np.array([4, 5])},
                                                                     start_dim=0, end_dim=-1))), ValueError,
         "fc: input_type"),
    Case("io-scale-shape", lambda: _run(_g(fc=nir.Scale(scale=np.ones(5, F)))), ValueError, "fc: scale has shape"),
    # from_nir: dt, conventions, metadata, the input at run time
    Case("io-dt-zero", lambda: neuro.from_nir(_g(), dt=0.0), ValueError, "dt must be a finite number > 0"),
    Case("io-dt-nan", lambda: neuro.from_nir(_g(), dt=float("nan")), ValueError, r"(?s)dt.*nan"),
    Case("io-dt-negative", lambda: neuro.from_nir(_g(), dt=-1e-3), ValueError, "dt"),
    Case("io-dt-bool", lambda: neuro.from_nir(_g(), dt=True), TypeError, "dt must be a number"),
    Case("io-dt-string", lambda: neuro.from_nir(_g(), dt="1e-3"), TypeError, "dt must be a number"),
    Case("io-dt-float32-zero", lambda: neuro.from_nir(_g(), dt=1e-50), ValueError, "in float32"),
    Case("io-meta-dt-nan", lambda: neuro.from_nir(nir.NIRGraph(nodes=_g().nodes, edges=_g().edges,
                                                               metadata={"neuro.dt": float("nan")}, type_check=False)),
         ValueError, r"(?s)metadata neuro.dt.*pass dt="),
    Case("io-meta-reset-word", lambda: neuro.from_nir(nir.NIRGraph(nodes=_g().nodes, edges=_g().edges,
                                                                   metadata={"neuro.lif.reset": "banana"},
                                                                   type_check=False)), ValueError,
         "lif: metadata neuro.lif.reset = 'banana'"),
    Case("io-meta-v-init-nan", lambda: neuro.from_nir(nir.NIRGraph(
        nodes={**_g().nodes, "lif": nir.IF(r=np.ones(2, F), v_threshold=np.ones(2, F), v_reset=np.zeros(2, F))},
        edges=_g().edges, metadata={"neuro.lif.v_init": [float("nan"), 0.0]}, type_check=False)), ValueError,
         "lif: metadata neuro.lif.v_init"),
    Case("io-integration-word", lambda: neuro.from_nir(_g(), integration="rk4"), ValueError,
         "integration must be 'euler' or 'exact'"),
    Case("io-convention-unknown", lambda: neuro.from_nir(_g(), convention="brian"), ValueError,
         "unknown NIR convention 'brian'"),
    Case("io-run-wrong-shape", lambda: _run(_g(), torch.rand(4, 2, 5)), ValueError, r"x must have shape \[T, B, 3\]"),
    Case("io-run-numpy-input", lambda: _run(_g(), np.zeros((4, 2, 3), F)), TypeError, "x must be a torch.Tensor"),
    # legal edge cases: checked against independent arithmetic
    Case("io-legal-two-edges-into-output-sum", lambda: (neuro.from_nir(_g(
        nodes={"fc2": nir.Linear(weight=np.full((2, 3), 2.0, F))}, drop=["lif"],
        edges=[("input", "fc"), ("input", "fc2"), ("fc", "output"), ("fc2", "output")]), dt=1e-3)(_X), _X),
        check=lambda r: torch.allclose(r[0], r[1] @ torch.full((3, 2), 3.0), atol=1e-5)),
    Case("io-legal-scalar-params-broadcast", lambda: neuro.from_nir(_g(lif=_lif(
        tau=np.array(1e-3, F), r=np.array(1, F), v_leak=np.array(0, F), v_threshold=np.array(1, F),
        v_reset=np.array(0, F))), dt=1e-4)(_X).shape, check=lambda s: tuple(s) == (4, 2, 2)),
    Case("io-legal-batch-zero", lambda: neuro.from_nir(_g(lif=nir.Scale(scale=np.ones(2, F))), dt=1e-4)(
        torch.zeros(3, 0, 3)).shape, check=lambda s: tuple(s) == (3, 0, 2)),
    # neuro.io.read
    Case("io-read-missing", lambda: neuro.io.read(_tmp() / "nope.nir"), FileNotFoundError, "nope.nir"),
    Case("io-read-nan-file", lambda: neuro.io.read(_file(_nan_graph())), ValueError, r"(?s)net\.nir.*fc: weight"),
    Case("io-read-legal", lambda: neuro.io.read(_file()), check=lambda g: sorted(g.nodes) == ["fc", "input", "lif",
                                                                                              "output"]),
    # to_nir
    Case("io-to-nir-not-a-model", lambda: neuro.to_nir("a model", (3,)), TypeError, "model must be a torch.nn.Module"),
    Case("io-to-nir-shape-zero", lambda: neuro.to_nir(nn.Sequential(TD(nn.Linear(3, 2))), (0,)), ValueError,
         "input_shape"),
    Case("io-to-nir-shape-negative", lambda: neuro.to_nir(nn.Sequential(TD(nn.Linear(3, 2))), (-1, 3)), ValueError,
         r"(?s)input_shape.*\[-1, 3\]"),
    Case("io-to-nir-shape-string", lambda: neuro.to_nir(nn.Sequential(TD(nn.Linear(3, 2))), "3"), TypeError,
         "input_shape"),
    Case("io-to-nir-shape-float", lambda: neuro.to_nir(nn.Sequential(TD(nn.Linear(3, 2))), (2.5,)), TypeError,
         "input_shape"),
    Case("io-to-nir-shape-empty", lambda: neuro.to_nir(nn.Sequential(TD(nn.Linear(3, 2))), ()), TypeError,
         "input_shape"),
    Case("io-to-nir-shape-huge", lambda: neuro.to_nir(nn.Sequential(TD(nn.Linear(3, 2))), (10**9, 10**9)),
         ValueError, r"(?s)input_shape.*at most"),
    Case("io-to-nir-shape-wrong-for-model", lambda: neuro.to_nir(nn.Sequential(TD(nn.Linear(3, 2))), (4,)),
         ValueError, r"does not run on one sample of input_shape \[4\]"),
    Case("io-to-nir-nan-weight", lambda: neuro.to_nir(_nan_model(), (3,)), ValueError, "'0.layer.weight'"),
    Case("io-to-nir-dt-zero", lambda: neuro.to_nir(nn.Sequential(TD(nn.Linear(3, 2))), (3,), dt=0), ValueError, "dt"),
    Case("io-to-nir-dt-nan", lambda: neuro.to_nir(nn.Sequential(TD(nn.Linear(3, 2))), (3,), dt=float("nan")),
         ValueError, "dt"),
    Case("io-to-nir-dt-bool", lambda: neuro.to_nir(nn.Sequential(TD(nn.Linear(3, 2))), (3,), dt=True), ValueError,
         "dt"),
    Case("io-to-nir-alif", lambda: neuro.to_nir(nn.Sequential(TD(nn.Linear(2, 2)), neuro.nn.ALIF(beta=0.9)), (2,)),
         ValueError, "ALIF has no NIR node"),
    # neuro.io.write: the overwrite rule and atomicity
    Case("io-write-existing", lambda: _keeps(lambda p: neuro.io.write(p, _g())), FileExistsError,
         r"(?s)already exists.*overwrite=True"),
    Case("io-write-folder", lambda: neuro.io.write(_tmp(), _g()), IsADirectoryError, "existing folder"),
    Case("io-write-path-none", lambda: neuro.io.write(None, _g()), TypeError, "path must be a str"),
    Case("io-write-path-empty", lambda: neuro.io.write("", _g()), ValueError, "path is empty"),
    Case("io-write-no-input-shape", lambda: neuro.io.write(_tmp() / "m.nir", nn.Sequential(TD(nn.Linear(3, 2)))),
         ValueError, "input_shape is required"),
    Case("io-write-nan-graph-over-old", lambda: _keeps(lambda p: neuro.io.write(p, _nan_graph(), overwrite=True)),
         ValueError, "'fc': weight has NaN"),
    Case("io-write-fails-midway-over-old", lambda: _keeps(lambda p: neuro.io.write(p, _bad_meta_graph(),
                                                                                   overwrite=True)), TypeError, ""),
    Case("io-write-overwrite-string", lambda: neuro.io.write(_tmp() / "m.nir", _g(), overwrite="yes"), TypeError,
         "overwrite must be True or False"),
    Case("io-write-parent-is-file", lambda: neuro.io.write(_under_file(), _g()), NotADirectoryError, "is a file"),
    Case("io-write-legal-new-folder", lambda: _writes_new(lambda p: neuro.io.write(p, _g())),
         check=lambda r: r[1] == ["new.nir"]),
    Case("io-write-legal-overwrite-replaces", lambda: _replace_and_read(),
         check=lambda w: np.array_equal(w, np.full((2, 3), 5.0, F))),
    # neuro.files
    Case("files-write-text-existing", lambda: _keeps(lambda p: write_text(p, "new"), "a.txt"), FileExistsError,
         r"(?s)a.txt.*already exists"),
    Case("files-write-text-over-input", lambda: _keeps(lambda p: write_text(p, "new", overwrite=True, inputs=[p]),
                                                       "a.txt"), ValueError, "is the input file"),
    Case("files-write-text-over-input-symlink", _symlink_to_input, ValueError, "is the input file"),
    Case("files-write-text-folder", lambda: write_text(_tmp(), "x"), IsADirectoryError, "existing folder"),
    Case("files-write-text-bytes-over-old", lambda: _keeps(lambda p: write_text(p, b"bytes", overwrite=True),
                                                           "a.txt"), TypeError, "str"),
    Case("files-save-figure-bad-format", lambda: _keeps(_bad_format_figure, "fig.png"), ValueError,
         "no-such-format"),
    Case("files-atomic-writer-raises", lambda: _keeps(_raises_inside, "a.bin"), RuntimeError, "half-way"),
    Case("files-atomic-writer-no-file", lambda: _keeps(_no_file_written, "a.bin"), RuntimeError, "produced no file"),
    Case("files-check-path-int", lambda: check_output_path(42), TypeError, "path must be a str or os.PathLike"),
    Case("files-parent-is-file", lambda: write_text(_under_file(), "x"), NotADirectoryError, "is a file"),
    # hardware targets: emit and fit through the public API
    Case("hw-emit-existing", lambda: _keeps(_emit("spinnaker"), "net.py"), FileExistsError, "already exists"),
    Case("hw-emit-folder", lambda: _emit("spinnaker")(_tmp()), IsADirectoryError, "existing folder"),
    Case("hw-emit-fails-midway-over-old", lambda: _keeps(lambda p: _HalfWriter().emit(_g(), p, overwrite=True)),
         ValueError, "'fc' is NaN"),
    Case("hw-emit-unknown-target", lambda: neuro.hardware_targets.get("tpu"), ValueError, "unknown target 'tpu'"),
    Case("hw-emit-does-not-fit-writes-nothing", lambda: _keeps(_emit("speck", _big_speck_graph(), overwrite=True),
                                                               "x.json"), ValueError, "does not fit speck"),
    Case("hw-emit-nest-legal", lambda: _writes_new(_emit("nest"), "net.py"),
         check=lambda r: r[0].fits and r[1] == ["net.py"]),
    Case("hw-fit-big-reports-violation", lambda: neuro.hardware_targets.get("speck").fit(_big_speck_graph()),
         check=lambda rep: not rep.fits and any("2048" in str(v) for v in rep.violations)),
    # CLI: sizes and arguments, checked before anything is allocated
    Case("cli-energy-timesteps-zero", lambda: _energy("--input-shape", "1,8,8", "--timesteps", "0"), CliFailure,
         r"(?s)exit 2: neuro energy: error: --timesteps must be in \[1,.*got 0"),
    Case("cli-energy-batch-negative", lambda: _energy("--input-shape", "1,8,8", "--batch", "-1"), CliFailure,
         r"(?s)exit 2: .*--batch.*-1"),
    Case("cli-energy-shape-empty-part", lambda: _energy("--input-shape", "1,,8"), CliFailure,
         r"(?s)exit 2: .*--input-shape.*'1,,8'"),
    Case("cli-energy-shape-zero", lambda: _energy("--input-shape", "0,8,8"), CliFailure,
         r"(?s)exit 2: .*--input-shape"),
    Case("cli-energy-shape-letters", lambda: _energy("--input-shape", "a,b"), CliFailure, "--input-shape"),
    Case("cli-energy-timesteps-expression", lambda: _energy("--input-shape", "1,8,8", "--timesteps", "10**12"),
         CliFailure, r"(?s)exit 2: .*--timesteps: invalid int value: '10\*\*12'"),
    Case("cli-energy-timesteps-1e12", lambda: _energy("--input-shape", "1,8,8", "--timesteps", str(10**12)),
         CliFailure, r"(?s)exit 2: .*--timesteps must be in"),
    Case("cli-energy-total-too-big", lambda: _energy("--input-shape", "1,8,8", "--timesteps", "100000", "--batch",
                                                     "100000"), CliFailure, r"(?s)exit 2: .*more than"),
    Case("cli-energy-layer-too-big", lambda: _energy("--input-shape", "1,8,8", "--timesteps", "4194304", "--batch",
                                                     "1"), CliFailure, r"(?s)exit 2: .*largest layer"),
    Case("cli-energy-rate-above-one", lambda: _energy("--input-shape", "1,8,8", "--rate", "1.5"), CliFailure,
         "--rate must be a probability"),
    Case("cli-energy-rate-nan", lambda: _energy("--input-shape", "1,8,8", "--rate", "nan"), CliFailure, "--rate"),
    Case("cli-energy-dt-zero", lambda: _energy("--input-shape", "1,8,8", "--dt", "0"), CliFailure, "--dt must be"),
    Case("cli-energy-dt-inf", lambda: _energy("--input-shape", "1,8,8", "--dt", "inf"), CliFailure, "--dt"),
    Case("cli-energy-devices-empty-name", lambda: _energy("--input-shape", "1,8,8", "--devices", "45nm,,loihi"),
         CliFailure, "--devices"),
    Case("cli-energy-device-unknown", lambda: _cli("energy", _cnn_file(), "--input-shape", "1,8,8", "--devices",
                                                   "45nmm"), CliFailure, "unknown device '45nmm'"),
    Case("cli-energy-convention-unknown", lambda: _energy("--input-shape", "1,8,8", "--convention", "brian"),
         CliFailure, "unknown NIR convention"),
    Case("cli-energy-seed-negative", lambda: _energy("--input-shape", "1,8,8", "--seed", "-1"), CliFailure,
         "--seed must be in"),
    Case("cli-energy-shape-mismatch", lambda: _energy("--input-shape", "1,8,9"), CliFailure,
         r"(?s)--input-shape 1,8,9 does not match .*input shape 1,8,8"),
    Case("cli-energy-file-nan", lambda: _cli("energy", _file(_nan_graph()), "--input-shape", "3"), CliFailure,
         r"(?s)exit 2: .*net\.nir.*fc: weight"),
    # CLI: outputs
    Case("cli-emit-over-own-input", _emit_over_own_input, CliFailure, r"(?s)exit 2: .*is the input file"),
    Case("cli-emit-existing-folder", lambda: _emit_cli(_tmp()), CliFailure, r"(?s)exit 2: .*existing folder"),
    Case("cli-emit-existing-file", _emit_over_existing, CliFailure, r"(?s)exit 2: .*already exists.*--overwrite"),
    Case("cli-emit-parent-is-file", lambda: _emit_cli(_under_file()), CliFailure, r"(?s)exit 2: .*is a file"),
    Case("cli-emit-unknown-target", lambda: _cli("emit", _cnn_file(), "--target", "tpu", "-o", _tmp() / "x"),
         CliFailure, "unknown target 'tpu'"),
    Case("cli-emit-does-not-fit", lambda: _cli("emit", _file(_big_speck_graph()), "--target", "speck", "-o",
                                               _tmp() / "x.json"), CliFailure, r"(?s)exit 2: .*does not fit.*--force"),
    Case("cli-emit-missing-input", lambda: _emit_cli(_tmp() / "o.h5", src=_tmp() / "gone.nir"), CliFailure,
         "no such file"),
    Case("cli-simulate-existing-raster", lambda: _sim("--input-shape", "1,8,8", "-o", _existing("r.png")),
         CliFailure, "already exists"),
    Case("cli-simulate-raster-over-input", lambda: _sim("--input-shape", "1,8,8", "-o", _cnn_file(), "--overwrite"),
         CliFailure, "is the input file"),
    Case("cli-simulate-timesteps-zero", lambda: _sim("--input-shape", "1,8,8", "--timesteps", "0"), CliFailure,
         "--timesteps"),
    # CLI: files from elsewhere
    Case("cli-info-missing", lambda: _cli("info", _tmp() / "gone.nir"), CliFailure, r"(?s)exit 2: .*no such file"),
    Case("cli-info-folder", lambda: _cli("info", _tmp()), CliFailure, "is a folder"),
    Case("cli-info-text-file", lambda: _cli("info", _text("hello")), CliFailure, "is not a readable NIR file"),
    Case("cli-info-unknown-node-type", lambda: _cli("info", _h5(_unknown_type)), CliFailure, "QuantumNeuron"),
    Case("cli-info-nan-file-says-why", lambda: _cli("info", _file(_nan_graph())),
         check=lambda r: r[0] == 0 and "runs on neuro-snn: no" in r[1] and "fc: weight" in r[1]),
    Case("cli-fit-nan-file", lambda: _cli("fit", _file(_nan_graph()), "--target", "loihi2"), CliFailure,
         r"(?s)exit 2: .*fc: weight"),
    Case("cli-fit-two-problems-one-line", lambda: _cli("fit", _two_bad_nodes_file(), "--target", "loihi2"),
         CliFailure, r"(?s)fc: weight.*; lif: tau must be > 0"),
    Case("cli-fit-does-not-fit-exit-1", lambda: _cli("fit", _file(_big_speck_graph()), "--target", "speck",
                                                     expect_ok=True), check=_ok_rc(1)),
    Case("cli-missing-required", lambda: _cli("fit", _cnn_file()), CliFailure,
         r"(?s)exit 2: neuro fit: error: .*--target"),
    Case("cli-unknown-command", lambda: _cli("teleport"), CliFailure, r"(?s)exit 2: .*invalid choice: 'teleport'"),
    # CLI: what goes wrong inside
    Case("cli-keyboard-interrupt", lambda: _patched(KeyboardInterrupt()), CliFailure,
         "exit 130: neuro info: error: interrupted"),
    Case("cli-memory-error", lambda: _patched(MemoryError()), CliFailure, r"(?s)exit 2: .*out of memory"),
    Case("cli-internal-error", lambda: _patched(RuntimeError("kaboom")), CliFailure,
         r"(?s)exit 2: .*internal error \(RuntimeError: kaboom\)"),
    Case("cli-torch-allocation-failure", lambda: _patched(RuntimeError(
        "[enforce fail at alloc_cpu.cpp:117] DefaultCPUAllocator: can't allocate memory: you tried to allocate "
        "4000000000000 bytes")), CliFailure, "exit 2: .*out of memory"),
    Case("cli-raw-permission-error", lambda: _patched(PermissionError(13, "Permission denied", "/root/x")),
         CliFailure, r"(?s)exit 2: .*Permission denied: /root/x"),
    Case("cli-demo-out-is-file", lambda: _cli("demo", "--out", _existing("f.txt"), "--no-progress"), CliFailure,
         "is a file, not a folder"),
    Case("cli-demo-folder-not-a-demo-run", _user_folder, CliFailure, r"(?s)not a previous demo run.*--overwrite"),
    Case("cli-demo-size-unknown", lambda: _cli("demo", "--size", "huge"), CliFailure, "invalid choice: 'huge'"),
    Case("cli-demo-seed-negative", lambda: _cli("demo", "--out", _tmp(), "--seed", "-1"), CliFailure, "seed"),
    # the demo's Python API: everything checked before the first second of work
    Case("demo-out-dir-int", lambda: run_demo(123), TypeError, "out_dir must be a folder path"),
    Case("demo-out-dir-none", lambda: run_demo(None), TypeError, "out_dir"),
    Case("demo-size-unknown", lambda: run_demo(_tmp(), size="huge"), ValueError, "size must be one of"),
    Case("demo-seed-float", lambda: run_demo(_tmp(), seed=0.5), ValueError, "seed must be an int"),
    Case("demo-overwrite-string", lambda: run_demo(_tmp(), overwrite="no"), TypeError, "overwrite must be True"),
    Case("demo-out-dir-is-file", lambda: run_demo(_existing("f.txt")), NotADirectoryError, "is a file"),
    Case("demo-output-name-is-folder", lambda: run_demo(_folder_with("report.md/")), IsADirectoryError,
         "report.md' is a folder"),
    Case("demo-user-folder", lambda: run_demo(_folder_with("summary.json")), FileExistsError,
         "not a previous demo run"),
    # CLI: a few in a real child process, as a user runs it
    Case("cli-process-emit-over-input", lambda: _cli_sub("emit", _cnn_file(), "--target", "loihi2", "-o",
                                                         _cnn_file()), CliFailure, r"(?s)exit 2: .*is the input file"),
    Case("cli-process-energy-timesteps-zero", lambda: _cli_sub("energy", _cnn_file(), "--input-shape", "1,8,8",
                                                               "--timesteps", "0"), CliFailure,
         r"(?s)exit 2: .*timesteps"),
    Case("cli-process-emit-existing-dir", lambda: _cli_sub("emit", _cnn_file(), "--target", "loihi2", "-o", _tmp()),
         CliFailure, r"(?s)exit 2: .*existing folder"),
]


def _nan_model():
    lin = nn.Linear(3, 2)
    with torch.no_grad():
        lin.weight[0, 0] = float("nan")
    return nn.Sequential(TD(lin), neuro.nn.LIF(beta=0.9))


def _replace_and_read():
    path = _tmp() / "net.nir"
    neuro.io.write(path, _g())
    neuro.io.write(path, _g(fc=_w(np.full((2, 3), 5.0))), overwrite=True)
    return np.asarray(neuro.io.read(path).nodes["fc"].weight)


def _folder_with(name):
    """A folder holding ``name`` (a folder if the name ends in '/'), not made by the demo."""
    folder = _tmp()
    if name.endswith("/"):
        (folder / name).mkdir()
    else:
        (folder / name).write_text("{}")
    return folder


def _existing(name):
    path = _tmp() / name
    path.write_bytes(b"old")
    return path
