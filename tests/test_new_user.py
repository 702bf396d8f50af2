"""Play a new user: a fresh virtualenv, the README's install command, then ``neuro demo --size tiny``.

Checks that the report and plots exist and that the numbers in the summary are sane. The install goes
through pip exactly as README.md says (its first command), so a missing dependency fails here.
"""

import json
import os
import re
import subprocess
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _readme_install_command() -> str:
    text = (ROOT / "README.md").read_text()
    block = re.search(r"```bash\n(.*?)```", text, re.S).group(1)
    first = block.strip().splitlines()[0].split("#")[0].strip()
    assert first.startswith("pip install") and first.endswith("neuro demo"), first
    return first


def test_fresh_virtualenv_install_and_demo(tmp_path):
    env_dir = tmp_path / "venv"
    venv.EnvBuilder(with_pip=True).create(env_dir)
    bindir = env_dir / "bin"
    drop = ("VIRTUAL_ENV", "PYTHONPATH", "NUMBA_ENABLE_CUDASIM")
    env = {k: v for k, v in os.environ.items() if not k.startswith(drop)}
    env["PATH"] = f"{bindir}{os.pathsep}{env['PATH']}"
    env["NEURO_KERNEL_CACHE"] = str(tmp_path / "kernels")
    demo = f"neuro demo --size tiny --no-progress --out {tmp_path / 'out'}"
    command = _readme_install_command().replace("neuro demo", demo)
    proc = subprocess.run(["bash", "-c", command], cwd=ROOT, env=env, capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    out = tmp_path / "out"
    assert "report and plots written to" in proc.stdout
    summary = json.loads((out / "summary.json").read_text())
    report = (out / "report.md").read_text()
    for name in re.findall(r"\]\(([^)]+\.png)\)", report):
        assert (out / name).stat().st_size > 1000, name
    sim = summary["simulation"]
    assert 1.0 < sim["mean_rate_hz"] < 20.0  # CUBA: Brian2 gives about 5-6 Hz
    conv = summary["conversion"]
    assert 0.8 < conv["ann_accuracy"] <= 1.0 and 0.8 < conv["accuracy_T32"] <= 1.0
    assert 0.5 < summary["training"]["snn_accuracy"] <= 1.0
    energy = summary["energy"]
    assert all(v > 0 for k, v in energy.items() if k.startswith("energy_"))
    for chip in summary["hardware"].values():
        assert chip["fits"] and (out / chip["file"]).stat().st_size > 1000
    assert summary["wall_s"] < 300
