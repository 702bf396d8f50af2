"""The hostile-input catalogue: at least 200 inputs a careless or unlucky user could give, each with what
must happen (a clear error naming the problem, or the valid result of a legal edge case). The cases live in
``hostile_cases_*.py`` as one line of data each; see ``hostile.py`` for the format."""

import importlib
import pathlib

import pytest
from hostile import Case, run_case

_HERE = pathlib.Path(__file__).parent
_MODULES = sorted(p.stem for p in _HERE.glob("hostile_cases_*.py"))
CASES: list[Case] = [c for m in _MODULES for c in importlib.import_module(m).CASES]


def test_catalogue_is_large_and_names_are_unique():
    names = [c.name for c in CASES]
    assert len(names) == len(set(names)), sorted({n for n in names if names.count(n) > 1})
    assert len(CASES) >= 200, f"only {len(CASES)} hostile cases"


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_hostile_input(case):
    run_case(case)
