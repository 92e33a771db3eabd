"""Contracts under faults (issue 16): a NaN inside Newton, restarts inside Newton, and
extreme inputs that must give exit 2 with one line naming the key (or a solution, or
exit 3 with one line), never a traceback or a page of warnings."""
import contextlib
import io
import warnings

import h5py
import numpy as np
import petsc4py
import pytest

petsc4py.init()
from conftest import RUNS  # noqa: E402
from test_faults import PoisonedLQ  # noqa: E402
from mfgpde import cli  # noqa: E402
from mfgpde.config import load, validate  # noqa: E402
from mfgpde.runner import run  # noqa: E402
from mfgpde.solvers import SolverError  # noqa: E402


def _newton_cfg(calls):
    return validate({"model": {"name": "test_poisoned_lq", "calls": calls},
                     "grid": {"lower": [-2.5], "upper": [3.5], "n": [30]}, "time": {"T": 1.0, "nt": 8},
                     "solver": {"coupling": "newton"}})


# 100 calls: NaN already in the first Newton residual; 150: during Newton iteration 1
@pytest.mark.parametrize("calls, iteration", [(100, 0), (150, 1)])
def test_nan_inside_newton_names_iteration_level_and_field_and_writes_nothing(calls, iteration, tmp_path):
    PoisonedLQ.seen = 0
    with pytest.raises(SolverError, match=rf"Newton after {iteration} iterations: the HJB residual \(u\) is not finite "
                                          r"\(NaN or Inf\) at time level \d+ \(t = [\d.]+\)"):
        run(_newton_cfg(calls), tmp_path / "x.h5", verbose=False)
    assert list(tmp_path.iterdir()) == []
