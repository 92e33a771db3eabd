"""HJB, Fokker–Planck and Picard on small problems: conservation, positivity, exact cases,
status reporting, and models defined outside the package (tests/models_for_tests.py)."""
import numpy as np
import petsc4py
import pytest

petsc4py.init()
from mfgpde.grids import Grid  # noqa: E402
from mfgpde.models import Density, create  # noqa: E402
from mfgpde.solvers import MassMonitor, MFGProblem, PicardSolver, SolverError, check_finite  # noqa: E402
from mfgpde.validation.study import moments_path  # noqa: E402


def _solve(model, grid, T=1.0, nt=20, **kw):
    pb = MFGProblem(grid, model, T, nt)
    kw.setdefault("tol", 1e-10)
    solver = PicardSolver(pb, monitors=[check_finite, MassMonitor(1e-12)], **kw)
    return solver.solve()


@pytest.mark.parametrize("boundary", ["reflecting", "periodic"])
@pytest.mark.parametrize("dim", [1, 2])
def test_mass_conserved_and_density_nonnegative(dim, boundary):
    """Strong attraction (q = 8) pushes mass against the walls; mass stays 1 to 1e-12."""
    grid = Grid([-1.0] * dim, [1.5] * dim, [40] * dim if dim == 1 else [24, 20], boundary=boundary)
    model = create("lq_mfg", dim, q=8.0, kappa=0.0, s=4.0, sigma=0.3, mu0=0.9, s0=0.25)
    sol = _solve(model, grid, nt=10, damping=1.0)
    assert sol.converged
    mass = grid.integrate(sol.m)
    assert np.max(np.abs(mass - 1.0)) < 1e-12
    assert grid.comm.allreduce(float(sol.m.min())) >= -1e-14
    # the drift really moves mass: the mean travels towards x = 0
    mean, _ = moments_path(grid, sol.m)
    assert abs(mean[-1, 0]) < 0.6 * abs(mean[0, 0])


def test_pure_diffusion_exact_variance():
    """q = s = 0: u ≡ 0 and m solves the discrete heat equation, whose second moment grows
    by exactly σ² dt per implicit Euler step (Δ_h x² = 2): var(T) − var(0) = σ² T."""
    grid = Grid([-4.0], [4.0], [160], boundary="periodic")
    model = create("lq_mfg", 1, q=0.0, s=0.0, kappa=0.0, sigma=0.5, mu0=0.0, s0=0.3)
    sol = _solve(model, grid, nt=25)
    assert sol.converged and np.max(np.abs(sol.u)) == 0.0
    _, var = moments_path(grid, sol.m)
    np.testing.assert_allclose(var[:, 0] - var[0, 0], 0.25 * np.linspace(0, 1, 26), atol=1e-9)


def test_unconverged_is_reported_not_hidden():
    grid = Grid([-2.0], [3.0], [30])
    model = create("lq_mfg", 1, kappa=1.5)
    sol = _solve(model, grid, nt=10, max_iterations=2, damping=0.3)
    assert not sol.converged
    assert sol.status.startswith("not converged") and "2 Picard iterations" in sol.status


def test_bad_damping_refused():
    grid = Grid([0.0], [1.0], [10])
    with pytest.raises(ValueError, match="damping"):
        PicardSolver(MFGProblem(grid, create("lq_mfg", 1), 1.0, 4), damping=1.5)


@pytest.mark.slow
def test_new_model_needs_no_solver_change(crowd_aversion):
    """A local coupling f(m) = m spreads the crowd faster than diffusion alone."""
    grid = Grid([-1.5], [1.5], [60])
    crowd = _solve(create("test_crowd_aversion", 1), grid, nt=20, damping=0.5)
    assert crowd.converged
    calm = _solve(create("lq_mfg", 1, q=0.0, s=0.0, kappa=0.0, sigma=0.4, mu0=0.0, s0=0.2),
                  grid, nt=20)
    _, var_crowd = moments_path(grid, crowd.m)
    _, var_calm = moments_path(grid, calm.m)
    assert var_crowd[-1, 0] > var_calm[-1, 0] + 1e-3
    assert np.max(np.abs(grid.integrate(crowd.m) - 1.0)) < 1e-12


def test_nan_stops_the_solve(nan_model):
    grid = Grid([-1.0], [1.0], [20])
    with pytest.raises(SolverError):
        _solve(create("test_nan", 1), grid, nt=4)


def test_engquist_osher_hamiltonian_for_an_asymmetric_h(asymmetric_model):
    """At a peak both sides count: H_EO = h(p⁻) + h(p⁺) − h(0), continuous across the peak."""
    grid = Grid([0.0], [3.0], [3])
    pb = MFGProblem(grid, create("test_asymmetric", 1), 1.0, 1)
    zero = np.zeros(3)
    # u = (0, 1, 1 + right): at the middle cell p⁻ = 1 and p⁺ = right (h = 1), u^{n+1} = u, ρ = 0
    for right in (-0.99, -0.6, -0.4, 0.3):
        padded = np.array([0.0, 0.0, 1.0, 1.0 + right, 1.0 + right])
        r = pb.hjb_residual(0.0, padded, padded[1:-1], Density(m=zero, mass=1.0, mean=zero[:1]))
        diffusion = -pb.model.nu * (right - 1.0)
        assert r[1] - diffusion == pytest.approx(0.5 + 2.0 * min(right, 0.0) ** 2)
