"""Every docstring example in the public API runs (doctest)."""

import doctest
import importlib
import pkgutil

import pytest


def _modules():
    import neuro.hardware_targets
    import neuro.kernels

    names = {"neuro", "neuro.kernels", "neuro.hardware_targets"}
    # neuro.kernels and neuro.hardware_targets live in their own folders (package-dir), so walk each
    for pkg in (neuro, neuro.kernels, neuro.hardware_targets):
        for info in pkgutil.walk_packages(pkg.__path__, pkg.__name__ + "."):
            if not info.name.split(".")[-1].startswith("__"):
                names.add(info.name)
    return sorted(names)


@pytest.mark.parametrize("name", _modules())
def test_docstring_examples(name):
    try:
        module = importlib.import_module(name)
    except ImportError as exc:  # an optional dependency (e.g. cupy) missing: nothing to run there
        pytest.skip(f"{name} not importable here: {exc}")
    finder = doctest.DocTestFinder(exclude_empty=True)
    runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    for test in finder.find(module, name, globs={}):
        result = runner.run(test)
        assert result.failed == 0, f"doctest failed in {test.name}"
