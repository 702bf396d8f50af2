"""The ``neuro`` command line over NIR files: results, clear errors and exit codes."""

import json
import subprocess
import sys

import h5py
import torch
from torch import nn

import neuro
from neuro.nn import TimeDistributed as TD


def run(*args):
    return subprocess.run([sys.executable, "-m", "neuro.cli", *args], capture_output=True, text=True, timeout=300)


def _file(tmp_path, out_channels=4):
    torch.manual_seed(0)
    net = nn.Sequential(TD(nn.Conv2d(1, out_channels, 3, padding=1)), neuro.nn.IF(), TD(nn.AvgPool2d(2)),
                        neuro.nn.Flatten(), TD(nn.Linear(out_channels * 16, 10)), neuro.nn.IF())
    path = tmp_path / "net.nir"
    neuro.io.write(path, net, (1, 8, 8), overwrite=True)
    return path


def test_info_fit_emit_energy(tmp_path):
    path = _file(tmp_path)
    out = run("info", str(path))
    assert out.returncode == 0 and "Conv2d" in out.stdout and "IF" in out.stdout
    out = run("fit", str(path), "--target", "speck", "--json")
    assert out.returncode == 0 and json.loads(out.stdout)["fits"] is True
    out = run("emit", str(path), "--target", "loihi2", "-o", str(tmp_path / "out.h5"))
    assert out.returncode == 0, out.stderr
    with h5py.File(tmp_path / "out.h5") as f:
        assert f["layer/1/type"][()].decode() == "conv"
    out = run("energy", str(path), "--input-shape", "1,8,8", "--timesteps", "8", "--no-progress",
              "--devices", "45nm,loihi")
    assert out.returncode == 0 and "| device | SNN energy |" in out.stdout
    out = run("simulate", str(path), "--input-shape", "1,8,8", "--timesteps", "20", "-o", str(tmp_path / "r.png"))
    assert out.returncode == 0 and "output events" in out.stdout and (tmp_path / "r.png").stat().st_size > 1000


def test_errors_and_exit_codes(tmp_path):
    out = run("info", str(tmp_path / "missing.nir"))
    assert out.returncode == 2 and "no such file" in out.stderr and "Traceback" not in out.stderr
    (tmp_path / "bad.nir").write_text("not hdf5")
    out = run("info", str(tmp_path / "bad.nir"))
    assert out.returncode == 2 and "is not a readable NIR file" in out.stderr
    path = _file(tmp_path)
    out = run("fit", str(path), "--target", "tpu")
    assert out.returncode == 2 and "unknown target 'tpu'; known targets: loihi2, nest, speck" in out.stderr
    big = _file(tmp_path, out_channels=2048)
    out = run("fit", str(big), "--target", "speck")
    assert out.returncode == 1 and "output channels needs 2048, chip allows 1024" in out.stdout
    out = run("emit", str(big), "--target", "speck", "-o", str(tmp_path / "x.nir"))
    assert out.returncode == 2 and "--force" in out.stderr
    out = run("fit", str(path))
    assert out.returncode == 2 and "--target" in out.stderr
    assert run("--help").returncode == 0
