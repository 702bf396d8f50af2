"""``neuro demo``: the four jobs end to end on this machine, writing a report and its plots to a folder.

1. train a small CNN on scikit-learn's digits and convert it to a spiking network (accuracy against T);
2. train a small convolutional SNN directly with surrogate gradients on the fused kernels;
3. estimate energy per inference of the converted SNN on several devices, against the ANN;
4. export it to NIR, fit it to Loihi 2 and Speck and emit their files;
5. simulate the CUBA benchmark network (Brette et al. 2007) and plot its raster.

Files: every file is written atomically (:mod:`neuro.files`). When ``out_dir`` already holds a previous
demo run (its ``summary.json`` says so), the demo replaces exactly the files it writes itself
(:data:`OUTPUTS`), each one atomically, removes a chip file of that run that this run no longer writes, leaves
every other file in the folder alone, and lists what it replaced in ``summary["replaced"]``: re-running the demo
stays one command. When a file of one of those names exists but the folder is not a demo run, it refuses
(``FileExistsError``) unless ``overwrite=True``. All of this, and that the folder is writable, is checked
before any work starts.

Example:
    >>> from neuro.demo import run_demo
    >>> summary = run_demo("/tmp/neuro-demo", size="tiny", progress=False)   # doctest: +SKIP
"""

from __future__ import annotations

import json
import os
import tempfile
import time
from pathlib import Path

SIZES = {"tiny": {"ann_epochs": 6, "snn_epochs": 3, "cuba_ms": 200.0, "eval": 180},
         "small": {"ann_epochs": 20, "snn_epochs": 10, "cuba_ms": 500.0, "eval": 540},
         "full": {"ann_epochs": 40, "snn_epochs": 20, "cuba_ms": 1000.0, "eval": 540}}
TIMESTEPS = [1, 2, 4, 8, 16, 32, 64]
DEVICES = ["45nm", "cpu", "gpu", "loihi", "spinnaker2"]


#: every file the demo writes into its output folder
OUTPUTS = ("accuracy_vs_timesteps.png", "energy_per_layer.png", "accuracy_energy_vs_timesteps.png",
           "converted_cnn.nir", "converted_cnn_netx.h5", "converted_cnn_speck.nir", "raster.png", "summary.json",
           "report.md")
_MARK = "neuro_demo"  # key in summary.json that marks a folder as a demo run


def _save(fig, path: Path, overwrite: bool) -> str:
    import matplotlib.pyplot as plt

    from neuro.files import save_figure

    try:
        save_figure(fig, path, overwrite=overwrite, dpi=110)
    finally:
        plt.close(fig)
    return path.name


def _previous_run(out: Path) -> bool:
    """Whether ``out`` holds a previous demo run: its summary.json is the demo's."""
    try:
        summary = json.loads((out / "summary.json").read_text())
    except (OSError, ValueError, UnicodeDecodeError):
        return False
    return isinstance(summary, dict) and (_MARK in summary or {"size", "conversion", "hardware"} <= set(summary))


def _check_out_dir(out: Path, overwrite: bool) -> tuple[list[str], bool]:
    """Check, before any work, that the demo may write its files into ``out``; returns the existing ones."""
    if out.exists() and not out.is_dir():
        raise NotADirectoryError(f"out_dir {str(out)!r} is a file, not a folder")
    existing = [name for name in OUTPUTS if (out / name).exists() or (out / name).is_symlink()]
    for name in existing:
        if (out / name).is_dir():
            raise IsADirectoryError(f"{str(out / name)!r} is a folder; the demo writes a file of that name")
    previous = bool(existing) and _previous_run(out)
    if existing and not (previous or overwrite):
        raise FileExistsError(f"{str(out)!r} holds {', '.join(existing)} but is not a previous demo run; pass "
                              "overwrite=True (--overwrite) to replace them, or choose another output folder")
    try:
        out.mkdir(parents=True, exist_ok=True)
        fd, probe = tempfile.mkstemp(prefix=".neuro-demo-probe.", dir=out)
    except OSError as exc:
        raise OSError(f"cannot write into the output folder {str(out)!r}: {exc.strerror or exc}") from None
    os.close(fd)
    os.unlink(probe)
    return existing, previous


def run_demo(out_dir: str | Path = "neuro-output", size: str = "small", seed: int = 0, progress: bool = True,
             overwrite: bool = False) -> dict:
    """Run the demo and write ``report.md``, ``summary.json``, the plots and the chip files into ``out_dir``.

    A previous demo run in ``out_dir`` is replaced file by file (see the module docstring); other files
    of the demo's names are replaced only with ``overwrite=True``.
    """
    if size not in SIZES:
        raise ValueError(f"size must be one of {sorted(SIZES)}, got {size!r}")
    if isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed < 2**32:
        raise ValueError(f"seed must be an int in [0, 2**32), got {seed!r}")
    if not isinstance(out_dir, str | os.PathLike) or str(out_dir) == "":
        raise TypeError(f"out_dir must be a folder path (str or os.PathLike), got {out_dir!r}")
    if not isinstance(overwrite, bool):
        raise TypeError(f"overwrite must be True or False, got {overwrite!r}")
    out = Path(out_dir)
    existing, _ = _check_out_dir(out, overwrite)
    replace = bool(existing)  # checked above: a previous demo run, or overwrite=True
    import matplotlib

    matplotlib.use("Agg")
    import torch
    from torch import nn

    import neuro
    from neuro import digits
    from neuro.nn import TimeDistributed as TD

    cfg = SIZES[size]
    torch.manual_seed(seed)
    summary: dict = {_MARK: 1, "size": size}
    clock = time.perf_counter()
    xtr, ytr, xte, yte = digits.digits_split()
    xte, yte = xte[: cfg["eval"]], yte[: cfg["eval"]]

    # 1. ANN -> SNN conversion
    ann = digits.train(digits.cnn("avg"), xtr, ytr, epochs=cfg["ann_epochs"], seed=seed, progress=progress)
    ann_acc = digits.accuracy(ann, xte, yte)
    integ = neuro.convert.ann_to_snn(ann, xtr[:512], progress=progress)
    acc_t = integ.evaluate(xte, yte, TIMESTEPS, progress=progress)
    # a spiking readout (IF neurons on the output too) is what Speck-class chips can run
    snn = neuro.convert.ann_to_snn(ann, xtr[:512], output="spiking", progress=progress)
    acc_s = snn.evaluate(xte, yte, TIMESTEPS, progress=progress)
    fig, _ = neuro.plot.plot_accuracy_vs_timesteps({"integrator readout": acc_t, "spiking readout": acc_s}, ann_acc,
                                                   title="digits CNN -> SNN")
    summary["conversion"] = {"ann_accuracy": ann_acc, **{f"accuracy_T{t}": a for t, a in acc_t.items()},
                             **{f"spiking_readout_accuracy_T{t}": a for t, a in acc_s.items()},
                             "plot": _save(fig, out / "accuracy_vs_timesteps.png", replace)}

    # 2. direct surrogate-gradient training
    model = nn.Sequential(TD(nn.Conv2d(1, 16, 3, padding=1)), TD(nn.BatchNorm2d(16)), neuro.nn.LIF(beta=0.9),
                          TD(nn.AvgPool2d(2)), neuro.nn.Flatten(), TD(nn.Linear(16 * 16, 10)), neuro.nn.LI(0.9))
    opt = torch.optim.Adam(model.parameters(), lr=5e-3)
    from tqdm.auto import tqdm

    g = torch.Generator().manual_seed(seed)
    for _ in tqdm(range(cfg["snn_epochs"]), desc="training SNN", disable=not progress, leave=False):
        perm = torch.randperm(len(xtr), generator=g)
        for i in range(0, len(xtr), 64):
            idx = perm[i:i + 64]
            loss = neuro.nn.losses.ce_membrane_loss(model(neuro.encoding.repeat(xtr[idx], 6)), ytr[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
    model.eval()
    with torch.no_grad():
        snn_direct = float((model(neuro.encoding.repeat(xte, 6)).sum(0).argmax(-1) == yte).float().mean())
    summary["training"] = {"snn_accuracy": snn_direct, "timesteps": 6}

    # 3. energy of the converted SNN (spiking readout, the one the chips run) at T = 8 against the ANN
    T = 8
    x_t = xte.unsqueeze(0).expand(T, *xte.shape)
    report = neuro.energy.estimate(snn, x_t, devices=DEVICES, progress=progress)
    fig, _ = report.plot()
    table = neuro.energy.accuracy_energy(snn, xte.unsqueeze(0).expand(32, *xte.shape), yte, [2, 4, 8, 16, 32],
                                         devices=["45nm", "loihi"], progress=progress)
    fig2, _ = neuro.plot.plot_accuracy_energy(table, "45nm", ann_accuracy=ann_acc)
    summary["energy"] = {"timesteps": T, "synops": report.total("synops"), "ann_macs": report.total("ann_macs"),
                         **{f"energy_snn_{d}_j": report.energy_j[d] for d in DEVICES},
                         **{f"energy_ann_{d}_j": v for d, v in report.ann_energy_j.items()},
                         "plot": _save(fig, out / "energy_per_layer.png", replace),
                         "tradeoff_plot": _save(fig2, out / "accuracy_energy_vs_timesteps.png", replace)}

    # 4. NIR, fit and emit
    graph = neuro.to_nir(snn, (1, 8, 8))
    neuro.io.write(out / "converted_cnn.nir", graph, overwrite=replace)
    # Chip accuracies come only from models of what the chip's toolchain runs, never from a float model:
    # Loihi 2 from the bit-accurate netx/Lava reference run on the emitted file; Speck from Sinabs' IAF
    # semantics on the emitted 8-bit file (equal to sinabs.from_nir's own simulation in the tests).
    # Loihi 2 resets to 0 and netx files hold no starting membrane, so the chip gets its own conversion.
    loihi_snn = neuro.convert.ann_to_snn(ann, xtr[:512], output="spiking", reset="zero", v_init=0.0,
                                         bias_shift_timesteps=T // 2, progress=progress)
    with torch.no_grad():
        loihi_float = float((loihi_snn(x_t).sum(0).argmax(-1) == yte).float().mean())
    chips = {}
    for name, filename, net_for_chip in (("loihi2", "converted_cnn_netx.h5", loihi_snn),
                                         ("speck", "converted_cnn_speck.nir", snn)):
        target = neuro.hardware_targets.get(name)
        chip_graph = neuro.to_nir(net_for_chip, (1, 8, 8))
        fit = target.fit(chip_graph)
        if fit.fits:
            target.emit(chip_graph, out / filename, overwrite=replace)
        elif filename in existing:  # the previous run's chip file would now be stale
            (out / filename).unlink()
        with torch.no_grad():
            if name == "loihi2":
                chip_acc = target.accuracy(chip_graph, xte, yte, T)
                source = ("bit-accurate model of lava-dl netx + Lava fixed-point CUBA LIF run on the emitted file "
                          "(conversion for the chip: reset to 0, bias shift T/2)")
                float_acc = loihi_float
            else:
                chip_acc = float((target.simulate(chip_graph, x_t).sum(0).argmax(-1) == yte).float().mean())
                source = ("Sinabs IAF semantics on the emitted 8-bit file (equal to sinabs.from_nir's simulation in "
                          "tests/test_speck_sinabs.py; DynapcnnNetwork not checked: samna is not installable)")
                float_acc = acc_s[T]
        chips[name] = {"fits": fit.fits, "cores": fit.cores_used, "file": filename if fit.fits else None,
                       "chip_accuracy_T8": chip_acc, "float_snn_accuracy_T8": float_acc, "accuracy_source": source,
                       "report": str(fit)}
    summary["hardware"] = chips

    # 5. CUBA network
    import numpy as np

    net = neuro.sim.Network(dt=0.1, seed=seed)
    rng = np.random.default_rng(seed)
    cell = neuro.models.LIF(tau_m=20.0, cm=1.0, v_rest=-49.0, v_thresh=-50.0, v_reset=-60.0, tau_refrac=5.0)
    pop = net.population(4000, cell, initial={"v": -60.0 + rng.random(4000) * 10.0})
    net.connect(pop, pop, neuro.sim.FromSubset(neuro.sim.FixedProbability(0.02), 0, 3200), weight=1.62 / 20,
                tau_syn=5.0)
    net.connect(pop, pop, neuro.sim.FromSubset(neuro.sim.FixedProbability(0.02), 3200, 800), weight=-9.0 / 20,
                tau_syn=10.0)
    spikes = net.spike_monitor(pop)
    t0 = time.perf_counter()
    net.run(cfg["cuba_ms"], progress=progress)
    sim_s = time.perf_counter() - t0
    title = f"CUBA, first 400 of 4000 neurons, {cfg['cuba_ms']:.0f} ms"
    fig, _ = neuro.plot.raster(spikes, max_neurons=400, title=title)
    summary["simulation"] = {"neurons": 4000, "duration_ms": cfg["cuba_ms"],
                             "mean_rate_hz": spikes.count() / 4000 / (cfg["cuba_ms"] / 1000), "run_s": sim_s,
                             "raster": _save(fig, out / "raster.png", replace)}
    summary["wall_s"] = time.perf_counter() - clock
    summary["replaced"] = existing
    from neuro.files import write_text

    write_text(out / "summary.json", json.dumps(summary, indent=2), overwrite=replace)
    write_text(out / "report.md", _report(summary), overwrite=replace)
    return summary


def _report(s: dict) -> str:
    c, tr, e, h, sim = s["conversion"], s["training"], s["energy"], s["hardware"], s["simulation"]
    acc_rows = ", ".join(f"T={k[len('accuracy_T'):]}: {v:.3f}" for k, v in c.items() if k.startswith("accuracy_T"))
    spk_rows = ", ".join(f"T={k[len('spiking_readout_accuracy_T'):]}: {v:.3f}" for k, v in c.items()
                         if k.startswith("spiking_readout_accuracy_T"))
    lines = [
        "# neuro-snn demo report", "",
        f"Size `{s['size']}`, {s['wall_s']:.0f} s on this machine.", "",
        "## 1. ANN-to-SNN conversion (digits CNN)",
        f"ANN test accuracy {c['ann_accuracy']:.3f}; converted SNN (integrating readout): {acc_rows}.", "",
        f"With a spiking readout (what Speck runs): {spk_rows}.", "",
        f"![accuracy vs timesteps]({c['plot']})", "",
        "## 2. Surrogate-gradient training",
        f"Convolutional SNN trained directly on the fused kernels: test accuracy {tr['snn_accuracy']:.3f} at "
        f"T = {tr['timesteps']}.", "",
        f"## 3. Energy per inference (converted SNN, T = {e['timesteps']})",
        f"{e['synops']:.3g} synaptic operations against {e['ann_macs']:.3g} ANN MACs.", "",
        "| device | SNN | ANN |", "| --- | --- | --- |",
    ]
    for d in DEVICES:
        ann = e.get(f"energy_ann_{d}_j")
        lines.append(f"| {d} | {e[f'energy_snn_{d}_j']:.3g} J | {f'{ann:.3g} J' if ann else 'n/a'} |")
    lines += ["", f"![energy per layer]({e['plot']})", "", f"![accuracy and energy]({e['tradeoff_plot']})", "",
              "## 4. Chips"]
    for name, r in h.items():
        lines.append(f"- **{name}**: {'fits' if r['fits'] else 'does not fit'} ({r['cores']} cores); "
                     f"file `{r['file']}`; accuracy at T=8 on the chip {r['chip_accuracy_T8']:.3f} (float SNN "
                     f"{r['float_snn_accuracy_T8']:.3f}); from: {r['accuracy_source']}")
    lines += ["", "## 5. Simulation (CUBA, Brette et al. 2007)",
              f"{sim['neurons']} LIF neurons for {sim['duration_ms']:.0f} ms: mean rate {sim['mean_rate_hz']:.2f} Hz, "
              f"compiled loop {sim['run_s']:.2f} s.", "", f"![raster]({sim['raster']})", ""]
    return "\n".join(lines)
