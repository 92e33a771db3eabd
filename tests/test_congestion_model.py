"""The congestion (crowd aversion) model: derivatives against finite differences,
parameter validation, and a small Picard solve where congestion must flatten the crowd."""
import pathlib

import numpy as np
import petsc4py
import pytest

petsc4py.init()
from mfgpde.config import load  # noqa: E402
from mfgpde.grids import Grid  # noqa: E402
from mfgpde.models import Density, ModelError, create  # noqa: E402
from mfgpde.pipelines.mfg import build_problem  # noqa: E402
from mfgpde.solvers import MassMonitor, MFGProblem, PicardSolver, check_finite  # noqa: E402

RUNS = pathlib.Path(__file__).resolve().parent.parent / "runs"
COUPLINGS = [dict(coupling="power", alpha=1.0), dict(coupling="power", alpha=2.5),
             dict(coupling="power", alpha=0.5), dict(coupling="log", eps=0.05)]


def _model(dim, **kw):
    attractors = [[-0.7] * dim, [0.9] + [0.3] * (dim - 1)]
    params = dict(c_m=1.3, v0=1.7, w=0.4, s_T=0.8, target=0.2, attractors=attractors, **kw)
    return create("congestion", dim, **params)


def _point(dim, n=50, seed=0):
    """Random x (broadcastable tuple), p (list) and a density block bounded away from 0."""
    rng = np.random.default_rng(seed + dim)
    x = tuple(rng.uniform(-2, 2, n) for _ in range(dim))
    p = [rng.uniform(-3, 3, n) for _ in range(dim)]
    m = rng.uniform(0.1, 2.5, n)
    return x, p, Density(m=m, mass=1.0, mean=rng.uniform(-1, 1, dim))


def _with_m(density, m):
    return Density(m=m, mass=density.mass, mean=density.mean)


def _shift(p, d, h):
    return [pe + (h if e == d else 0.0) for e, pe in enumerate(p)]


@pytest.mark.parametrize("kw", COUPLINGS, ids=lambda kw: "-".join(map(str, kw.values())))
@pytest.mark.parametrize("dim", [1, 2])
def test_derivatives_match_finite_differences(dim, kw):
    model = _model(dim, **kw)
    x, p, dens = _point(dim)
    t, h = 0.3, 1e-5
    H = lambda p_, dens_=dens: np.broadcast_to(model.hamiltonian(t, x, p_, dens_), dens.m.shape)  # noqa: E731
    dH = model.dH_dp(t, x, p, dens)
    d2H = model.d2H_dp2(t, x, p, dens)
    assert len(dH) == dim and len(d2H) == dim and all(len(row) == dim for row in d2H)
    for d in range(dim):
        fd = (H(_shift(p, d, h)) - H(_shift(p, d, -h))) / (2 * h)
        np.testing.assert_allclose(dH[d], fd, rtol=1e-7, atol=1e-7)
        for e in range(dim):
            fd2 = (np.broadcast_to(model.dH_dp(t, x, _shift(p, e, h), dens)[d], dens.m.shape)
                   - np.broadcast_to(model.dH_dp(t, x, _shift(p, e, -h), dens)[d], dens.m.shape)) / (2 * h)
            np.testing.assert_allclose(np.broadcast_to(d2H[d][e], dens.m.shape), fd2, atol=1e-7)
        # ∂pH does not depend on m: d2H_dpdm = 0
        fdm = (model.dH_dp(t, x, p, _with_m(dens, dens.m + h))[d]
               - model.dH_dp(t, x, p, _with_m(dens, dens.m - h))[d]) / (2 * h)
        np.testing.assert_allclose(np.broadcast_to(model.d2H_dpdm(t, x, p, dens)[d], dens.m.shape), fdm, atol=1e-12)
    # local coupling: ∂H/∂m = −f'(m)
    hm = 1e-6 * dens.m
    fd = (H(p, _with_m(dens, dens.m + hm)) - H(p, _with_m(dens, dens.m - hm))) / (2 * hm)
    dHm = np.broadcast_to(model.dH_dm(t, x, p, dens), dens.m.shape)
    np.testing.assert_allclose(dHm, fd, rtol=1e-6, atol=1e-8)
    assert np.all(dHm <= 0)  # crowd aversion: f increasing
    # no coupling through the mean, and a terminal cost that ignores m
    assert not model.couples_through_mean
    shifted = Density(m=dens.m, mass=1.0, mean=dens.mean + 0.5)
    np.testing.assert_array_equal(H(p, shifted), H(p))
    g = np.broadcast_to(model.terminal(x, dens), dens.m.shape)
    np.testing.assert_array_equal(np.broadcast_to(model.terminal(x, _with_m(dens, 2 * dens.m + 1)), g.shape), g)
    assert np.all(np.asarray(model.dg_dm(x, dens)) == 0)
    assert all(np.all(np.asarray(v) == 0) for v in model.dH_dmean(t, x, p, dens))
    assert all(np.all(np.asarray(v) == 0) for v in model.dg_dmean(x, dens))


@pytest.mark.parametrize("dim", [1, 2, 3])
def test_pieces_have_the_documented_form(dim):
    model = _model(dim, coupling="power", alpha=2.0)
    x, p, dens = _point(dim, seed=7)
    V = sum(np.exp(-sum((xd - cd) ** 2 for xd, cd in zip(x, c)) / (2 * 0.4 ** 2)) for c in model.attractors)
    expected = 0.5 * sum(pd ** 2 for pd in p) + 1.7 * V - 1.3 * dens.m ** 2
    np.testing.assert_allclose(model.hamiltonian(0.0, x, p, dens), expected, rtol=1e-13)
    np.testing.assert_allclose(model.terminal(x, dens), 0.4 * sum((xd - 0.2) ** 2 for xd in x), rtol=1e-13)
    log = _model(dim, coupling="log", eps=0.05)
    np.testing.assert_allclose(log.f(dens.m), 1.3 * np.log(dens.m + 0.05), rtol=1e-13)
    assert np.isfinite(log.f(np.zeros(3))).all()
    # round-off negatives of m are read as 0, never as NaN
    assert np.isfinite(_model(dim, alpha=0.5).f(np.array([-1e-17, 0.0]))).all()


def test_default_attractor_is_right_of_centre():
    for dim in (1, 2, 3):
        model = create("congestion", dim)
        np.testing.assert_array_equal(model.attractors, [[0.5] + [0.0] * (dim - 1)])
    # in 1-D a bare number is a point
    np.testing.assert_array_equal(create("congestion", 1, attractors=[-1, 1]).attractors, [[-1.0], [1.0]])


@pytest.mark.parametrize("dim, key, value, message", [
    (1, "coupling", "quadratic", "model.coupling: one of 'power', 'log'"),
    (1, "coupling", 2, "model.coupling"),
    (1, "c_m", -1.0, "model.c_m: must be >= 0"),
    (1, "alpha", -1, "model.alpha: must be > 0, got -1"),
    (1, "alpha", 0.0, "model.alpha: must be > 0"),
    (1, "eps", 0.0, "model.eps: must be > 0"),
    (1, "v0", -0.5, "model.v0: must be >= 0"),
    (1, "w", 0, "model.w: must be > 0"),
    (1, "w", float("nan"), "model.w: must be a finite number"),
    (1, "s_T", -1.0, "model.s_T: must be >= 0"),
    (1, "target", [0.0, 1.0], "model.target: needs one entry per axis (1)"),
    (1, "sigma", -0.1, "model.sigma: must be >= 0"),
    (1, "rho", -0.1, "model.rho: must be >= 0"),
    (1, "s0", 0.0, "model.s0: must be > 0"),
    (2, "mu0", [0.0, 1.0, 2.0], "model.mu0: needs one entry per axis (2)"),
    (1, "c_m", True, "model.c_m: must be a finite number"),
    (1, "attractors", [[0.0, 1.0]], "model.attractors: each point needs 1 coordinate"),
    (2, "attractors", [[0.0]], "model.attractors: each point needs 2 coordinate"),
    (2, "attractors", [0.5, 0.5], "model.attractors: each point needs 2 coordinate"),
    (2, "attractors", [[0.0, float("inf")]], "model.attractors: coordinates must be finite"),
    (2, "attractors", [], "model.attractors: must be a non-empty list"),
    (1, "attractors", "centre", "model.attractors: must be a non-empty list"),
    (1, "q", 1.0, "model.q: unknown parameter for model 'congestion'"),
])
def test_bad_parameters_are_named(dim, key, value, message):
    with pytest.raises(ModelError) as err:
        create("congestion", dim, **{key: value})
    assert str(err.value).startswith(message), str(err.value)


@pytest.mark.parametrize("name", ["congestion_1d.toml", "congestion_2d.toml"])
def test_run_files_build(name):
    cfg = load(RUNS / name)
    problem = build_problem(cfg)
    assert problem.model.name == "congestion" and problem.model.c_m > 0
    assert cfg["solver"]["damping"] <= 0.5 and cfg["output"]["plots"]


def _solve(grid, nt=20, **params):
    model = create("congestion", 1, attractors=[[-0.8], [0.8]], v0=2.0, w=0.3,
                         sigma=0.5, mu0=-0.3, s0=0.3, **params)
    pb = MFGProblem(grid, model, 1.0, nt)
    solver = PicardSolver(pb, damping=0.5, tol=1e-8, max_iterations=100,
                          monitors=[check_finite, MassMonitor(1e-12)])
    return solver.solve()


@pytest.mark.slow
@pytest.mark.parametrize("coupling", [dict(coupling="power", c_m=1.0), dict(coupling="log", c_m=0.3, eps=0.05)],
                         ids=["power", "log"])
def test_congestion_flattens_the_crowd(coupling):
    """Crowd starting near the left well: with congestion the density at T is lower at
    its peak, and more of the crowd goes to the far (right) well."""
    grid = Grid([-2.0], [2.0], [80])
    x = grid.coordinates(0)
    free = _solve(grid, c_m=0.0)
    crowd = _solve(grid, **coupling)
    for sol in (free, crowd):
        assert sol.converged, sol.status
        assert np.max(np.abs(grid.integrate(sol.m) - 1.0)) < 1e-12
        assert sol.m.min() >= 0.0
    assert crowd.m[-1].max() < 0.85 * free.m[-1].max()
    right = lambda m: grid.integrate(np.where(x > 0, m, 0.0))  # noqa: E731
    assert right(crowd.m[-1]) > right(free.m[-1]) + 0.05
    # both gather at the wells: the density at T peaks near x = -0.8
    for sol in (free, crowd):
        assert abs(x[np.argmax(sol.m[-1])] + 0.8) < 0.2
