"""Writing files safely (neuro.files) and refusing hostile files without allocating: the behaviours that are
easier to state as ordinary tests than as one-line catalogue cases."""

import json
import os
import resource
import stat

import h5py
import nir
import numpy as np
import pytest
import torch
from torch import nn

import neuro
from neuro.files import atomic_output, check_output_path, save_figure, write_text
from neuro.nn import TimeDistributed as TD


def _others(folder, keep):
    return sorted(p.name for p in folder.iterdir() if p.name not in keep)


def test_atomic_output_writes_complete_file_with_ordinary_permissions(tmp_path):
    target = tmp_path / "a.txt"
    with atomic_output(target) as tmp:
        assert tmp.parent == tmp_path and tmp.suffix == ".txt" and tmp != target
        tmp.write_text("hello")
        assert not target.exists()  # nothing at the real name until the write is complete
    assert target.read_text() == "hello"
    assert _others(tmp_path, {"a.txt"}) == []
    # the permissions an ordinary open() gives: 0o666 minus the umask
    umask = os.umask(0)
    os.umask(umask)
    ordinary = tmp_path / "ordinary.txt"
    ordinary.write_text("x")
    assert stat.S_IMODE(target.stat().st_mode) == stat.S_IMODE(ordinary.stat().st_mode) == 0o666 & ~umask


def test_old_file_is_readable_and_unchanged_during_and_after_a_failed_write(tmp_path):
    target = tmp_path / "data.bin"
    old = os.urandom(4096)
    target.write_bytes(old)
    with pytest.raises(RuntimeError, match="disk on fire"):
        with atomic_output(target, overwrite=True) as tmp:
            tmp.write_bytes(b"new" * 1000)
            assert target.read_bytes() == old  # a reader during the write sees the whole old file
            raise RuntimeError("disk on fire")
    assert target.read_bytes() == old
    assert _others(tmp_path, {"data.bin"}) == []


def test_interrupt_inside_a_write_leaves_no_partial_file(tmp_path):
    target = tmp_path / "new.bin"
    with pytest.raises(KeyboardInterrupt):
        with atomic_output(target) as tmp:
            tmp.write_bytes(b"half")
            raise KeyboardInterrupt
    assert list(tmp_path.iterdir()) == []


def test_overwrite_rule(tmp_path):
    target = tmp_path / "r.txt"
    write_text(target, "one")
    with pytest.raises(FileExistsError, match="r.txt' already exists; pass overwrite=True"):
        write_text(target, "two")
    assert target.read_text() == "one"
    write_text(target, "three", overwrite=True)
    assert target.read_text() == "three"


def test_file_that_appears_while_writing_is_not_replaced(tmp_path):
    target = tmp_path / "race.txt"
    with pytest.raises(FileExistsError, match="appeared while writing"):
        with atomic_output(target) as tmp:
            tmp.write_text("mine")
            target.write_text("someone else's")
    assert target.read_text() == "someone else's"
    assert _others(tmp_path, {"race.txt"}) == []


def test_never_over_an_input_even_through_a_hard_link_or_symlink(tmp_path):
    src = tmp_path / "in.nir"
    src.write_text("input")
    os.link(src, tmp_path / "hard.nir")
    os.symlink(src, tmp_path / "soft.nir")
    for name in ("in.nir", "hard.nir", "soft.nir"):
        with pytest.raises(ValueError, match="is the input file"):
            check_output_path(tmp_path / name, overwrite=True, inputs=[src])
    assert src.read_text() == "input"


def test_parent_folders_are_made_and_a_file_in_the_way_is_refused(tmp_path):
    deep = tmp_path / "a" / "b" / "c.txt"
    write_text(deep, "x")
    assert deep.read_text() == "x"
    (tmp_path / "plain").write_text("x")
    with pytest.raises(NotADirectoryError, match="is a file, not a folder"):
        write_text(tmp_path / "plain" / "c.txt", "x")


def test_save_figure_keeps_the_format_of_the_suffix(tmp_path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots()
    ax.plot([0, 1], [1, 0])
    save_figure(fig, tmp_path / "f.png")
    save_figure(fig, tmp_path / "f.pdf")
    plt.close(fig)
    assert (tmp_path / "f.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert (tmp_path / "f.pdf").read_bytes()[:5] == b"%PDF-"
    assert _others(tmp_path, {"f.png", "f.pdf"}) == []


def test_nir_write_is_atomic_and_reads_back_to_the_same_network(tmp_path):
    torch.manual_seed(0)
    net = nn.Sequential(TD(nn.Linear(4, 3)), neuro.nn.LIF(beta=0.8))
    path = tmp_path / "net.nir"
    neuro.io.write(path, net, (4,))
    assert _others(tmp_path, {"net.nir"}) == []
    x = torch.rand(10, 2, 4) * 2
    with torch.no_grad():
        assert torch.equal(neuro.from_nir(path)(x), net(x))
    # a failing re-write (NaN weight) leaves the good file in place
    with torch.no_grad():
        net[0].layer.weight[0, 0] = float("nan")
    before = path.read_bytes()
    with pytest.raises(ValueError, match="0.layer.weight"):
        neuro.io.write(path, net, (4,), overwrite=True)
    assert path.read_bytes() == before and _others(tmp_path, {"net.nir"}) == []


def _peak_rss_mb():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def test_huge_declared_shapes_are_refused_before_allocating(tmp_path):
    # a file can declare a 4 GiB weight without holding it (chunked, never written): refused from the header
    path = tmp_path / "huge.nir"
    with h5py.File(path, "w") as f:
        n = f.create_group("node")
        n.create_dataset("type", data=b"NIRGraph")
        n.create_dataset("edges", data=np.zeros((0, 2), "S1"))
        g = n.create_group("nodes").create_group("fc")
        g.create_dataset("type", data=b"Linear")
        g.create_dataset("weight", shape=(2**20, 2**10), dtype="f4", chunks=(1024, 64))
    assert path.stat().st_size < 1_000_000
    before = _peak_rss_mb()
    with pytest.raises(ValueError, match="'fc': weight declares"):
        neuro.from_nir(path)
    # a graph declaring an input of 10**12 values per sample
    g = nir.NIRGraph(nodes={"input": nir.Input({"input": np.array([10**6, 10**6])}),
                            "s": nir.Scale(scale=np.ones(1, np.float32)),
                            "output": nir.Output({"output": np.array([10**6, 10**6])})},
                     edges=[("input", "s"), ("s", "output")], type_check=False)
    with pytest.raises(ValueError, match="MAX_ELEMENTS"):
        neuro.from_nir(g)
    assert _peak_rss_mb() - before < 200  # no gigabyte allocation was attempted


def test_cli_absurd_sizes_fail_fast_without_allocating(tmp_path, capsys):
    from neuro.cli import main

    net = nn.Sequential(TD(nn.Linear(8, 4)), neuro.nn.LIF(beta=0.9))
    path = tmp_path / "net.nir"
    neuro.io.write(path, net, (8,))
    before = _peak_rss_mb()
    for args in (["--timesteps", str(10**9)], ["--batch", str(10**8), "--timesteps", "100"]):
        assert main(["energy", str(path), "--input-shape", "8", "--no-progress", *args]) == 2
        err = capsys.readouterr().err
        assert err.count("error:") == 1 and "Traceback" not in err
    assert _peak_rss_mb() - before < 200


def test_cli_keeps_old_output_and_replaces_it_only_with_overwrite(tmp_path, capsys):
    from neuro.cli import main

    net = nn.Sequential(TD(nn.Linear(8, 4)), neuro.nn.LIF(beta=0.9))
    src = tmp_path / "net.nir"
    neuro.io.write(src, net, (8,))
    out = tmp_path / "net.py"
    out.write_text("old script")
    assert main(["emit", str(src), "--target", "nest", "-o", str(out)]) == 2
    assert "already exists" in capsys.readouterr().err and out.read_text() == "old script"
    assert main(["emit", str(src), "--target", "nest", "-o", str(out), "--overwrite"]) == 0
    assert "import pyNN.nest" in out.read_text()
    assert _others(tmp_path, {"net.nir", "net.py"}) == []


def test_demo_output_folder_rule(tmp_path):
    from neuro.demo import OUTPUTS, _check_out_dir

    # an empty or new folder: nothing to replace
    assert _check_out_dir(tmp_path / "new", overwrite=False) == ([], False)
    # a previous demo run: its own files are replaced, the user's other files are not even looked at
    run = tmp_path / "run"
    run.mkdir()
    (run / "summary.json").write_text(json.dumps({"neuro_demo": 1, "size": "tiny"}))
    (run / "raster.png").write_bytes(b"old")
    (run / "my_notes.txt").write_text("mine")
    existing, previous = _check_out_dir(run, overwrite=False)
    assert previous and sorted(existing) == ["raster.png", "summary.json"]
    assert set(existing) <= set(OUTPUTS) and "my_notes.txt" not in existing
    # a folder that happens to hold a file of a demo name: refused unless overwrite
    user = tmp_path / "user"
    user.mkdir()
    (user / "report.md").write_text("my thesis")
    with pytest.raises(FileExistsError, match="not a previous demo run"):
        _check_out_dir(user, overwrite=False)
    assert _check_out_dir(user, overwrite=True) == (["report.md"], False)
    assert (user / "report.md").read_text() == "my thesis"
    # a file where the folder should be
    (tmp_path / "afile").write_text("x")
    with pytest.raises(NotADirectoryError):
        _check_out_dir(tmp_path / "afile", overwrite=True)
