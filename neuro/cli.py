"""The ``neuro`` command line: ``neuro demo``, and subcommands over NIR files and saved models.

Run ``neuro --help`` for the list. Every failure is one line ``neuro <command>: error: <what>`` on stderr,
never a traceback, with exit code 2 (bad arguments, missing or unreadable files, outputs that may not be
written, unexpected internal errors, out of memory), 1 for "the network does not fit the chip" (``fit``),
and 130 when interrupted (Ctrl-C). Nothing is written over an existing file without ``--overwrite``, and
nothing is ever written over the command's own input file.

Example:
    >>> from neuro.cli import main
    >>> main(["info", "/no/such/file.nir"])   # prints "neuro info: error: no such file: /no/such/file.nir"
    2
"""

from __future__ import annotations

import argparse
import sys

#: the exit code for an interrupted command (128 + SIGINT, the shell's convention)
EXIT_INTERRUPTED = 130


def _cmd_demo(args: argparse.Namespace) -> int:
    from neuro.demo import run_demo

    summary = run_demo(args.out, size=args.size, seed=args.seed, progress=not args.no_progress,
                       overwrite=args.overwrite)
    if summary.get("replaced"):
        print(f"replaced {len(summary['replaced'])} files of the previous demo run in {args.out}/ "
              "(other files in the folder were left alone)")
    c, e = summary["conversion"], summary["energy"]
    print(f"ANN accuracy {c['ann_accuracy']:.3f}; converted SNN at T=8: {c['accuracy_T8']:.3f}, "
          f"T=32: {c['accuracy_T32']:.3f}; directly trained SNN: {summary['training']['snn_accuracy']:.3f}")
    print(f"energy per inference at T=8: {e['energy_snn_45nm_j']:.3g} J (45 nm) vs ANN "
          f"{e['energy_ann_45nm_j']:.3g} J; Loihi {e['energy_snn_loihi_j']:.3g} J")
    for name, r in summary["hardware"].items():
        print(f"{name}: {'fits' if r['fits'] else 'does not fit'}, wrote {r['file']}; accuracy at T=8 on the chip "
              f"{r['chip_accuracy_T8']:.3f} (float SNN {r['float_snn_accuracy_T8']:.3f})")
    sim = summary["simulation"]
    print(f"CUBA simulation: {sim['neurons']} neurons, mean rate {sim['mean_rate_hz']:.1f} Hz")
    print(f"report and plots written to {args.out}/ (report.md, summary.json, *.png) in {summary['wall_s']:.0f} s")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="neuro", description="neuro-snn: simulate, train, convert, deploy and "
                                     "price spiking neural networks.")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    demo = sub.add_parser("demo", help="run the end-to-end demo and write a report with plots")
    demo.add_argument("--out", default="neuro-output", help="output folder (default: neuro-output); a previous "
                      "demo run there is replaced file by file, anything else in it is left alone")
    demo.add_argument("--size", default="small", choices=["tiny", "small", "full"], help="problem size")
    demo.add_argument("--seed", type=int, default=0)
    demo.add_argument("--no-progress", action="store_true", help="hide progress bars")
    demo.add_argument("--overwrite", action="store_true", help="replace files of the demo's names even if the "
                      "folder does not hold a previous demo run")
    demo.set_defaults(func=_cmd_demo)
    from neuro.cli_nir import add_subcommands

    add_subcommands(sub)
    return parser


def _one_line(msg) -> str:
    """A message on one line: continuation lines (lists of problems) joined with '; '."""
    lines = [ln.strip() for ln in str(msg).splitlines() if ln.strip()]
    out = lines[0] if lines else ""
    for ln in lines[1:]:
        out += ("; " if not out.endswith(":") else " ") + ln.lstrip("- ")
    return out


def _describe(exc: BaseException) -> str:
    if isinstance(exc, KeyError) and exc.args:
        return _one_line(exc.args[0])
    if isinstance(exc, OSError) and exc.strerror:  # raised by the OS: "[Errno 13] ..." -> "Permission denied: x"
        where = f": {exc.filename}" if exc.filename else ""
        return _one_line(f"{exc.strerror}{where}")
    text = _one_line(exc)
    return text or type(exc).__name__


def main(argv: list[str] | None = None) -> int:
    """Run the ``neuro`` command line with ``argv`` (default ``sys.argv[1:]``); returns the exit code."""
    command = "?"
    try:
        parser = build_parser()
        try:
            args = parser.parse_args(argv)
        except SystemExit as exc:  # argparse printed usage and one "neuro <cmd>: error:" line, or --help
            return exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 2)
        if not getattr(args, "func", None):
            parser.print_help()
            return 0
        command = args.command
        return int(args.func(args) or 0)
    except KeyboardInterrupt:
        print(f"neuro {command}: error: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except MemoryError as exc:
        print(f"neuro {command}: error: out of memory{': ' + _one_line(exc) if str(exc) else ''}; try smaller "
              "sizes", file=sys.stderr)
        return 2
    except (OSError, ValueError, TypeError, LookupError) as exc:
        print(f"neuro {command}: error: {_describe(exc)}", file=sys.stderr)
        return 2
    except Exception as exc:  # a bug of ours: still one line, no traceback
        if isinstance(exc, RuntimeError) and ("can't allocate memory" in str(exc) or "out of memory" in str(exc)):
            print(f"neuro {command}: error: out of memory ({_describe(exc)}); try smaller sizes", file=sys.stderr)
            return 2
        print(f"neuro {command}: error: internal error ({type(exc).__name__}: {_describe(exc)}); please report "
              "it", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
