"""Every notebook runs top to bottom (nbclient), so a broken notebook fails CI."""

from pathlib import Path

import pytest

nbformat = pytest.importorskip("nbformat")
nbclient = pytest.importorskip("nbclient")

NOTEBOOKS = sorted((Path(__file__).resolve().parent.parent / "notebooks").glob("*.ipynb"))


def test_there_are_six_notebooks():
    assert len(NOTEBOOKS) == 6


# Smaller values for the notebooks' "parameters" cell (papermill's convention): the suite checks that every
# notebook runs top to bottom; the full-size runs are what a reader executes.
QUICK = {
    "02_train_with_surrogate_gradients": {"EPOCHS": 2},
    "03_convert_a_cnn": {"EPOCHS": 6, "TIMESTEPS": [1, 4, 16, 64]},
    "04_energy_and_hardware": {"EPOCHS": 6},
    "06_bring_your_own_neuron": {"EPOCHS": 2},
}


def _with_quick_parameters(nb, name: str):
    quick = QUICK.get(name)
    if not quick:
        return nb
    cells = [i for i, c in enumerate(nb.cells) if "parameters" in c.get("metadata", {}).get("tags", [])]
    assert len(cells) == 1, f"{name}: one cell tagged 'parameters' expected"
    source = nb.cells[cells[0]].source
    for key in quick:  # an override of a name the notebook does not define would silently do nothing
        assert f"{key} = " in source, f"{name}: the parameters cell does not define {key}"
    override = nbformat.v4.new_code_cell("\n".join(f"{k} = {v!r}" for k, v in quick.items()))
    nb.cells.insert(cells[0] + 1, override)
    return nb


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_notebook_runs(path, tmp_path):
    nb = nbformat.read(path, as_version=4)
    assert all(not c.get("outputs") for c in nb.cells if c.cell_type == "code"), "outputs must be stripped in git"
    nb = _with_quick_parameters(nb, path.stem)
    client = nbclient.NotebookClient(nb, timeout=300, kernel_name="python3",
                                     resources={"metadata": {"path": str(tmp_path)}})
    client.execute()
