"""Accuracy against time steps of converted digits CNNs, for each conversion option, with synaptic
operations per inference, and SpikingJelly's converter side by side when it is installed.

    python benchmarks/conversion.py [--out benchmarks/conversion.png]

Last line: one JSON object with the accuracies.
"""

from __future__ import annotations

import argparse
import json

import torch

import neuro
from neuro import digits as dm

TS = [1, 2, 4, 8, 16, 32, 64, 128, 256]
OPTIONS = {
    "max": {"threshold": "max", "v_init": 0.0},
    "p99.9": {"v_init": 0.0},
    "defaults (p99.9+half-init)": {},
    "p99.9 channel+half-init": {"channel_wise": True},
    "p99.9+bias-shift(T=8)": {"bias_shift_timesteps": 8, "v_init": 0.0},
}


def spikingjelly_row(ann, xtr, xte, yte):
    try:
        from spikingjelly.activation_based import ann2snn  # noqa: F401
    except ImportError:
        return None, "spikingjelly not installed (pip install spikingjelly beside torch 2.13.0 to compare)"
    return None, "spikingjelly installed but its converter is not wired into this benchmark yet"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default=None, help="save the accuracy-vs-T plot here")
    args = ap.parse_args()
    torch.manual_seed(0)
    xtr, ytr, xte, yte = dm.digits_split()
    models = {"avg-pool CNN": lambda: dm.cnn("avg"), "max-pool CNN": lambda: dm.cnn("max"),
              "residual": dm.ResNet, "MLP": dm.mlp, "QCFS CNN": lambda: dm.cnn("avg", "qcfs")}
    summary = {}
    for mname, make in models.items():
        torch.manual_seed(0)
        ann = dm.train(make(), xtr, ytr)
        ann_acc = dm.accuracy(ann, xte, yte)
        print(f"\n## {mname}: ANN test accuracy {ann_acc:.4f}\n")
        print("| option | " + " | ".join(f"T={t}" for t in TS) + " | synops/inference at T=8, 32 |")
        print("|" + " --- |" * (len(TS) + 2))
        summary[mname] = {"ann": ann_acc}
        table = {}
        for oname, opts in OPTIONS.items():
            snn = neuro.convert.ann_to_snn(ann, xtr[:512], progress=False, **opts)
            acc = snn.evaluate(xte, yte, TS, progress=False)
            x32 = xte[:128].unsqueeze(0).expand(32, *xte[:128].shape)
            ea = neuro.energy.accuracy_energy(snn, x32, yte[:128], [8, 32], devices=["45nm"], progress=False)
            table[oname] = acc
            summary[mname][oname] = acc
            cells = " | ".join(f"{acc[t]:.4f}" for t in TS)
            print(f"| {oname} | {cells} | {ea[8]['synops']:.3g}, {ea[32]['synops']:.3g} |")
        _, why = spikingjelly_row(ann, xtr, xte, yte)
        if why:
            print(f"\nSpikingJelly: {why}")
        if args.out and mname == "max-pool CNN":
            import matplotlib

            matplotlib.use("Agg")
            fig, _ = neuro.plot.plot_accuracy_vs_timesteps(table, ann_acc, title=f"{mname} on digits")
            fig.savefig(args.out, dpi=120)
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
