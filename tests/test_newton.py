"""Newton on the whole space–time system: Jacobian checked by PETSc, quadratic and
mesh-independent convergence on the LQ case, agreement with Picard, local couplings."""
import re

import h5py
import numpy as np
import petsc4py
import pytest

petsc4py.init()
from conftest import RUNS, mfgpde  # noqa: E402
from mfgpde.grids import Grid  # noqa: E402
from mfgpde.models import create  # noqa: E402
from mfgpde.solvers import MFGProblem, NewtonCoupling, PicardSolver  # noqa: E402


class Record:
    def __init__(self):
        self.rows = []

    def __call__(self, info):
        self.rows.append(info)


def _newton(model, grid, T=1.0, nt=20, linear="direct"):
    record = Record()
    pb = MFGProblem(grid, model, T, nt)
    solution = NewtonCoupling(pb, damping=1.0, tol=1e-10, monitors=[record], linear=linear).solve()
    return solution, [r for r in record.rows if r.kind == "newton"]


@pytest.mark.slow
@pytest.mark.parametrize("case", ["lq_mfg_1d", "lq_mfg_2d"])
def test_jacobian_matches_finite_differences(case, tmp_path):
    grid = "grid.n=[9]" if case == "lq_mfg_1d" else "grid.n=[6,5]"
    proc = mfgpde("run", RUNS / f"{case}.toml", "--set", grid, "--set", "time.nt=3", "--set",
                  "solver.coupling='newton'", "--set", "output.plots=false", "-newton_snes_test_jacobian",
                  "-o", tmp_path / "j.h5")
    ratios = [float(v) for v in re.findall(r"\|\|J - Jfd\|\|_F/\|\|J\|\|_F = ([0-9.eE+-]+)", proc.stdout)]
    assert proc.returncode == 0 and len(ratios) >= 2, proc.stdout[-2000:] + proc.stderr[-2000:]
    assert max(ratios) < 1e-6


def test_jacobian_with_local_coupling(crowd_aversion):
    """H = ½|p|² − m: J·dX against a finite difference of the residual at a random state."""
    grid = Grid([-1.0], [1.0], [9])
    pb = MFGProblem(grid, create("test_crowd_aversion", 1), 0.5, 3)
    coupling = NewtonCoupling(pb, damping=1.0)
    snes = coupling.newton.snes
    X = coupling.newton.layout.create_vec()
    rng = np.random.default_rng(0)
    X.setArray(rng.uniform(0.2, 1.0, X.getLocalSize()))
    J = coupling.newton._J
    coupling.newton.jacobian(snes, X, J, J)
    F0, F1 = X.duplicate(), X.duplicate()
    coupling.newton.residual(snes, X, F0)
    dX = X.duplicate()
    dX.setArray(rng.normal(size=X.getLocalSize()))
    eps = 1e-7
    Xp = X.copy()
    Xp.axpy(eps, dX)
    coupling.newton.residual(snes, Xp, F1)
    Jd = X.duplicate()
    J.mult(dX, Jd)
    fd = (F1.getArray() - F0.getArray()) / eps
    assert np.max(np.abs(fd - Jd.getArray())) < 1e-5 * np.max(np.abs(Jd.getArray()))


@pytest.mark.slow
@pytest.mark.parametrize("dim", [1, 2])
def test_lq_newton_converges_fast_and_mesh_independently(dim):
    """Residual 1e-10 in at most 8 iterations; no more iterations after refining twice."""
    counts = []
    sizes = [(50, 10), (100, 20), (200, 40)] if dim == 1 else [(12, 4), (24, 8), (48, 16)]
    for n, nt in sizes:
        grid = Grid([-1.5, -2.4][:dim], [2.5, 1.6][:dim], [n] * dim)
        sol, rows = _newton(create("lq_mfg", dim, rho=0.1, mu0=[0.5, -0.4][:dim]), grid, nt=nt)
        assert sol.converged, sol.status
        norms = [np.hypot(r.residual_u, r.residual_m) for r in rows]
        assert norms[-1] < 1e-10
        assert norms[-1] < norms[-2] ** 1.5  # quadratic convergence at the end
        counts.append(len(rows) - 1)
    assert max(counts) <= 8
    assert counts[-1] <= counts[0]


@pytest.mark.slow
@pytest.mark.parametrize("linear", ["fieldsplit", "marching"])
@pytest.mark.parametrize("dim", [1, 2])
def test_fieldsplit_krylov_iterations_stay_bounded_under_refinement(dim, linear):
    """FGMRES + block Gauss–Seidel over (u, m, mean), the fields inverted by MUMPS or by
    marching in time: Krylov iterations per Newton step do not grow as h and dt are halved
    twice, and the solution is the direct solve's."""
    per_step = []
    sizes = [(50, 10), (100, 20), (200, 40)] if dim == 1 else [(12, 4), (24, 8), (48, 16)]
    for n, nt in sizes:
        grid = Grid([-1.5, -2.4][:dim], [2.5, 1.6][:dim], [n] * dim)
        model = create("lq_mfg", dim, rho=0.1, mu0=[0.5, -0.4][:dim])
        sol, rows = _newton(model, grid, nt=nt, linear=linear)
        assert sol.converged, sol.status
        per_step.append(rows[-1].linear_iterations / (len(rows) - 1))
        if n == sizes[0][0]:
            direct, _ = _newton(model, grid, nt=nt)
            assert grid.max_abs(sol.u - direct.u) < 1e-9 and grid.max_abs(sol.m - direct.m) < 1e-9
    assert max(per_step) <= 12 and per_step[-1] <= 1.5 * per_step[0], per_step


@pytest.mark.slow
@pytest.mark.parametrize("dim", [1, 2])
def test_newton_and_picard_agree(dim):
    grid = Grid([-2.0] * dim, [3.0] * dim, [40] if dim == 1 else [20, 18])
    model = create("lq_mfg", dim, rho=0.1, mu0=[0.5, -0.3][:dim])
    newton, _ = _newton(model, grid, nt=10)
    picard = PicardSolver(MFGProblem(grid, model, 1.0, 10), damping=1.0, tol=1e-12, max_iterations=200).solve()
    assert newton.converged and picard.converged
    assert grid.max_abs(newton.u - picard.u) < 1e-9 and grid.max_abs(newton.m - picard.m) < 1e-9
    assert np.max(np.abs(grid.integrate(newton.m) - 1.0)) < 1e-12


@pytest.mark.slow
def test_newton_with_local_coupling_agrees_with_picard(crowd_aversion):
    grid = Grid([-1.5], [1.5], [60])
    model = create("test_crowd_aversion", 1)
    newton, _ = _newton(model, grid, nt=20)
    picard = PicardSolver(MFGProblem(grid, model, 1.0, 20), damping=0.5, tol=1e-11, max_iterations=300).solve()
    assert newton.converged and picard.converged
    assert grid.max_abs(newton.m - picard.m) < 1e-8 and grid.max_abs(newton.u - picard.u) < 1e-8


@pytest.mark.slow
@pytest.mark.mpi
def test_newton_one_and_two_ranks_agree(tmp_path):
    out = {}
    for nproc in (None, 2):
        path = tmp_path / f"n{nproc or 1}.h5"
        proc = mfgpde("run", RUNS / "lq_mfg_2d.toml", "--set", "grid.n=[16,14]", "--set", "time.nt=6",
                      "--set", "solver.coupling='newton'", "--set", "output.plots=false", "-o", path, nproc=nproc)
        assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
        assert "newton" in proc.stdout
        with h5py.File(path) as f:
            out[nproc] = {k: f["solution"][k][()] for k in ("u", "m")}
    for k in ("u", "m"):
        assert np.max(np.abs(out[None][k] - out[2][k])) < 1e-10


@pytest.mark.slow
def test_newton_pc_type_gets_an_assembled_jacobian(tmp_path):
    """With newton_linear = "auto" a -newton_pc_type selects the assembled Jacobian (LU here
    solves it in one step per Newton iteration); "marching" with it is bad input (exit 2)."""
    args = ("run", RUNS / "lq_mfg_2d.toml", "--set", "grid.n=[10,8]", "--set", "time.nt=4", "--set",
            "solver.coupling='newton'", "--set", "output.plots=false")
    proc = mfgpde(*args, "-newton_pc_type", "lu", "-newton_ksp_type", "preonly", "-o", tmp_path / "a.h5")
    assert proc.returncode == 0, proc.stderr[-2000:]
    with h5py.File(tmp_path / "a.h5", "r") as f:
        assert f.attrs["converged"] and f.attrs["newton_linear_iterations"] == f.attrs["newton_iterations"]
    proc = mfgpde(*args, "--set", "solver.newton_linear='marching'", "-newton_pc_type", "lu", "-o", tmp_path / "b.h5")
    assert proc.returncode == 2 and "solver.newton_linear" in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1 and not (tmp_path / "b.h5").exists()
