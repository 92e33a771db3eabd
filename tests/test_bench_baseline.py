"""The scipy baseline (mfgpde.bench.baseline) solves exactly the PETSc solver's discretisation:
same u and m to 1e-9, same Picard iteration count, one spsolve per Newton step and per FP step."""
import copy

import numpy as np
import petsc4py
import pytest

petsc4py.init()
from mfgpde.bench.baseline import scipy_picard  # noqa: E402
from mfgpde.config import validate  # noqa: E402
from mfgpde.pipelines.mfg import build_problem  # noqa: E402
from mfgpde.solvers import PicardSolver  # noqa: E402
from mfgpde.validation.cases import LQ_MODEL  # noqa: E402

CASES = {
    "lq_1d_reflecting": ({**LQ_MODEL, "mu0": 0.5}, [-2.5], [3.5], [60], 15, "reflecting"),
    "lq_2d_reflecting": ({**LQ_MODEL, "mu0": [0.5, -0.4]}, [-1.5, -2.4], [2.5, 1.6], [16, 14], 6, "reflecting"),
    "lq_1d_periodic": ({**LQ_MODEL, "mu0": 0.8, "q": 2.0}, [-2.0], [2.5], [50], 10, "periodic"),
}


def _problem(name):
    model, lower, upper, n, nt, boundary = CASES[name]
    cfg = validate({"model": copy.deepcopy(model),
                    "grid": {"lower": lower, "upper": upper, "n": n, "boundary": boundary},
                    "time": {"T": 1.0, "nt": nt},
                    "solver": {"tolerance": 1e-10, "damping": 1.0}})
    return build_problem(cfg)


@pytest.mark.slow
@pytest.mark.parametrize("name, damping", [(name, 1.0) for name in CASES] + [("lq_1d_reflecting", 0.6)])
def test_baseline_matches_petsc_picard(name, damping):
    from petsc4py import PETSc
    problem = _problem(name)
    opts = PETSc.Options()
    lu = {f"{p}_{k}": v for p in ("hjb", "fp") for k, v in (("ksp_type", "preonly"), ("pc_type", "lu"))}
    for k, v in lu.items():  # exact level solves, as spsolve's (the default on 2-D grids is ILU)
        opts.setValue(k, v)
    try:
        ref = PicardSolver(problem, damping=damping, tol=1e-10).solve()
    finally:
        for k in lu:
            opts.delValue(k)
    base = scipy_picard(problem, damping=damping, tol=1e-10)
    assert ref.converged and base["converged"]
    assert base["u"].shape == base["m"].shape == (problem.nt + 1,) + tuple(problem.grid.n)
    np.testing.assert_allclose(base["u"], ref.u, rtol=0, atol=1e-9)
    np.testing.assert_allclose(base["m"], ref.m, rtol=0, atol=1e-9)
    assert base["iterations"] == ref.iterations
    assert base["newton_iterations"] == ref.stats["hjb_newton_iterations"] > 0
    assert base["linear_solves"] == base["newton_iterations"] + base["iterations"] * problem.nt
    assert base["wall_time"] > 0


def test_unconverged_reported():
    problem = _problem("lq_1d_reflecting")
    base = scipy_picard(problem, damping=1.0, tol=1e-10, max_iterations=2)
    assert not base["converged"] and base["iterations"] == 2
    assert base["linear_solves"] == base["newton_iterations"] + 2 * problem.nt


def test_bad_damping_refused():
    with pytest.raises(ValueError, match="damping"):
        scipy_picard(_problem("lq_1d_reflecting"), damping=0.0)
