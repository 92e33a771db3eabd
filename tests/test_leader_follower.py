"""The continuous-time mean field Stackelberg master system on (x0, z) and (x0, x1, z)
grids: the monotone controlled scheme (Jacobian, M-matrix, exact minimiser), convergence
to the Riccati closed form, the saturated model, output layout, bad input, 1 = 2 ranks."""
import h5py
import numpy as np
import pytest
from petsc4py import PETSc

from conftest import RUNS, mfgpde, run_in_process
from mfgpde.grids import Grid
from mfgpde.models import create
from mfgpde.solvers.leader_follower import LeaderFollowerSolver

LQ = RUNS / "stackelberg_lq.toml"
SMALL = ["--set", "time.T=1.0", "--set", "output.plots=false"]


def solver(n=8, nt=4, name="stackelberg_lq", L=2.0, coupling="lagged", **params):
    g0 = Grid([-L, -L], [L, L], [n, n], names=("x0", "z"))
    g1 = Grid([-L] * 3, [L] * 3, [n, n, n], names=("x0", "x1", "z"))
    return LeaderFollowerSolver(create(name, **params), g0, g1, T=1.0, nt=nt, coupling=coupling)


def random_level(s, seed=0):
    """Smooth values with a little noise on both grids, and the follower's next level."""
    rng = np.random.default_rng(seed)
    x0, z = s.g0.local_coordinates()
    y0, y1, y2 = s.g1.local_coordinates()
    V0 = 0.5 * x0 ** 2 - 0.3 * x0 * z + 0.2 * z ** 2 + 0.05 * rng.standard_normal(s.g0.owned_shape)
    V1 = (1.5 * y1 ** 2 - 0.6 * y0 * y1 + 0.4 * y0 ** 2 - 0.5 * y1 * y2 + 0.3 * y2 ** 2
          + 0.05 * rng.standard_normal(s.g1.owned_shape))
    return V0, V1


def jacobian_check(problem, values, drift, seed=1):
    """Largest |J δ − (R(V + εδ) − R(V − εδ)) / 2ε| relative to |J δ|, and the matrix."""
    grid = problem.grid
    vec, out = grid.create_vec(), grid.create_vec()
    J = problem.stencil.matrix()
    grid.set_owned(vec, values)
    problem.stencil.assemble(J, problem.hjb_jacobian(0.0, grid.padded(vec), drift))
    delta = np.random.default_rng(seed).standard_normal(grid.owned_shape)
    residual = []
    for sign in (1, -1):
        grid.set_owned(vec, values + sign * 1e-7 * delta)
        residual.append(problem.hjb_residual(0.0, grid.padded(vec), values, drift))
    grid.set_owned(vec, delta)
    J.mult(vec, out)
    fd = (residual[0] - residual[1]) / 2e-7
    return np.max(np.abs(grid.owned(out) - fd)) / np.max(np.abs(fd)), J


@pytest.mark.parametrize("name", ["stackelberg_lq", "stackelberg_saturated"])
def test_jacobians_match_differences_and_are_m_matrices(name):
    s = solver(name=name, u0_max=0.8) if name == "stackelberg_saturated" else solver(name=name)
    V0, V1 = random_level(s)
    d0 = s.leader_drift(s.mean_gradient(V1))
    u0, zdot, d1 = s._leader_policy(V0, d0)
    for problem, values, drift in ((s.leader, V0, d0), (s.follower, V1, d1)):
        error, J = jacobian_check(problem, values, drift)
        assert error < 1e-6
        A = J.convert("dense").getDenseArray()
        off = A - np.diag(np.diag(A))
        assert off.max() <= 1e-12  # monotone scheme: non-positive off-diagonals
        assert np.all(np.diag(A) + off.sum(axis=1) >= 1.0 / problem.dt - 1e-9)  # diagonally dominant


def test_policy_is_the_exact_minimiser_for_linear_values():
    """For V affine the one-sided differences agree: u0* = −(B0 ∂x0V0 + D̃ ∂zV0)/(2R0) exactly
    and u1* = −(B ∂x1V1 + 2R2 u0*)/(2R) (away from the walls, where controls are restricted)."""
    s = solver(n=10)
    m = s.model
    x0, z = s.g0.local_coordinates()
    y0, y1, y2 = s.g1.local_coordinates()
    V0 = np.broadcast_to(0.3 * x0 - 0.7 * z, s.g0.owned_shape)
    V1 = np.broadcast_to(0.2 * y0 + 0.9 * y1 - 0.4 * y2, s.g1.owned_shape)
    u0, zdot, u1 = s.policies(V0, V1)
    Dt = m.D - m.B * m.R2 / m.R
    inner0, inner1 = (slice(1, -1),) * 2, (slice(1, -1),) * 3
    assert np.allclose(u0[inner0], -(m.B0 * 0.3 + Dt * -0.7) / (2 * m.R0), atol=1e-12)
    assert np.allclose(u1[inner1], -(m.B * 0.9 + 2 * m.R2 * u0[1, 1]) / (2 * m.R), atol=1e-12)
    ubar = -(m.B * 0.9 + 2 * m.R2 * u0) / (2 * m.R)
    exact = (m.A + m.F) * z + m.G * x0 + m.D * u0 + m.B * ubar
    assert np.allclose(zdot[inner0], exact[inner0], atol=1e-12)


def test_saturated_leader_respects_its_bound_and_equals_lq_when_slack():
    lq = solver(n=10, nt=5).solve()
    slack = solver(n=10, nt=5, name="stackelberg_saturated", u0_max=1e6, kappa=0.0).solve()
    for k in ("V0", "V1", "u0", "u1"):
        assert np.max(np.abs(getattr(lq, k) - getattr(slack, k))) < 1e-12, k
    tight = solver(n=10, nt=5, name="stackelberg_saturated", u0_max=0.5, kappa=1.0).solve()
    assert np.max(np.abs(tight.u0)) <= 0.5 + 1e-12
    assert np.max(np.abs(lq.u0)) > 1.0  # the bound is active


def window_errors(path):
    with h5py.File(path, "r") as f:
        return {k[6:]: float(v) for k, v in f.attrs.items() if k.startswith("error_")}


@pytest.mark.slow
def test_grid_solution_converges_to_the_riccati_closed_form(tmp_path):
    """h and dt halved: every error on the window (central half of each axis) falls."""
    errors = []
    for n in (12, 24):
        out = tmp_path / f"lq{n}.h5"
        proc = run_in_process("run", LQ, *SMALL, "--set", f"grid.n={n}", "--set", f"time.nt={n}", "-o", out)
        assert proc.returncode == 0, proc.stderr[-2000:]
        errors.append(window_errors(out))
    for key in ("V0_t0", "u0_t0", "V1_t0", "u1_t0", "V0_all", "u1_all"):
        order = np.log2(errors[0][key] / errors[1][key])
        assert order > 0.5, (key, errors)
    assert errors[1]["u0_t0"] < 0.35 and errors[1]["V0_t0"] < 0.4


@pytest.mark.slow
def test_output_layout_info_and_plots(tmp_path):
    out = tmp_path / "lq.h5"
    proc = run_in_process("run", LQ, *SMALL, "--set", "grid.n=[10,8]", "--set", "time.nt=4", "-o", out)
    assert proc.returncode == 0, proc.stderr[-2000:]
    with h5py.File(out, "r") as f:
        assert list(f["grid"].attrs["axes"]) == ["x0", "x1", "z"]
        assert f["solution/V0"].shape == (5, 10, 8) and list(f["solution/V0"].attrs["axes"]) == ["x0", "z"]
        assert f["solution/V1"].shape == (5, 10, 8, 8) and f["solution/u1"].shape == (5, 10, 8, 8)
        assert f.attrs["kind"] == "leader_follower"
        ric = f["riccati"]
        assert np.allclose(ric["t"][()], f["time/t"][()]) and ric["K00"].shape == (5,)
        assert abs(ric["P1"][-1]) == 0.0 and ric["P1"][0] > 0
    proc = run_in_process("info", out)
    assert proc.returncode == 0 and "V1" in proc.stdout
    proc = run_in_process("plot", out, "--outdir", tmp_path)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert len(list(tmp_path.glob("*.png"))) >= 3


@pytest.mark.parametrize("override, message", [
    ("grid.x0=[1.0, -1.0]", "grid.x0: an interval [low, high] with low < high"),
    ("grid.n=2", "grid.n: cells per axis, an integer >= 4"),
    ("grid.lower=[0.0]", "grid.lower: unknown key"),
    ("model.R0=0", "model.R0: must be > 0.0"),
    ("model.sigma=-1", "model.sigma: must be >= 0.0"),
    ("model.bogus=1", "model.bogus: unknown parameter"),
    ("solver.coupling='fictitious'", "solver.coupling: lagged, picard or newton for a leader-follower game"),
    ("time.nt=0", "time.nt: the number of time steps must be a positive integer"),
    ("model.Q=-40", "time.T: Riccati solution blows up"),
])
def test_bad_input_is_one_line_and_exit_2(override, message, tmp_path):
    out = tmp_path / "x.h5"
    proc = run_in_process("run", LQ, *SMALL, "--set", override, "-o", out)
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.strip().count("\n") == 0 and message in proc.stderr and "Traceback" not in proc.stderr
    assert not out.exists()


@pytest.mark.parametrize("args, message", [
    (["--set", "solver.coupling='picard'", "--set", "solver.max_iterations=1"],
     "leader-follower Picard did not converge at t=0.75: 1 sweeps"),
    pytest.param(["--set", "solver.coupling='newton'", "-coupled_snes_max_it", "1"],
                 "leader-follower Newton did not converge at t=0.75 (SNES reason", marks=pytest.mark.slow),
], ids=["picard-sweeps", "newton-level"])
def test_a_level_that_does_not_converge_is_one_line_and_exit_3(args, message, tmp_path):
    petsc = any(a.startswith("-") and not a.startswith("--") for a in args)  # PETSc options: a subprocess
    proc = (mfgpde if petsc else run_in_process)("run", LQ, *SMALL, "--set", "grid.n=8", "--set", "time.nt=4", *args,
                                                 "-o", tmp_path / "x.h5", cwd=tmp_path)
    assert proc.returncode == 3, proc.stderr
    assert proc.stderr.strip().count("\n") == 0 and message in proc.stderr and "Traceback" not in proc.stderr
    assert "no solution written" in proc.stderr and not list(tmp_path.iterdir())


@pytest.mark.slow
@pytest.mark.mpi
@pytest.mark.parametrize("coupling", ["lagged", "newton"])
def test_one_and_two_ranks_agree(coupling, tmp_path):
    fields = {}
    for nproc in (None, 2):
        out = tmp_path / f"r{nproc}.h5"
        proc = mfgpde("run", LQ, *SMALL, "--set", "grid.n=[12,10]", "--set", "time.nt=6", "--set",
                      f"solver.coupling={coupling}", "-o", out, nproc=nproc)
        assert proc.returncode == 0, proc.stderr[-2000:]
        with h5py.File(out, "r") as f:
            assert f.attrs["mpi_ranks"] == (nproc or 1)
            fields[nproc] = {k: f["solution"][k][()] for k in f["solution"]}
    for k in fields[None]:
        assert np.max(np.abs(fields[None][k] - fields[2][k])) < 1e-10, k


def test_petsc_reaches_both_equations():
    PETSc.Options().setValue("follower_ksp_type", "bcgs")
    try:
        s = solver(n=6, nt=2)
        assert s.follower_hjb.snes.getKSP().getType() == "bcgs"
        assert s.leader_hjb.snes.getKSP().getType() != "bcgs"
    finally:
        PETSc.Options().delValue("follower_ksp_type")


@pytest.mark.slow
def test_newton_and_picard_couplings_agree_with_each_other():
    """Both make the coupling within a level implicit; the lagged sweep differs by O(dt)."""
    fields = {}
    for coupling in ("picard", "newton", "lagged"):
        fields[coupling] = solver(n=10, nt=5, coupling=coupling).solve()
        assert fields[coupling].converged
    for k in ("V0", "V1", "u0", "u1"):
        assert np.max(np.abs(getattr(fields["picard"], k) - getattr(fields["newton"], k))) < 1e-7, k
    assert np.max(np.abs(fields["picard"].V1 - fields["lagged"].V1)) > 1e-4  # a different scheme
    assert fields["newton"].stats["coupled_newton_iterations"] <= 5 * 5
