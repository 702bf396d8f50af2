"""``neuro info | fit | emit | energy`` over NIR files."""

from __future__ import annotations

import argparse
import json
from pathlib import Path


def _graph(path: str):
    import nir

    p = Path(path)
    if not p.exists():
        raise FileNotFoundError(f"no such file: {path}")
    try:
        return nir.read(str(p))
    except Exception as exc:  # h5py/nir raise many kinds for a file that is not NIR
        raise ValueError(f"{path} is not a readable NIR file ({type(exc).__name__}: {exc})") from None


def cmd_info(args: argparse.Namespace) -> int:
    import numpy as np

    g = _graph(args.file)
    print(f"{args.file}: {len(g.nodes)} nodes, {len(g.edges)} edges")
    for name, node in g.nodes.items():
        fields = []
        for k in ("weight", "tau", "tau_mem", "v_threshold", "r"):
            v = getattr(node, k, None)
            if v is not None:
                arr = np.asarray(v)
                fields.append(f"{k}{list(arr.shape)}" if arr.size > 1 else f"{k}={float(arr.reshape(-1)[0]):.4g}")
        print(f"  {name:20s} {type(node).__name__:10s} {' '.join(fields)}")
    meta = {k: v for k, v in (g.metadata or {}).items() if not k.startswith("neuro.") or k in ("neuro.dt",)}
    if meta:
        print(f"  metadata: {meta}")
    return 0


def _target(name: str):
    from neuro.hardware_targets import get

    return get(name)


def cmd_fit(args: argparse.Namespace) -> int:
    report = _target(args.target).fit(_graph(args.file))
    print(json.dumps(report.to_dict(), indent=2, default=str) if args.json else str(report))
    return 0 if report.fits else 1


def cmd_emit(args: argparse.Namespace) -> int:
    from neuro.hardware_targets import TargetError

    target = _target(args.target)
    try:
        report = target.emit(_graph(args.file), args.output, force=args.force)
    except TargetError as exc:
        raise ValueError(f"{exc}\n(use --force to write it anyway)") from None
    print(f"wrote {args.output} for {args.target} ({report.cores_used} cores)")
    return 0


def cmd_energy(args: argparse.Namespace) -> int:
    import torch

    from neuro import energy
    from neuro.io import from_nir

    net = from_nir(_graph(args.file), dt=args.dt, convention=args.convention)
    shape = [int(v) for v in args.input_shape.split(",")]
    g = torch.Generator().manual_seed(args.seed)
    x = (torch.rand((args.timesteps, args.batch, *shape), generator=g) < args.rate).float()
    rep = energy.estimate(net, x, devices=args.devices.split(","), progress=not args.no_progress)
    print(rep.to_markdown())
    return 0


def cmd_simulate(args: argparse.Namespace) -> int:
    import matplotlib

    matplotlib.use("Agg")
    import torch

    from neuro import plot
    from neuro.io import from_nir

    net = from_nir(_graph(args.file), dt=args.dt, convention=args.convention)
    shape = [int(v) for v in args.input_shape.split(",")]
    g = torch.Generator().manual_seed(args.seed)
    x = (torch.rand((args.timesteps, 1, *shape), generator=g) < args.rate).float()
    with torch.no_grad():
        out = net(x)
    flat = out[:, 0].reshape(args.timesteps, -1)
    t, i = torch.nonzero(flat, as_tuple=True)
    print(f"{args.file}: {args.timesteps} steps of Poisson input (p={args.rate}); output {tuple(out.shape[2:])}, "
          f"{int((flat != 0).sum())} output events")
    if args.out:
        fig, _ = plot.raster(t.numpy().astype(float), i.numpy(), title="output events")
        fig.savefig(args.out, dpi=110)
        print(f"raster written to {args.out}")
    return 0


def add_subcommands(sub) -> None:
    p = sub.add_parser("info", help="list the nodes of a NIR file")
    p.add_argument("file")
    p.set_defaults(func=cmd_info)
    p = sub.add_parser("fit", help="check whether a NIR network fits a chip (exit 1 if not)")
    p.add_argument("file")
    p.add_argument("--target", required=True, help="loihi2 or speck")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_fit)
    p = sub.add_parser("emit", help="write a chip toolchain's file for a NIR network")
    p.add_argument("file")
    p.add_argument("--target", required=True)
    p.add_argument("-o", "--output", required=True)
    p.add_argument("--force", action="store_true", help="write even if it does not fit")
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
    p.set_defaults(func=cmd_simulate)
