"""Independent checks of the LQ mean-field-game closed form (mfgpde.closedforms.lq_mfg).

Every check uses the public API only and re-derives what it compares with: PDE residuals by
finite differences, the value as an expected cost from moment ODEs and Monte Carlo,
optimality against perturbed feedbacks, moments of m by quadrature, and the analytic Riccati
solution in special cases.
"""
import numpy as np
import pytest
from scipy.integrate import quad, solve_ivp

from mfgpde.closedforms import LQMFGClosedForm

BASE = dict(q=1.0, kappa=0.5, s=1.0, sigma=0.5, mu0=0.6, s0=0.3, rho=0.1, T=1.0)
CASES = {
    "1d": BASE,
    "1d_rho0": {**BASE, "rho": 0.0},
    "2d": {**BASE, "mu0": (0.6, -0.4)},
    "2d_rho0_kappa1.5": {**BASE, "mu0": (0.6, -0.4), "rho": 0.0, "kappa": 1.5},
    "3d": {**BASE, "mu0": (0.6, -0.4, 0.2), "rho": 0.3, "q": 2.0, "s": 0.5, "T": 2.0},
}
ODE_TOL = dict(method="DOP853", rtol=1e-11, atol=1e-13)


@pytest.fixture(scope="module", params=list(CASES))
def case(request):
    prm = CASES[request.param]
    return prm, LQMFGClosedForm(**prm)


def d_dt(f, t, h=1e-3):
    """Fourth-order centred difference in t."""
    return (-f(t + 2 * h) + 8 * f(t + h) - 8 * f(t - h) + f(t - 2 * h)) / (12 * h)


def d_dx(f, x, i, h=1e-2):
    """Fourth-order centred first derivative of f(*x) along axis i."""
    def at(k):
        y = list(x)
        y[i] = y[i] + k * h
        return f(*y)
    return (-at(2) + 8 * at(1) - 8 * at(-1) + at(-2)) / (12 * h)


def d2_dx2(f, x, i, h=1e-2):
    """Fourth-order centred second derivative of f(*x) along axis i."""
    def at(k):
        y = list(x)
        y[i] = y[i] + k * h
        return f(*y)
    return (-at(2) + 16 * at(1) - 30 * at(0) + 16 * at(-1) - at(-2)) / (12 * h * h)


def sample_points(dim, n=7, half=1.5):
    """Open mesh of n points per axis in [-half, half]^dim."""
    return np.meshgrid(*[np.linspace(-half, half, n)] * dim, indexing="ij", sparse=True)


T_SAMPLES = (0.1, 0.37, 0.5, 0.83)


# ---- 1. PDE residuals ----------------------------------------------------------------------
def test_hjb_residual(case):
    prm, cf = case
    nu, q, kappa, rho = prm["sigma"] ** 2 / 2, prm["q"], prm["kappa"], prm["rho"]
    x = sample_points(cf.dim)
    worst = 0.0
    for t in np.array(T_SAMPLES) * prm["T"]:
        ut = d_dt(lambda tt: cf.u(tt, *x), t)
        u = cf.u(t, *x)
        grad = [d_dx(lambda *y: cf.u(t, *y), x, i) for i in range(cf.dim)]
        lap = sum(d2_dx2(lambda *y: cf.u(t, *y), x, i) for i in range(cf.dim))
        mbar = cf.mean(t)
        dist2 = sum((x[i] - kappa * mbar[i]) ** 2 for i in range(cf.dim))
        terms = [-ut, rho * u, -nu * lap, 0.5 * sum(g * g for g in grad), -0.5 * q * dist2]
        res = sum(terms)
        scale = np.max(sum(np.abs(tm) for tm in terms))
        worst = max(worst, np.max(np.abs(res)) / scale)
    assert worst < 1e-8, worst


def test_fp_residual(case):
    prm, cf = case
    nu = prm["sigma"] ** 2 / 2
    x = sample_points(cf.dim, half=1.2)
    h = 2.5e-3   # x-step; the O(h^4) truncation is ~5e-10 relative here (m is a narrow Gaussian)
    worst = 0.0
    for t in np.array(T_SAMPLES) * prm["T"]:
        mt = d_dt(lambda tt: cf.m(tt, *x), t)
        lap = sum(d2_dx2(lambda *y: cf.m(t, *y), x, i, h) for i in range(cf.dim))
        # div(m grad u), grad u itself by finite differences of u (not the drift method)
        div = sum(d_dx(lambda *y, i=i: cf.m(t, *y) * d_dx(lambda *z: cf.u(t, *z), y, i, h),
                       x, i, h) for i in range(cf.dim))
        terms = [mt, -nu * lap, -div]
        res = sum(terms)
        scale = np.max(sum(np.abs(tm) for tm in terms))
        worst = max(worst, np.max(np.abs(res)) / scale)
    assert worst < 1e-8, worst


def test_drift_is_minus_grad_u(case):
    prm, cf = case
    x = sample_points(cf.dim)
    t = 0.4 * prm["T"]
    a = cf.drift(t, *x)
    assert len(a) == cf.dim
    for i in range(cf.dim):
        g = d_dx(lambda *y: cf.u(t, *y), x, i)
        shape = np.broadcast(*x).shape
        np.testing.assert_allclose(np.broadcast_to(a[i], shape), -np.broadcast_to(g, shape),
                                   rtol=0, atol=1e-10 * np.max(np.abs(g)))


# ---- 2. boundary and terminal conditions ---------------------------------------------------
def test_terminal_and_initial_conditions(case):
    prm, cf = case
    T, s, kappa, s0 = prm["T"], prm["s"], prm["kappa"], prm["s0"]
    mu0 = np.atleast_1d(prm["mu0"])
    x = sample_points(cf.dim)
    mT = cf.mean(T)
    g = sum(0.5 * s * (x[i] - kappa * mT[i]) ** 2 for i in range(cf.dim))
    np.testing.assert_allclose(cf.u(T, *x), g, rtol=1e-12, atol=1e-14)
    m0 = 1.0
    for i in range(cf.dim):
        m0 = m0 * np.exp(-0.5 * (x[i] - mu0[i]) ** 2 / s0**2) / np.sqrt(2 * np.pi * s0**2)
    np.testing.assert_allclose(cf.m(0.0, *x), m0, rtol=1e-10, atol=1e-14)
    np.testing.assert_allclose(cf.mean(0.0), mu0, rtol=1e-10, atol=1e-13)
    np.testing.assert_allclose(cf.beta(T), -s * kappa * mT, rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(cf.c(T), 0.5 * s * kappa**2 * mT**2, rtol=1e-12, atol=1e-14)
    assert abs(cf.P(T) - s) < 1e-14
    assert abs(cf.var(0.0) - s0**2) < 1e-14


def test_shapes_and_argument_checks(case):
    prm, cf = case
    t = np.linspace(0, prm["T"], 6).reshape(2, 3)
    assert cf.P(t).shape == (2, 3) and cf.var(t).shape == (2, 3)
    for f in (cf.beta, cf.c, cf.mean):
        assert f(t).shape == (cf.dim, 2, 3)
        assert f(0.3).shape == (cf.dim,)
    with pytest.raises(ValueError):
        cf.u(0.1, *([np.zeros(3)] * (cf.dim + 1)))
    with pytest.raises(ValueError):
        cf.P(prm["T"] * 1.1)


# ---- 3. value = expected cost --------------------------------------------------------------
def expected_cost(cf, prm, x0, t0=0.0, dP=0.0, dbeta=0.0):
    """E[cost-to-go from (t0, x0)] of the feedback a = -((P+dP) X + beta + dbeta), population
    mean fixed at cf.mean, from the ODEs of E[X] = mu, Var[X] = V and the discounted cost J."""
    q, kappa, s, rho, sig, T = (prm[k] for k in ("q", "kappa", "s", "rho", "sigma", "T"))
    x0 = np.atleast_1d(np.asarray(x0, float))
    dim = x0.size
    dbeta = np.broadcast_to(np.asarray(dbeta, float), (dim,))

    def rhs(t, y):
        mu, V = y[:dim], y[dim]
        K = cf.P(t) + dP
        b = cf.beta(t) + dbeta
        ea2 = np.sum((K * mu + b) ** 2) + dim * K * K * V              # E|a|^2
        ed2 = np.sum((mu - kappa * cf.mean(t)) ** 2) + dim * V        # E|X - kappa mbar|^2
        return np.concatenate((-(K * mu + b), [-2 * K * V + sig**2,
                                               np.exp(-rho * (t - t0)) * 0.5 * (ea2 + q * ed2)]))

    sol = solve_ivp(rhs, (t0, T), np.concatenate((x0, [0.0, 0.0])), **ODE_TOL)
    mu, V, J = sol.y[:dim, -1], sol.y[dim, -1], sol.y[dim + 1, -1]
    term = 0.5 * s * (np.sum((mu - kappa * cf.mean(T)) ** 2) + dim * V)
    return J + np.exp(-rho * (T - t0)) * term


@pytest.mark.parametrize("t0", [0.0, 0.4])
def test_value_equals_expected_cost(case, t0):
    prm, cf = case
    rng = np.random.default_rng(1)
    t0 = t0 * prm["T"]
    worst = 0.0
    for x0 in [np.full(cf.dim, -1.0), np.zeros(cf.dim), rng.uniform(-2, 2, cf.dim),
               np.full(cf.dim, 1.7)]:
        J = expected_cost(cf, prm, x0, t0)
        u = cf.u(t0, *x0)
        worst = max(worst, abs(J - u) / abs(J))
    assert worst < 1e-8, worst


@pytest.mark.slow
def test_value_monte_carlo():
    """Monte Carlo, 200k paths, 100 steps, tolerance 4 standard errors.  The scheme is the
    stochastic Heun (predictor-corrector) scheme with trapezoidal cost quadrature, weak order 2
    for additive noise: plain Euler-Maruyama has an O(dt) bias (about 0.37 dt here) that stays
    above the standard error unless ~1000 steps are taken (~10 s)."""
    prm = BASE
    cf = LQMFGClosedForm(**prm)
    q, kappa, s, rho, sig, T = (prm[k] for k in ("q", "kappa", "s", "rho", "sigma", "T"))
    rng = np.random.default_rng(12345)
    n_paths, n_steps = 200_000, 100
    dt = T / n_steps
    tk = np.arange(n_steps + 1) * dt
    P, beta, mbar, disc = cf.P(tk), cf.beta(tk)[0], cf.mean(tk)[0], np.exp(-rho * tk)

    def a(k, X):
        return -(P[k] * X + beta[k])

    def f(k, X, A):
        return disc[k] * 0.5 * (A * A + q * (X - kappa * mbar[k]) ** 2)

    x0 = np.array([-0.8, 0.9])
    X = np.repeat(x0[:, None], n_paths, axis=1)
    J = np.zeros_like(X)
    A = a(0, X)
    F = f(0, X, A)
    for k in range(n_steps):
        dW = sig * np.sqrt(dt) * rng.standard_normal(X.shape)
        X = X + 0.5 * (A + a(k + 1, X + A * dt + dW)) * dt + dW
        A = a(k + 1, X)
        F_new = f(k + 1, X, A)
        J += 0.5 * (F + F_new) * dt
        F = F_new
    J += disc[-1] * 0.5 * s * (X - kappa * mbar[-1]) ** 2
    se = J.std(axis=1, ddof=1) / np.sqrt(n_paths)
    err = np.abs(J.mean(axis=1) - cf.u(0.0, x0))
    assert np.all(err < 4 * se), (err, se)


# ---- 4. no profitable deviation ------------------------------------------------------------
@pytest.mark.slow
@pytest.mark.parametrize("name", ["1d", "1d_rho0", "2d"])
def test_no_profitable_deviation(name):
    prm = CASES[name]
    cf = LQMFGClosedForm(**prm)
    dim = cf.dim
    x0 = np.linspace(-0.7, 0.9, dim)
    J0 = expected_cost(cf, prm, x0)
    for d, e in [(0.3, 0.0), (-0.2, 0.0), (0.0, 0.25), (0.0, -0.1), (0.1, -0.2), (-0.05, 0.05)]:
        assert expected_cost(cf, prm, x0, dP=d, dbeta=e) > J0 + 1e-8
    for d, e in [(1.0, 0.0), (0.0, 1.0), (0.6, -0.8)]:
        dJ = {h: expected_cost(cf, prm, x0, dP=h * d, dbeta=h * e) - J0
              for h in (0.02, 0.01, 2e-3, 1e-3, -1e-3, -2e-3)}
        assert 3.8 < dJ[0.02] / dJ[0.01] < 4.2, dJ            # quadratic in (delta, eps)
        # first-order condition: directional derivative at 0 (4th-order centred difference)
        slope = (-dJ[2e-3] + 8 * dJ[1e-3] - 8 * dJ[-1e-3] + dJ[-2e-3]) / (12 * 1e-3)
        curvature = 2 * dJ[0.01] / 0.01**2
        assert abs(slope) < 1e-8 * curvature, (slope, curvature)


# ---- 5. consistency of m with mean / var ---------------------------------------------------
@pytest.mark.parametrize("name", ["1d", "1d_rho0"])
def test_moments_of_m_1d(name):
    prm = CASES[name]
    cf = LQMFGClosedForm(**prm)
    x = np.linspace(-6, 6, 12001)
    for t in np.array([0.0, 0.3, 0.7, 1.0]) * prm["T"]:
        m = cf.m(t, x)
        mass = np.trapz(m, x)
        mean = np.trapz(x * m, x)
        var = np.trapz((x - mean) ** 2 * m, x)
        assert abs(mass - 1) < 1e-10
        assert abs(mean - cf.mean(t)[0]) < 1e-10
        assert abs(var - cf.var(t)) < 1e-10 * cf.var(t) + 1e-13


def test_moments_of_m_2d():
    cf = LQMFGClosedForm(**CASES["2d"])
    x1 = np.linspace(-5, 5, 1001)
    X, Y = np.meshgrid(x1, x1, indexing="ij", sparse=True)
    t = 0.6
    m = cf.m(t, X, Y)
    integ = lambda f: np.trapz(np.trapz(f, x1, axis=1), x1)
    assert abs(integ(m) - 1) < 1e-10
    mx, my = integ(X * m), integ(Y * m)
    np.testing.assert_allclose([mx, my], cf.mean(t), rtol=0, atol=1e-10)
    assert abs(integ((X - mx) ** 2 * m) - cf.var(t)) < 1e-10
    assert abs(integ((X - mx) * (Y - my) * m)) < 1e-12


def test_coefficient_odes(case):
    prm, cf = case
    q, kappa, rho, sig = prm["q"], prm["kappa"], prm["rho"], prm["sigma"]
    nu = sig**2 / 2
    t = np.linspace(0.05, 0.95, 11) * prm["T"]
    P, beta, mbar, V, c = cf.P(t), cf.beta(t), cf.mean(t), cf.var(t), cf.c(t)
    checks = {
        "P": (d_dt(cf.P, t), rho * P + P**2 - q),
        "beta": (d_dt(cf.beta, t), (rho + P) * beta + q * kappa * mbar),
        "mean": (d_dt(cf.mean, t), -(P * mbar + beta)),
        "var": (d_dt(cf.var, t), -2 * P * V + sig**2),
        "c": (d_dt(cf.c, t), rho * c - nu * P + 0.5 * beta**2 - 0.5 * q * kappa**2 * mbar**2),
    }
    for name, (lhs, rhs) in checks.items():
        err = np.max(np.abs(lhs - rhs)) / max(np.max(np.abs(rhs)), 1e-3)
        assert err < 1e-7, (name, err)


# ---- 6. special parameter cases --------------------------------------------------------------
def riccati_exact(t, q, rho, s, T):
    """Solution of P' = P^2 + rho P - q, P(T) = s: with roots r1 >= 0 >= r2 of r^2 + rho r - q,
    (P - r1)/(P - r2) = (s - r1)/(s - r2) exp(-(r1 - r2)(T - t))."""
    lam = np.sqrt(rho**2 + 4 * q)
    r1, r2 = (-rho + lam) / 2, (-rho - lam) / 2
    K = (s - r1) / (s - r2) * np.exp(-lam * (T - t))
    return (r1 - K * r2) / (1 - K)


@pytest.mark.parametrize("rho", [0.0, 0.1, 1.0])
@pytest.mark.parametrize("q,s", [(1.0, 1.0), (2.0, 0.0), (0.5, 3.0)])
def test_riccati_exact(rho, q, s):
    cf = LQMFGClosedForm(**{**BASE, "rho": rho, "q": q, "s": s})
    t = np.linspace(0, 1, 21)
    np.testing.assert_allclose(cf.P(t), riccati_exact(t, q, rho, s, 1.0), rtol=1e-10)


def test_riccati_q0_rho0():
    cf = LQMFGClosedForm(**{**BASE, "q": 0.0, "rho": 0.0, "s": 2.0})
    t = np.linspace(0, 1, 21)
    np.testing.assert_allclose(cf.P(t), 2.0 / (1 + 2.0 * (1 - t)), rtol=1e-10)


@pytest.mark.parametrize("rho", [0.0, 0.1])
def test_decoupled_kappa0(rho):
    """kappa = 0: beta = 0 and mean(t) = mu0 exp(-int_0^t P), P from the exact Riccati formula."""
    prm = {**BASE, "kappa": 0.0, "rho": rho, "mu0": (0.6, -0.4)}
    cf = LQMFGClosedForm(**prm)
    t = np.linspace(0, 1, 9)
    assert np.max(np.abs(cf.beta(t))) < 1e-13
    Pint = np.array([quad(riccati_exact, 0, ti, args=(1.0, rho, 1.0, 1.0), epsabs=1e-14)[0]
                     for ti in t])
    np.testing.assert_allclose(cf.mean(t), np.outer([0.6, -0.4], np.exp(-Pint)), rtol=1e-10)


@pytest.mark.parametrize("rho", [0.0, 0.1, 0.7])
def test_kappa1_mean_is_constant(rho):
    """kappa = 1: y = beta + P mbar solves y' = rho y, y(T) = 0, so mbar = mu0 and beta = -P mu0."""
    cf = LQMFGClosedForm(**{**BASE, "kappa": 1.0, "rho": rho, "mu0": (0.6, -0.4)})
    t = np.linspace(0, 1, 9)
    np.testing.assert_allclose(cf.mean(t), np.outer([0.6, -0.4], np.ones_like(t)), rtol=1e-10)
    np.testing.assert_allclose(cf.beta(t), -np.outer([0.6, -0.4], cf.P(t)), rtol=1e-10)


def test_singular_boundary_value_problem():
    """mu0 / mean(T) changes sign between kappa = 1 and 2 (T = 1); at the root the mean / beta
    problem is singular and the constructor must say so."""
    from scipy.optimize import brentq

    def f(kappa):
        try:
            cf = LQMFGClosedForm(**{**BASE, "kappa": kappa})
        except ValueError:
            return 0.0
        return BASE["mu0"] / cf.mean(BASE["T"])[0]

    assert f(1.0) > 0 > f(2.0)
    k_star = brentq(f, 1.0, 2.0, xtol=1e-15)
    with pytest.raises(ValueError, match="singular"):
        LQMFGClosedForm(**{**BASE, "kappa": k_star})
    ok = LQMFGClosedForm(**{**BASE, "kappa": k_star + 1e-3})   # near, but solvable
    assert abs(ok.mean(0.0)[0] - BASE["mu0"]) < 1e-8 * abs(ok.mean(BASE["T"])[0])
