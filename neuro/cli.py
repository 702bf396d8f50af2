"""The ``neuro`` command line: ``neuro demo``, and subcommands over NIR files and saved models.

Run ``neuro --help`` for the list. Errors are reported as one line on stderr with exit code 2
(bad arguments, missing files, unknown targets), never as a traceback.
"""

from __future__ import annotations

import argparse
import sys


def _cmd_demo(args: argparse.Namespace) -> int:
    from neuro.demo import run_demo

    summary = run_demo(args.out, size=args.size, seed=args.seed, progress=not args.no_progress)
    c, e = summary["conversion"], summary["energy"]
    print(f"ANN accuracy {c['ann_accuracy']:.3f}; converted SNN at T=8: {c['accuracy_T8']:.3f}, "
          f"T=32: {c['accuracy_T32']:.3f}; directly trained SNN: {summary['training']['snn_accuracy']:.3f}")
    print(f"energy per inference at T=8: {e['energy_snn_45nm_j']:.3g} J (45 nm) vs ANN "
          f"{e['energy_ann_45nm_j']:.3g} J; Loihi {e['energy_snn_loihi_j']:.3g} J")
    for name, r in summary["hardware"].items():
        print(f"{name}: {'fits' if r['fits'] else 'does not fit'}, wrote {r['file']}")
    sim = summary["simulation"]
    print(f"CUBA simulation: {sim['neurons']} neurons, mean rate {sim['mean_rate_hz']:.1f} Hz")
    print(f"report and plots written to {args.out}/ (report.md, summary.json, *.png) in {summary['wall_s']:.0f} s")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="neuro", description="neuro-snn: simulate, train, convert, deploy and "
                                     "price spiking neural networks.")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    demo = sub.add_parser("demo", help="run the end-to-end demo and write a report with plots")
    demo.add_argument("--out", default="neuro-output", help="output folder (default: neuro-output)")
    demo.add_argument("--size", default="small", choices=["tiny", "small", "full"], help="problem size")
    demo.add_argument("--seed", type=int, default=0)
    demo.add_argument("--no-progress", action="store_true", help="hide progress bars")
    demo.set_defaults(func=_cmd_demo)
    try:
        from neuro.cli_nir import add_subcommands
    except ImportError:
        pass
    else:
        add_subcommands(sub)
    return parser


class _CliError(Exception):
    pass


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 0
    try:
        return int(args.func(args) or 0)
    except (FileNotFoundError, ValueError, KeyError, _CliError) as exc:
        msg = exc.args[0] if isinstance(exc, KeyError) and exc.args else exc
        print(f"neuro {args.command}: error: {msg}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
