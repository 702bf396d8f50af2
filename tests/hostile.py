"""The format of the hostile-input catalogue (``tests/hostile_cases_*.py``, run by ``test_hostile_inputs.py``).

Each case is one line of data: a name, what to call, and what must happen.

- ``error`` and ``match``: the call raises ``error`` (a subclass counts) and its message contains ``match``
  (a case-insensitive regular expression; name the user's parameter or the bad value).
- ``check``: a legal edge case (T = 0, B = 0, ...); the call returns and ``check(result)`` is true.
- ``code`` instead of ``call``: Python source run in a child process (for inputs that could crash the
  interpreter); the last expression's exception, or none, is reported back and judged the same way.

Example (one line each)::

    Case("lif-nan-tau", lambda: neuro.models.LIF(tau_m=float("nan")), ValueError, "tau_m"),
    Case("scan-T0", lambda: scan(np.zeros((0, 1, 3))), check=lambda out: out[0].shape == (0, 1, 3)),
    Case("scan-param-1-vs-200k", code="neuro.nn.neuron_scan(...)", error=ValueError, match="shape"),
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import textwrap
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Case:
    name: str
    call: Callable[[], Any] | None = None
    error: type[BaseException] | None = None
    match: str = ""
    check: Callable[[Any], bool] | None = None
    code: str | None = None

    def __post_init__(self):
        if (self.call is None) == (self.code is None):
            raise TypeError(f"case {self.name}: give exactly one of call and code")
        if (self.error is None) == (self.check is None):
            raise TypeError(f"case {self.name}: give exactly one of error (with match) and check")


_CHILD = """
import json, sys, traceback
try:
{body}
except BaseException as exc:
    print(json.dumps({{"type": [c.__name__ for c in type(exc).__mro__], "msg": str(exc)}}))
else:
    print(json.dumps({{"type": None, "msg": ""}}))
"""


def run_case(case: Case) -> None:
    """Run one case and assert what it must do."""
    if case.code is not None:
        src = _CHILD.format(body=textwrap.indent(textwrap.dedent(case.code), "    "))
        proc = subprocess.run([sys.executable, "-c", src], capture_output=True, text=True, timeout=600)
        assert proc.returncode == 0, f"{case.name}: child process died with {proc.returncode}: {proc.stderr[-2000:]}"
        report = json.loads(proc.stdout.strip().splitlines()[-1])
        if case.error is not None:
            assert report["type"] is not None, f"{case.name}: expected {case.error.__name__}, nothing was raised"
            assert case.error.__name__ in report["type"], f"{case.name}: raised {report['type'][0]}: {report['msg']}"
            assert re.search(case.match, report["msg"], re.I), f"{case.name}: message {report['msg']!r} lacks " \
                                                                f"{case.match!r}"
        else:
            assert report["type"] is None, f"{case.name}: raised {report['type'][0]}: {report['msg']}"
        return
    if case.error is not None:
        try:
            case.call()
        except case.error as exc:
            assert re.search(case.match, str(exc), re.I), f"{case.name}: message {str(exc)!r} lacks {case.match!r}"
        except BaseException as exc:
            raise AssertionError(f"{case.name}: expected {case.error.__name__}, got {type(exc).__name__}: {exc}") \
                from exc
        else:
            raise AssertionError(f"{case.name}: expected {case.error.__name__}, nothing was raised")
    else:
        result = case.call()
        assert case.check(result), f"{case.name}: legal input gave an unexpected result: {result!r}"[:2000]
