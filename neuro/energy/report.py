"""The energy report: per-layer counts per inference, priced on device specs."""

from __future__ import annotations

from dataclasses import dataclass, field

from neuro.energy.counting import LayerCounts
from neuro.hardware_targets.devices import DeviceSpec

FIELDS = ("spikes_in", "synops", "input_macs", "neuron_updates", "spikes_out")


def _layer_energy(row: dict, dev: DeviceSpec) -> float:
    mac = dev.mac if dev.mac is not None else dev.synop  # no MAC unit: analog input sent as graded spikes
    return (row["synops"] * dev.synop + row["input_macs"] * mac + row["neuron_updates"] * dev.neuron_update
            + row["spikes_out"] * dev.spike)


@dataclass
class EnergyReport:
    """What a network did per inference, layer by layer, and what that costs on each device.

    Attributes:
        layers: one dict a layer, in execution order, with ``name``, ``type``, ``kind``, ``spikes_in``,
            ``synops``, ``input_macs``, ``neuron_updates``, ``spikes_out``, ``firing_rate``, ``ann_macs``
            (counts per inference, averaged over the inputs) and ``energy_j`` (device -> J).
        timesteps: T the network ran for; samples: how many inputs were averaged.
        energy_j: device -> joules per inference of the spiking network.
        ann_energy_j: device -> joules per inference of the equivalent ANN (devices with a MAC cost).
        latency_s: device -> seconds per inference (devices whose spec gives a time per step).
        edp: device -> energy-delay product [J s] where the latency is known.
    """

    layers: list[dict]
    timesteps: int
    samples: int
    devices: list[DeviceSpec]
    energy_j: dict[str, float] = field(default_factory=dict)
    ann_energy_j: dict[str, float] = field(default_factory=dict)
    latency_s: dict[str, float] = field(default_factory=dict)
    edp: dict[str, float] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    @classmethod
    def from_counts(cls, counts: list[LayerCounts], samples: int, timesteps: int, devices: list[DeviceSpec],
                    upto: int | None = None) -> EnergyReport:
        t_end = timesteps if upto is None else upto
        rows = []
        for c in counts:
            row = {"name": c.name, "type": c.layer_type, "kind": c.kind}
            for f in FIELDS:
                arr = getattr(c, f)
                row[f] = float(arr[:t_end].sum() / samples) if arr is not None else 0.0
            row["firing_rate"] = (row["spikes_out"] / (c.neurons * t_end)) if c.neurons and t_end else 0.0
            row["ann_macs"] = float(c.ann_macs)
            row["energy_j"] = {d.name: _layer_energy(row, d) for d in devices}
            rows.append(row)
        rep = cls(layers=rows, timesteps=t_end, samples=samples, devices=list(devices))
        for d in devices:
            rep.energy_j[d.name] = float(sum(r["energy_j"][d.name] for r in rows))
            if d.mac is not None:
                rep.ann_energy_j[d.name] = rep.total("ann_macs") * d.mac
            else:
                if rep.total("input_macs") > 0:
                    rep.notes.append(f"{d.name} has no MAC cost: analog input priced as graded-spike synops")
            if d.step_time is not None:
                rep.latency_s[d.name] = d.step_time * t_end
                rep.edp[d.name] = rep.energy_j[d.name] * rep.latency_s[d.name]
        return rep

    def total(self, field_name: str) -> float:
        """Sum of a per-layer count over all layers (per inference)."""
        if field_name not in (*FIELDS, "ann_macs"):
            raise ValueError(f"unknown field {field_name!r}; fields: {', '.join((*FIELDS, 'ann_macs'))}")
        return float(sum(r[field_name] for r in self.layers))

    def to_dict(self) -> dict:
        return {"timesteps": self.timesteps, "samples": self.samples, "layers": self.layers,
                "energy_j": self.energy_j, "ann_energy_j": self.ann_energy_j, "latency_s": self.latency_s,
                "edp": self.edp, "devices": {d.name: d.source for d in self.devices}, "notes": self.notes}

    def to_markdown(self) -> str:
        head = "| layer | type | spikes in | synops | input MACs | neuron updates | spikes out | rate | ANN MACs |"
        lines = [head, "|" + " --- |" * 9]
        for r in self.layers:
            lines.append(f"| {r['name']} | {r['type']} | {r['spikes_in']:.4g} | {r['synops']:.4g} | "
                         f"{r['input_macs']:.4g} | {r['neuron_updates']:.4g} | {r['spikes_out']:.4g} | "
                         f"{r['firing_rate']:.3f} | {r['ann_macs']:.4g} |")
        lines += ["", f"Per inference, T = {self.timesteps}, averaged over {self.samples} inputs.", "",
                  "| device | SNN energy | ANN energy | SNN/ANN | latency | source |", "|" + " --- |" * 6]
        for d in self.devices:
            snn = self.energy_j[d.name]
            ann = self.ann_energy_j.get(d.name)
            ratio = f"{snn / ann:.3g}" if ann else "n/a"
            lat = f"{self.latency_s[d.name]:.3g} s" if d.name in self.latency_s else "n/a"
            ann_txt = f"{ann:.3g} J" if ann is not None else "n/a"
            lines.append(f"| {d.name} | {snn:.3g} J | {ann_txt} | {ratio} | {lat} | {d.source} |")
        if self.notes:
            lines += [""] + [f"Note: {n}" for n in self.notes]
        return "\n".join(lines) + "\n"

    def plot(self):
        """Energy per layer per device (log scale) and SNN against ANN per device; returns (fig, axes)."""
        from neuro.plot.energy import plot_energy

        return plot_energy(self)

    def __repr__(self) -> str:
        e = ", ".join(f"{k}={v:.3g} J" for k, v in self.energy_j.items())
        return f"EnergyReport(T={self.timesteps}, layers={len(self.layers)}, {e})"

