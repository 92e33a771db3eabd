"""The robust crowd-seeking designer game on the grid against its Riccati closed forms:
the scalar game (first order, constant mean), the 2-player TU game (q = 3, indefinite M,
conjugate time), five populations on a chain (consensus), serial = 2 ranks."""
import time

import h5py
import numpy as np
import pytest

from conftest import RUNS, mfgpde, run_in_process
from mfgpde.config import validate
from mfgpde.models.base import ModelError
from mfgpde.models.registry import create
from mfgpde.pipelines.mfg import build_problem, build_solver
from mfgpde.validation.cases import convergence_study
from mfgpde.validation.study import moments_path

NOPLOTS = ["--set", "output.plots=false"]
TU2_SMALL = ["--set", "grid.n=[10,10,10]", "--set", "time.nt=8"]
CHAIN_SMALL = ["--set", "grid.n=[40]", "--set", "time.nt=10", "--set", "time.T=2.0"]


@pytest.mark.slow
def test_scalar_game_converges_at_first_order_and_keeps_its_mean():
    rows, orders = convergence_study("robust_scalar")
    for q in ("u0", "mT", "var", "feedback"):
        assert min(orders[q]) >= 0.9, (q, orders[q])
    # Theorem 1 with h = −φ m̄: the mean does not move (here to the solver's tolerance)
    assert max(r["mean"] for r in rows) < 1e-9, [r["mean"] for r in rows]


@pytest.mark.slow
def test_indefinite_scalar_game_converges_at_first_order():
    """M < 0: the concave Engquist–Osher orientation converges to the Riccati solution."""
    rows, orders = convergence_study("robust_indefinite")
    for q in ("u0", "mT", "var", "feedback"):
        assert min(orders[q]) >= 0.85, (q, orders[q])


def _solve(model, n, nt, T, damping=0.5):
    cfg = validate({"model": model, "grid": {"lower": [-2.0], "upper": [2.0], "n": [n]},
                    "time": {"T": T, "nt": nt},
                    "solver": {"tolerance": 1e-9, "damping": damping, "max_iterations": 400}})
    problem = build_problem(cfg)
    solution = build_solver(problem, cfg, verbose=False)[0].solve()
    assert solution.converged, solution.status
    return problem, solution


CHAIN = {"name": "robust_designer", "graph": "chain", "populations": 5, "mu0": [-1.0, -0.5, 0.0, 0.5, 1.0],
         "s0": 0.2, "sigma": 0.3, "Q": 4.0, "Gamma": 4.0}


@pytest.mark.slow
def test_chain_reaches_consensus_with_the_closed_form_mean_dynamics():
    errors = []
    for n, nt in ((50, 25), (100, 50)):
        problem, solution = _solve(dict(CHAIN), n, nt, T=2.0)
        cf = problem.model.closed_form(problem.T)
        means = np.array([moments_path(problem.grid, solution.m[k])[0][:, 0] for k in range(5)])
        exact = np.array([cf.mean(problem.t, k)[0] for k in range(5)])
        errors.append(np.max(np.abs(means - exact)))
        spread = means.max(axis=0) - means.min(axis=0)
        assert spread[-1] < 0.3 * spread[0], spread[[0, -1]]
        assert np.all(np.diff(spread) < 1e-12)  # the spread shrinks at every step
    assert errors[1] < 0.1 and errors[0] / errors[1] > 1.8, errors  # first order in (h, dt)


@pytest.mark.slow
def test_internal_model_tracking_matches_the_augmented_riccati():
    """Section 5: the designer tracks m̃ = m̄(0) e^{−θt}; the grid value against (20)."""
    model = {"name": "robust_designer", "tracking": "internal", "theta": 0.5, "mu0": 0.4, "s0": 0.25}
    errors = []
    for n, nt in ((100, 50), (200, 100)):
        problem, solution = _solve(dict(model), n, nt, T=1.0, damping=1.0)
        at = problem.model.closed_form(problem.T).cf.augmented()
        P, p = at(0.0)
        x = problem.x[0]
        X = [x, np.full_like(x, 0.4)]
        exact = 0.5 * sum(P[i, j] * X[i] * X[j] for i in range(2) for j in range(2)) + 0.5 * p
        window = np.abs(x - 0.4) < 0.6
        errors.append(np.max(np.abs(solution.u[0] - exact)[window]))
    assert errors[1] < 0.01 and errors[0] / errors[1] > 1.8, errors


@pytest.mark.slow
def test_tu_game_reports_indefinite_direction_and_conjugate_time(tmp_path):
    run = RUNS / "robust_designer_tu2.toml"
    refused = run_in_process("run", run, *TU2_SMALL, *NOPLOTS, "--set", "time.T=1.4", "-o", tmp_path / "late.h5")
    assert refused.returncode == 2 and "Traceback" not in refused.stderr
    assert "conjugate time 1.35102" in refused.stderr and "(0.577, 0.577, -0.577)" in refused.stderr
    assert not (tmp_path / "late.h5").exists()
    out = tmp_path / "tu2.h5"
    ok = run_in_process("run", run, *TU2_SMALL, *NOPLOTS, "-o", out)
    assert ok.returncode == 0, ok.stdout[-2000:] + ok.stderr[-2000:]
    assert "note: M is indefinite along (0.577, 0.577, -0.577) (eigenvalue -0.5)" in ok.stdout
    with h5py.File(out, "r") as f:
        assert "conjugate time 1.35102" in f.attrs["notes"]
        names = set(f["solution"])
        assert {"allocation_1", "allocation_2", "disturbance_1", "disturbance_2", "disturbance_3"} <= names
        assert np.abs(f["solution/m"][()].sum(axis=(1, 2, 3)) - f["solution/m"][0].sum()).max() < 1e-10


# one player acting on the first of three coalitions, Γ = 4: M = diag(3/4, −1/4, −1/4), whose
# double negative eigenvalue makes det X touch zero at τ* = 2 atan 2 = 2.2143 without changing sign
SINGLE_ACTOR = ["--set", "model.B=[[1.0],[0.0],[0.0]]", "--set", "model.Gamma=4.0"]


@pytest.mark.slow
def test_a_double_conjugate_point_refuses_the_horizon_at_once(tmp_path):
    """The issue's run: the conjugate time was missed (inf), T = 3 accepted, and building the
    closed form looped on NaN until killed.  Now: exit 2 naming time.T and τ* = 2.2143."""
    start = time.monotonic()
    proc = mfgpde("run", RUNS / "robust_designer_tu2.toml", *NOPLOTS, *SINGLE_ACTOR, "--set", "time.T=3.0",
                  "--set", "grid.n=[6,6,6]", "--set", "time.nt=4", "-o", tmp_path / "x.h5", timeout=60)
    elapsed = time.monotonic() - start
    assert proc.returncode == 2, proc.stdout[-2000:] + proc.stderr[-2000:]
    assert "Traceback" not in proc.stderr and len(proc.stderr.strip().splitlines()) == 1, proc.stderr
    assert "time.T: 3 is beyond the conjugate time 2.2143 " in proc.stderr, proc.stderr
    assert not (tmp_path / "x.h5").exists() and elapsed < 10.0, elapsed  # (Python and PETSc start included)


def test_the_model_refuses_quickly_and_warns_near_the_conjugate_time():
    start = time.perf_counter()
    model = create("robust_designer", 3, B=[[1.0], [0.0], [0.0]], Gamma=4.0)
    with pytest.raises(ModelError, match=r"^time\.T: 3 is beyond the conjugate time 2\.2143 "):
        model.set_horizon(3.0)
    assert time.perf_counter() - start < 1.0
    model = create("robust_designer", 3, B=[[1.0], [0.0], [0.0]], Gamma=4.0)
    model.set_horizon(2.15)
    notes = model.notes()
    assert any(n.startswith("T = 2.15 is within 5 % of the conjugate time 2.2143") for n in notes), notes
    model = create("robust_designer", 3, B=[[1.0], [0.0], [0.0]], Gamma=4.0)
    model.set_horizon(2.0)
    assert not any("within 5 %" in n for n in model.notes())
    # the paper's 3-player game (7 coalitions, R = I, Γ = I): τ* = π/4 (a fourfold root of det X)
    start = time.perf_counter()
    model = create("robust_designer", 7, players=3, Gamma=1.0)
    with pytest.raises(ModelError, match=r"conjugate time 0\.785398"):
        model.set_horizon(1.0)
    assert time.perf_counter() - start < 1.0
    # the wide B of eq. (2) for 2 players, Γ = 1.703025: T = 30 is valid (τ* = 40.9219)
    model = create("robust_designer", 3, B=[[1.0, 0.0, -1.0, 0.0], [0.0, 1.0, 0.0, -1.0], [1.0, 1.0, 0.0, 0.0]],
                   Gamma=1.703025)
    model.set_horizon(30.0)
    assert "conjugate time 40.9219 (T = 30)" in model.notes()[1]


@pytest.mark.slow
def test_a_horizon_too_long_to_decide_is_one_line():
    """M = diag(1, −1e-4) with Q = diag(1, 0), S = diag(1, 1e-6): τ* = 1/(as) = 1e10 beside a mode
    growing like e^τ, beyond the search's 20000 steps from T = 1e6 on."""
    model = create("robust_designer", 2, B=[[2 ** 0.5], [0.0]], Gamma=[[1.0, 0.0], [0.0, 1e4]],
                   Q=[[1.0, 0.0], [0.0, 0.0]], S=[[1.0, 0.0], [0.0, 1e-6]])
    model.set_horizon(10.0)
    assert "no conjugate time up to" in model.notes()[1]
    start = time.perf_counter()
    with pytest.raises(ModelError, match=r"^time\.T: 1e\+06 is too long to decide whether the game's Riccati"):
        model.set_horizon(1e6)
    assert time.perf_counter() - start < 20.0


@pytest.mark.slow
def test_newton_on_the_indefinite_game_agrees_with_picard(tmp_path):
    """Concave axes in the Engquist–Osher split, through Newton's Jacobian too."""
    fields = {}
    for coupling in ("picard", "newton"):
        out = tmp_path / f"{coupling}.h5"
        proc = run_in_process("run", RUNS / "robust_designer_tu2.toml", "--set", "grid.n=[8,8,8]", "--set", "time.nt=5",
                              *NOPLOTS, "--set", f"solver.coupling='{coupling}'", "--set", "solver.tolerance=1e-11",
                              "--set", "solver.newton_tolerance=1e-12", "-o", out)
        assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
        with h5py.File(out, "r") as f:
            fields[coupling] = {k: f["solution"][k][()] for k in ("u", "m")}
    for k in ("u", "m"):
        assert np.max(np.abs(fields["picard"][k] - fields["newton"][k])) < 1e-8, k


@pytest.mark.mpi
@pytest.mark.slow
@pytest.mark.parametrize("run, small", [("robust_designer_scalar", ["--set", "grid.n=[60]", "--set", "time.nt=20"]),
                                        ("robust_designer_chain", CHAIN_SMALL),
                                        ("robust_designer_tu2", TU2_SMALL)])
def test_one_and_two_ranks_agree(run, small, tmp_path):
    out = {}
    for nproc in (None, 2):
        path = tmp_path / f"{nproc or 1}.h5"
        proc = mfgpde("run", RUNS / f"{run}.toml", *small, *NOPLOTS, "-o", path, nproc=nproc)
        assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
        with h5py.File(path, "r") as f:
            assert f.attrs["mpi_ranks"] == (nproc or 1)
            out[nproc] = {k: f["solution"][k][()] for k in f["solution"]}
    assert set(out[None]) == set(out[2]) and len(out[None]) >= 4
    for k in out[None]:
        assert np.max(np.abs(out[None][k] - out[2][k])) < 1e-10, k


@pytest.mark.mpi
@pytest.mark.slow
def test_populations_checkpoint_and_restart_on_another_rank_count(tmp_path):
    """A stopped five-population run continues from its checkpoint (u_pop*, m_pop*) under
    2 ranks and ends at the uninterrupted result."""
    run, small = RUNS / "robust_designer_chain.toml", [*CHAIN_SMALL, *NOPLOTS, "--set", "output.checkpoint_every=5"]
    full, part = tmp_path / "full.h5", tmp_path / "part.h5"
    assert run_in_process("run", run, *small, "-o", full).returncode == 0
    stopped = run_in_process("run", run, *small, "--set", "solver.max_iterations=12", "-o", part)
    assert stopped.returncode == 3 and (tmp_path / "part.ckpt.h5").exists()
    with h5py.File(tmp_path / "part.ckpt.h5", "r") as f:
        assert f.attrs["iteration"] == 10 and {"u_pop5", "m_pop5"} <= set(f["solution"])
    resumed = mfgpde("run", run, *small, "-o", part, "--restart", tmp_path / "part.ckpt.h5", nproc=2)
    assert resumed.returncode == 0, resumed.stdout[-2000:] + resumed.stderr[-2000:]
    with h5py.File(full, "r") as a, h5py.File(part, "r") as b:
        for k in a["solution"]:
            assert np.max(np.abs(a["solution"][k][()] - b["solution"][k][()])) < 1e-12, k
