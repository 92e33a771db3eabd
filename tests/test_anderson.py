"""The default coupling (Anderson-accelerated Picard) and the per-level solver rule: the
same solution as Picard, the same as the independent scipy baseline, fewer sweeps,
iteration counts flat under refinement, a fallback, restarts, and each branch of the rule."""
from types import SimpleNamespace

import h5py
import numpy as np
import petsc4py
import pytest

petsc4py.init()
from conftest import RUNS, run_in_process  # noqa: E402

from mfgpde.bench.baseline import scipy_anderson  # noqa: E402
from mfgpde.config import load  # noqa: E402
from mfgpde.pipelines.mfg import build_problem  # noqa: E402
from mfgpde.solvers import AndersonSolver, MassMonitor, PicardSolver, check_finite  # noqa: E402
from mfgpde.solvers.linear import ILU_MAX_RATIO, SSOR_MAX_RATIO, level_solver  # noqa: E402


def _problem(runfile, n, nt, *sets):
    return build_problem(load(RUNS / runfile, [f"grid.n={list(n)}", f"time.nt={nt}", *sets]))


@pytest.mark.slow
@pytest.mark.parametrize("runfile, n, nt", [("lq_mfg_1d.toml", [120], 30), ("lq_mfg_2d.toml", [30, 26], 10),
                                            ("congestion_2d.toml", [28, 28], 10)])
def test_same_solution_as_picard_in_fewer_sweeps(runfile, n, nt):
    """Mean path (LQ) and density path (congestion) as the unknown: u and m agree with
    damped Picard's to the coupling tolerance, mass is conserved, and fewer sweeps run."""
    pb = _problem(runfile, n, nt)
    a = AndersonSolver(pb, tol=1e-10, monitors=[check_finite, MassMonitor(1e-12)]).solve()
    p = PicardSolver(_problem(runfile, n, nt), damping=0.5, tol=1e-10).solve()
    assert a.converged and p.converged and "Anderson" in a.status
    assert a.iterations < 0.6 * p.iterations, (a.iterations, p.iterations)
    for x, y in ((a.u, p.u), (a.m, p.m)):
        assert np.max(np.abs(x - y)) < 1e-8 * np.max(np.abs(y))
    mass = pb.grid.integrate(a.m)
    assert np.max(np.abs(mass - 1.0)) < 1e-12 and a.m.min() >= -1e-14


def test_mixing_parameter_changes_the_path_not_the_fixed_point():
    """The damped step (β < 1, the density path's default 0.8) and the plain one (β = 1)
    reach the same u and m; β outside (0, 1] is refused."""
    from petsc4py import PETSc
    opts, sols = PETSc.Options(), {}
    try:
        for beta in (None, 1.0, 0.5):
            if beta is not None:
                opts.setValue("anderson_beta", beta)
            solver = AndersonSolver(_problem("congestion_2d.toml", [16, 16], 6), tol=1e-10)
            assert solver.beta == (0.8 if beta is None else beta)
            sols[beta] = solver.solve()
            assert sols[beta].converged
        for beta in (0.0, 1.5):
            opts.setValue("anderson_beta", beta)
            with pytest.raises(ValueError, match="-anderson_beta"):
                AndersonSolver(_problem("congestion_2d.toml", [16, 16], 6))
    finally:
        opts.delValue("anderson_beta")
    for beta in (1.0, 0.5):
        for k in ("u", "m"):
            ref = getattr(sols[None], k)
            assert np.max(np.abs(getattr(sols[beta], k) - ref)) < 1e-8 * np.max(np.abs(ref)), (beta, k)
    assert AndersonSolver(_problem("lq_mfg_1d.toml", [20], 4)).beta == 1.0  # the mean path


@pytest.mark.slow
@pytest.mark.parametrize("runfile, n, nt", [("lq_mfg_2d.toml", [24, 20], 8), ("congestion_2d.toml", [24, 24], 8)])
def test_scipy_baseline_solves_the_same_fixed_point(runfile, n, nt):
    """The strong baseline (BiCGSTAB + Jacobi, numpy Anderson) reaches the same u and m."""
    a = AndersonSolver(_problem(runfile, n, nt), tol=1e-9).solve()
    b = scipy_anderson(_problem(runfile, n, nt), tol=1e-9)
    assert a.converged and b["converged"]
    assert abs(b["iterations"] - a.iterations) <= 2
    np.testing.assert_allclose(b["u"], a.u, rtol=0, atol=1e-7 * np.max(np.abs(a.u)))
    np.testing.assert_allclose(b["m"], a.m, rtol=0, atol=1e-7 * np.max(np.abs(a.m)))


@pytest.mark.slow
def test_iterations_flat_under_refinement():
    """h and dt refined together (ν·dt/h² doubles): outer iterations do not grow and the
    linear iterations per level solve grow at most 1.5× per refinement (the level solves
    per outer iteration double with nt)."""
    counts = []
    for n, nt in (([33, 33], 6), ([65, 65], 12), ([129, 129], 24)):
        sol = AndersonSolver(_problem("lq_mfg_2d.toml", n, nt, "time.T=0.5")).solve()
        assert sol.converged
        s = sol.stats
        solves = s["hjb_newton_iterations"] + s["fp_solves"]
        counts.append((sol.iterations, (s["hjb_linear_iterations"] + s["fp_linear_iterations"]) / solves))
    its, linear = zip(*counts)
    assert max(its[1:]) <= its[0], counts
    assert all(b <= 1.5 * a for a, b in zip(linear, linear[1:])), counts


def test_fallback_to_picard_when_a_sweep_fails(monkeypatch):
    """A failing Anderson sweep hands over to damped Picard, which the status names."""
    import mfgpde.solvers.anderson as anderson
    pb = _problem("lq_mfg_1d.toml", [60], 10)
    calls = []

    def broken(self, x, f):
        calls.append(1)
        raise anderson.SolverError("HJB Newton did not converge at t=0.5 (SNES reason -3)")
    monkeypatch.setattr(anderson.AndersonSolver, "_evaluate", broken)
    solver = AndersonSolver(pb, tol=1e-9, fallback=lambda: PicardSolver(pb, tol=1e-9))
    sol = solver.solve()
    assert calls and sol.converged and "Picard" in sol.status and "Anderson iteration 1" in sol.status


def test_unconverged_anderson_is_reported(tmp_path):
    """Out of iterations while the residual still falls: not converged (exit 3), no fallback."""
    r = run_in_process("run", RUNS / "lq_mfg_2d.toml", "--set", "grid.n=[24,20]", "--set", "time.nt=8",
                       "--set", "solver.max_iterations=3", "--set", "output.plots=false", "-o", tmp_path / "o.h5")
    assert r.returncode == 3 and "3 Anderson iterations" in r.stderr and "Picard" not in r.stdout + r.stderr
    assert not (tmp_path / "o.h5").exists() and (tmp_path / "o.unconverged.h5").exists()


@pytest.mark.slow
def test_restart_from_a_checkpoint_reaches_the_answer(tmp_path):
    """Anderson's checkpoint holds u and the density of its last sweep; a restart from it
    converges to the uninterrupted solution within the tolerance (the mixing history is
    not saved, so not bitwise)."""
    study = [RUNS / "congestion_2d.toml", "--set", "grid.n=[24,24]", "--set", "time.nt=8",
             "--set", "output.plots=false", "--set", "solver.tolerance=1e-10"]
    full = run_in_process("run", *study, "-o", tmp_path / "full.h5")
    assert full.returncode == 0, full.stderr
    part = run_in_process("run", *study, "--set", "solver.max_iterations=4", "--set", "output.checkpoint_every=1",
                          "-o", tmp_path / "part.h5")
    assert part.returncode == 3 and (tmp_path / "part.ckpt.h5").exists()
    done = run_in_process("run", *study, "--restart", tmp_path / "part.ckpt.h5", "-o", tmp_path / "part.h5")
    assert done.returncode == 0, done.stderr
    with h5py.File(tmp_path / "full.h5") as f, h5py.File(tmp_path / "part.h5") as g:
        assert g["history/iteration"][0] == 1 and g.attrs["iterations"] > 4
        for k in ("u", "m"):
            a, b = f["solution"][k][()], g["solution"][k][()]
            assert np.max(np.abs(a - b)) < 1e-8 * np.max(np.abs(a)), k


def _grid(dim, cells, ranks):
    return SimpleNamespace(dim=dim, n=[cells] * dim, comm=SimpleNamespace(Get_size=lambda: ranks))


@pytest.mark.parametrize("dim, cells, ranks, ratio, choice", [
    (1, 1000, 1, 1e3, "lu"),                      # 1-D, one rank: tridiagonal LU
    (1, 1000, 2, 0.5, "ssor"),                    # 1-D over ranks: no serial factor
    (1, 1000, 2, 5.0, "ilu"),
    (2, 65, 1, 0.5, "ssor"),                      # small 2-D, dominant diagonal
    (2, 257, 1, SSOR_MAX_RATIO, "ssor"),
    (2, 257, 1, 1.01 * SSOR_MAX_RATIO, "ilu"),
    (2, 257, 2, 0.5, "ssor"),                     # over ranks: SSOR local to each rank
    (2, 257, 2, 5.0, "ilu"),                      # over ranks: block Jacobi/ILU
    (2, 65, 1, 2 * ILU_MAX_RATIO, "lu"),          # small 2-D, ILU would need many iterations
    (2, 257, 1, ILU_MAX_RATIO, "ilu"),
    (2, 257, 1, 1.01 * ILU_MAX_RATIO, "amg"),
    (2, 65, 2, 2 * ILU_MAX_RATIO, "amg"),         # small 2-D over ranks
    (3, 16, 1, 2 * ILU_MAX_RATIO, "amg"),         # 3-D never factored (fill)
    (3, 16, 1, 1.0, "ssor"),
    (3, 16, 1, 2 * SSOR_MAX_RATIO, "ilu"),
])
def test_level_solver_rule(dim, cells, ranks, ratio, choice):
    assert level_solver(_grid(dim, cells, ranks), ratio) == choice


@pytest.mark.parametrize("ratio_sets, pc", [(["time.T=0.1"], "sor"), (["time.T=0.5"], "bjacobi"),
                                           (["time.T=100.0"], "hypre")])
def test_rule_sets_the_solver_and_options_override_it(ratio_sets, pc):
    """The rule's choice is what the HJB and Fokker–Planck solvers get; -hjb_pc_type wins."""
    from petsc4py import PETSc
    from mfgpde.solvers import FPSolver, HJBSolver
    pb = _problem("lq_mfg_2d.toml", [150, 150], 4, *ratio_sets)
    assert HJBSolver(pb).snes.getKSP().getPC().getType() == pc
    assert FPSolver(pb).ksp.getPC().getType() == pc
    opts = PETSc.Options()
    opts.setValue("hjb_pc_type", "jacobi")
    try:
        assert HJBSolver(pb).snes.getKSP().getPC().getType() == "jacobi"
    finally:
        opts.delValue("hjb_pc_type")



def test_sweep_guess_extrapolates_the_change():
    """The start of a level is the sweep before plus its change extrapolated linearly in
    time: exact for a change affine in t, both directions; one level back where only one
    exists."""
    from mfgpde.solvers.problem import sweep_guess
    t = np.linspace(0.0, 1.0, 6)[:, None] * np.ones((6, 3))
    previous = np.cos(3 * t)
    path = previous + (0.2 - 0.7 * t)
    assert np.allclose(sweep_guess(previous, path, 2, -1), path[2])
    assert np.allclose(sweep_guess(previous, path, 3, 1), path[3])
    assert np.allclose(sweep_guess(previous, path, 4, -1), previous[4] + path[5] - previous[5])
    assert np.allclose(sweep_guess(previous, path, 1, 1), previous[1] + path[0] - previous[0])


def test_extrapolated_starts_save_linear_iterations(monkeypatch):
    """Warm sweeps started from the extrapolated change reach the same fixed point in fewer
    Newton and linear iterations than sweeps started from the sweep before (measured on
    this case: 490 against 955 linear iterations)."""
    import mfgpde.solvers.fp as fp
    import mfgpde.solvers.hjb as hjb
    runs = {}
    for name in ("extrapolated", "previous"):
        if name == "previous":
            for module in (fp, hjb):
                monkeypatch.setattr(module, "sweep_guess", lambda previous, path, k, step: previous[k])
        sol = AndersonSolver(_problem("lq_mfg_2d.toml", [48, 48], 16)).solve()
        assert sol.converged
        runs[name] = sol
    a, b = runs["extrapolated"], runs["previous"]
    assert np.max(np.abs(a.u - b.u)) <= 1e-6 * np.max(np.abs(b.u))
    linear = {k: s.stats["hjb_linear_iterations"] + s.stats["fp_linear_iterations"] for k, s in runs.items()}
    assert a.stats["hjb_newton_iterations"] < b.stats["hjb_newton_iterations"]
    assert linear["extrapolated"] < 0.7 * linear["previous"], linear
