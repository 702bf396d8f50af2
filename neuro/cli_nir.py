"""``neuro info | fit | emit | energy | simulate`` over NIR files.

Every argument is checked before any file is read or any array allocated: sizes are whole numbers in a
range (``--timesteps`` and ``--batch`` >= 1; ``T x B x`` the largest layer at most
:data:`neuro.io.MAX_ELEMENTS` values), ``--input-shape`` is positive integers equal to the file's input
shape, ``--rate`` a probability, ``--dt`` finite and > 0, ``--devices`` known device names. Output paths
are checked first too: never the input file, never an existing folder, an existing file only with
``--overwrite``. Files are written atomically (:mod:`neuro.files`).
"""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path

#: the largest --seed (torch generators take seeds below 2**63 here)
MAX_SEED = 2**63 - 1


def _graph(path: str, check: bool = True):
    """The NIR graph in ``path`` (checked in full unless ``check=False``) and what the check learnt."""
    from neuro.io.load import _read_file, check_graph

    p = Path(path)
    if not p.exists():
        raise FileNotFoundError(f"no such file: {path}")
    graph, _, source = _read_file(p)
    checked = check_graph(graph, source=source) if check else None
    return graph, checked


def cmd_info(args: argparse.Namespace) -> int:
    import numpy as np

    from neuro.io import check_graph

    g, _ = _graph(args.file, check=False)
    print(f"{args.file}: {len(g.nodes)} nodes, {len(g.edges)} edges")
    for name, node in g.nodes.items():
        fields = []
        for k in ("weight", "tau", "tau_mem", "v_threshold", "r"):
            v = getattr(node, k, None)
            if v is not None:
                arr = np.asarray(v)
                if arr.size > 1:
                    fields.append(f"{k}{list(arr.shape)}")
                elif arr.size == 1 and arr.dtype.kind in "biuf":
                    fields.append(f"{k}={float(arr.reshape(-1)[0]):.4g}")
        print(f"  {name:20s} {type(node).__name__:10s} {' '.join(fields)}")
    meta = {k: v for k, v in (g.metadata or {}).items() if not k.startswith("neuro.") or k in ("neuro.dt",)}
    if meta:
        print(f"  metadata: {meta}")
    try:
        check_graph(g)
    except ValueError as exc:
        from neuro.cli import _one_line

        print(f"  runs on neuro-snn: no ({_one_line(exc)})")
    else:
        print("  runs on neuro-snn: yes")
    return 0


def _target(name: str):
    from neuro.hardware_targets import get

    return get(name)


def cmd_fit(args: argparse.Namespace) -> int:
    target = _target(args.target)
    report = target.fit(_graph(args.file)[0])
    print(json.dumps(report.to_dict(), indent=2, default=str) if args.json else str(report))
    return 0 if report.fits else 1


def cmd_emit(args: argparse.Namespace) -> int:
    from neuro.hardware_targets import TargetError

    target = _target(args.target)
    _check_output(args.output, args.overwrite, args.file, "output")
    graph, _ = _graph(args.file)
    try:
        report = target.emit(graph, args.output, force=args.force, overwrite=args.overwrite)
    except TargetError as exc:
        raise ValueError(f"{exc}\n(use --force to write it anyway)") from None
    print(f"wrote {args.output} for {args.target} ({report.cores_used} cores)")
    return 0


def _check_output(path: str, overwrite: bool, input_file: str, what: str) -> None:
    """The output may be written: not the input, not a folder, not existing without --overwrite, and its
    nearest existing folder writable (checked before any work)."""
    import os

    from neuro.files import check_output_path

    p = check_output_path(path, overwrite=overwrite, inputs=[input_file], what=what)
    folder = p.absolute().parent
    while not folder.exists() and folder != folder.parent:
        folder = folder.parent
    if not folder.is_dir() or not os.access(folder, os.W_OK | os.X_OK):
        raise PermissionError(f"cannot write {what} {str(p)!r}: the folder {str(folder)!r} is not writable")


def _int_in(value: int, name: str, lo: int, hi: int) -> int:
    if not lo <= value <= hi:
        raise ValueError(f"{name} must be in [{lo}, {hi}], got {value}")
    return value


def _shape(text: str) -> tuple[int, ...]:
    from neuro.io import MAX_ELEMENTS

    parts = text.split(",")
    try:
        shape = tuple(int(p.strip()) for p in parts)
    except ValueError:
        raise ValueError(f"--input-shape must be positive integers separated by commas (e.g. 1,8,8), got "
                         f"{text!r}") from None
    if any(v < 1 for v in shape) or math.prod(shape) > MAX_ELEMENTS:
        raise ValueError(f"--input-shape must be positive integers with at most {MAX_ELEMENTS} elements, got "
                         f"{text!r}")
    return shape


def _check_run_args(args: argparse.Namespace, batch: int) -> tuple[int, ...]:
    """Checks shared by ``energy`` and ``simulate``, all before reading the file."""
    from neuro.io import MAX_ELEMENTS
    from neuro.io.conventions import get as get_convention
    from neuro.io.load import _check_dt

    _int_in(args.timesteps, "--timesteps", 1, MAX_ELEMENTS)
    _int_in(batch, "--batch", 1, MAX_ELEMENTS)
    _int_in(args.seed, "--seed", 0, MAX_SEED)
    if not (0.0 <= args.rate <= 1.0):
        raise ValueError(f"--rate must be a probability in [0, 1], got {args.rate}")
    if args.dt is not None:
        _check_dt(args.dt, "--dt")
    get_convention(args.convention)
    shape = _shape(args.input_shape)
    if args.timesteps * batch * math.prod(shape) > MAX_ELEMENTS:
        raise ValueError(f"--timesteps x --batch x --input-shape = {args.timesteps} x {batch} x "
                         f"{math.prod(shape)} values is more than {MAX_ELEMENTS}; use fewer steps or a smaller batch")
    return shape


def _net(args: argparse.Namespace, shape: tuple[int, ...], batch: int):
    """The network from the file, after checking the input shape and the size of every layer's activity."""
    from neuro.io import MAX_ELEMENTS, from_nir

    graph, checked = _graph(args.file)
    if tuple(checked.input_shape) != tuple(shape):
        raise ValueError(f"--input-shape {','.join(map(str, shape))} does not match {args.file}'s input shape "
                         f"{','.join(map(str, checked.input_shape))}")
    largest = max(math.prod(s) for s in checked.out_shapes.values())
    if args.timesteps * batch * largest > MAX_ELEMENTS:
        raise ValueError(f"--timesteps x --batch x the largest layer ({largest} values) is more than {MAX_ELEMENTS} "
                         "values; use fewer steps or a smaller batch")
    return from_nir(graph, dt=args.dt, convention=args.convention)


def cmd_energy(args: argparse.Namespace) -> int:
    import torch

    from neuro import energy
    from neuro.hardware_targets.devices import get as get_device

    shape = _check_run_args(args, args.batch)
    devices = [d.strip() for d in args.devices.split(",")]
    if not all(devices):
        raise ValueError(f"--devices must be device names separated by commas, got {args.devices!r}")
    for d in devices:
        get_device(d)
    net = _net(args, shape, args.batch)
    g = torch.Generator().manual_seed(args.seed)
    x = (torch.rand((args.timesteps, args.batch, *shape), generator=g) < args.rate).float()
    rep = energy.estimate(net, x, devices=devices, progress=not args.no_progress)
    print(rep.to_markdown())
    return 0


def cmd_simulate(args: argparse.Namespace) -> int:
    shape = _check_run_args(args, 1)
    if args.out:
        _check_output(args.out, args.overwrite, args.file, "raster")
    import matplotlib

    matplotlib.use("Agg")
    import torch

    from neuro import plot
    from neuro.files import save_figure

    net = _net(args, shape, 1)
    g = torch.Generator().manual_seed(args.seed)
    x = (torch.rand((args.timesteps, 1, *shape), generator=g) < args.rate).float()
    with torch.no_grad():
        out = net(x)
    if isinstance(out, tuple):
        out = out[0]
    flat = out[:, 0].reshape(args.timesteps, -1)
    t, i = torch.nonzero(flat, as_tuple=True)
    print(f"{args.file}: {args.timesteps} steps of Poisson input (p={args.rate}); output {tuple(out.shape[2:])}, "
          f"{int((flat != 0).sum())} output events")
    if args.out:
        import matplotlib.pyplot as plt

        fig, _ = plot.raster(t.numpy().astype(float), i.numpy(), title="output events")
        try:
            save_figure(fig, args.out, overwrite=args.overwrite, dpi=110)
        finally:
            plt.close(fig)
        print(f"raster written to {args.out}")
    return 0


def add_subcommands(sub) -> None:
    p = sub.add_parser("info", help="list the nodes of a NIR file and whether neuro-snn can run it")
    p.add_argument("file")
    p.set_defaults(func=cmd_info)
    p = sub.add_parser("fit", help="check whether a NIR network fits a chip (exit 1 if not)")
    p.add_argument("file")
    p.add_argument("--target", required=True, help="loihi2, speck, xylo, spinnaker or nest")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_fit)
    p = sub.add_parser("emit", help="write a chip toolchain's file for a NIR network")
    p.add_argument("file")
    p.add_argument("--target", required=True)
    p.add_argument("-o", "--output", required=True, help="the file to write (never the input file)")
    p.add_argument("--force", action="store_true", help="write even if it does not fit")
    p.add_argument("--overwrite", action="store_true", help="replace an existing output file")
    p.set_defaults(func=cmd_emit)
    p = sub.add_parser("energy", help="estimate energy per inference of a NIR network on random spike input")
    p.add_argument("file")
    p.add_argument("--input-shape", required=True, help="one sample's shape, e.g. 1,8,8 or 64")
    p.add_argument("--timesteps", type=int, default=32)
    p.add_argument("--batch", type=int, default=16)
    p.add_argument("--rate", type=float, default=0.2, help="input spike probability per step")
    p.add_argument("--dt", type=float, default=None)
    p.add_argument("--convention", default="neuro")
    p.add_argument("--devices", default="45nm,cpu,gpu,loihi,spinnaker2")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--no-progress", action="store_true")
    p.set_defaults(func=cmd_energy)
    p = sub.add_parser("simulate", help="run a NIR network on random spike input and plot its output raster")
    p.add_argument("file")
    p.add_argument("--input-shape", required=True, help="one sample's shape, e.g. 1,8,8 or 64")
    p.add_argument("--timesteps", type=int, default=100)
    p.add_argument("--rate", type=float, default=0.2, help="input spike probability per step")
    p.add_argument("--dt", type=float, default=None)
    p.add_argument("--convention", default="neuro")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("-o", "--out", default=None, help="save the output raster (PNG)")
    p.add_argument("--overwrite", action="store_true", help="replace an existing raster file")
    p.set_defaults(func=cmd_simulate)
