"""Independent checks of the robust crowd-seeking designer closed form
(mfgpde.closedforms.robust_designer, Bauso & Başar 2016).

Only the public API is used and everything compared with is re-derived here: HJI and
Fokker–Planck residuals by finite differences (M = BR⁻¹Bᵀ − Γ⁻¹ recomputed from B, R, Γ),
terminal and initial data, moments by quadrature, the scalar conjugate time in closed form and
by direct integration, the augmented Riccati of Section 5, the two-point boundary problem of
several populations, and the value as an expected cost (Monte Carlo and exact moment ODEs)
with the saddle-point identity J(u* + δ, w*) = v + ½δᵀRδT, J(u*, w* + δ) = v − ½δᵀΓδT.
"""
import math

import numpy as np
import pytest
from scipy.integrate import quad, solve_ivp

from mfgpde.closedforms.robust_designer import (RobustDesignerClosedForm, coalition_matrix,
                                                conjugate_time, neighbour_weights)

ODE_TOL = dict(method="DOP853", rtol=1e-11, atol=1e-13)
B2, I2, I3 = coalition_matrix(2), np.eye(2), np.eye(3)
CHAIN = [[1], [0, 2], [1, 3], [2, 4], [3]]
CHAIN_MEANS = np.array([[-1.0], [-0.5], [0.0], [0.5], [1.0]])
Q1 = dict(B=[[1.0]], R=[[1.0]], Gamma=[[0.5]], Q=[[1.0]], S=[[1.0]], sigma=0.5, T=0.7,
          means0=[[0.7]], s0=0.4)                            # M = −1, conjugate time π/4
Q3 = dict(B=B2, R=I2, Gamma=2 * I3, Q=I3, S=I3, sigma=0.5, T=1.0, means0=[[0.2, -0.1, 0.4]], s0=0.5)
CASES = {  # (parameters, population k examined)
    "q1_Mneg": (Q1, 0),
    "q1_Mpos": (dict(Q1, Gamma=[[2.0]], Q=[[2.0]], S=[[0.5]], T=1.5, means0=[[-0.4]]), 0),
    "q3": (Q3, 0),
    "q1_internal": (dict(Q1, tracking="internal", theta=0.5), 0),
    "q3_internal": (dict(Q3, tracking="internal", theta=0.5), 0),
    "chain_k1": (dict(B=[[1.0]], R=[[1.0]], Gamma=[[4.0]], Q=[[4.0]], S=[[1.0]], sigma=0.3, T=3.0,
                      means0=CHAIN_MEANS, s0=0.5, W=neighbour_weights(CHAIN)), 1),
}


def m_matrix(prm):
    B, R, G = (np.atleast_2d(np.asarray(prm[a], float)) for a in ("B", "R", "Gamma"))
    return B @ np.linalg.solve(R, B.T) - np.linalg.inv(G)


@pytest.fixture(scope="module", params=list(CASES))
def case(request):
    prm, k = CASES[request.param]
    return prm, k, RobustDesignerClosedForm(**prm)


def d_dt(f, t, h=1e-3):
    return (-f(t + 2 * h) + 8 * f(t + h) - 8 * f(t - h) + f(t - 2 * h)) / (12 * h)


def _shifted(f, x, i, h):
    return lambda j: f(*(xi + j * h if n == i else xi for n, xi in enumerate(x)))


def d_dx(f, x, i, h=1e-3):
    at = _shifted(f, x, i, h)
    return (-at(2) + 8 * at(1) - 8 * at(-1) + at(-2)) / (12 * h)


def d2_dx2(f, x, i, h=1e-3):
    at = _shifted(f, x, i, h)
    return (-at(2) + 16 * at(1) - 30 * at(0) + 16 * at(-1) - at(-2)) / (12 * h * h)


def expected_signal(prm, cf, t, k):
    """ρ_k(t) from the definition: Σ_j W_kj m̄_j(t), or the internal model m̄_k(0) e^{−θt}."""
    if prm.get("tracking") == "internal":
        return np.asarray(prm["means0"], float)[k] * math.exp(-prm["theta"] * t)
    W = np.asarray(prm.get("W", [[1.0]]), float)
    return sum(W[k, j] * cf.mean(t, j) for j in range(len(W)))


@pytest.mark.slow
def test_hji_and_fokker_planck_residuals(case):
    prm, k, cf = case
    M, Q, nu, q = m_matrix(prm), np.atleast_2d(prm["Q"]), 0.5 * prm["sigma"] ** 2, cf.q
    rng = np.random.default_rng(1)
    for t in rng.uniform(0.05, 0.95, 4) * prm["T"]:
        rho = expected_signal(prm, cf, t, k)
        np.testing.assert_allclose(cf.signal(t, k), rho, rtol=1e-9, atol=1e-12)
        sd = np.sqrt(np.diag(cf.covariance(t)))
        x = tuple(cf.mean(t, k)[i] + 1.5 * sd[i] * rng.standard_normal(12) for i in range(q))
        v = lambda *y: cf.value(t, y, k)  # noqa: E731
        grad = lambda *y: [d_dx(v, y, j) for j in range(q)]  # noqa: E731
        g = grad(*x)
        for a, b in zip(cf.gradient(t, x, k), g):
            np.testing.assert_allclose(a, b, rtol=1e-8, atol=1e-9)
        u, w = cf.feedbacks(t, x, k)  # u* = −R⁻¹Bᵀ∇v, w* = −Γ⁻¹∇v
        Ru = np.linalg.solve(np.atleast_2d(prm["R"]), np.atleast_2d(prm["B"]).T)
        for a, F in ((u, Ru), (w, np.linalg.inv(np.atleast_2d(prm["Gamma"])))):
            np.testing.assert_allclose(a, -np.einsum("ij,jn->in", F, np.array(g)), rtol=1e-8, atol=1e-9)
        # HJI: −v_t − νΔv + ½∇vᵀM∇v − ½(x − ρ)ᵀQ(x − ρ) = 0
        vt = d_dt(lambda s: cf.value(s, x, k), t)
        lap = sum(d2_dx2(v, x, i) for i in range(q))
        ham = 0.5 * sum(M[i, j] * g[i] * g[j] for i in range(q) for j in range(q))
        d = [x[i] - rho[i] for i in range(q)]
        track = 0.5 * sum(Q[i, j] * d[i] * d[j] for i in range(q) for j in range(q))
        res = -vt - nu * lap + ham - track
        scale = np.abs(vt) + nu * np.abs(lap) + np.abs(ham) + np.abs(track)
        assert np.max(np.abs(res) / scale) < 1e-7, np.max(np.abs(res) / scale)
        # FP: m_t − νΔm − div(m M∇v) = 0
        m = lambda *y: cf.density(t, y, k)  # noqa: E731
        mt = d_dt(lambda s: cf.density(s, x, k), t)
        lapm = sum(d2_dx2(m, x, i) for i in range(q))
        flux = [lambda *y, i=i: m(*y) * sum(M[i, j] * gj for j, gj in enumerate(grad(*y))) for i in range(q)]
        div = sum(d_dx(flux[i], x, i) for i in range(q))
        res = mt - nu * lapm - div
        scale = np.abs(mt) + nu * np.abs(lapm) + np.abs(div)
        assert np.max(np.abs(res) / scale) < 1e-6, np.max(np.abs(res) / scale)


def test_terminal_and_initial_data(case):
    prm, k, cf = case
    T, q, S = prm["T"], cf.q, np.atleast_2d(prm["S"])
    x = tuple(np.linspace(-2.0, 2.0, 9) + 0.3 * i for i in range(q))
    rho = expected_signal(prm, cf, T, k)
    d = [x[i] - rho[i] for i in range(q)]
    np.testing.assert_allclose(cf.value(T, x, k), 0.5 * sum(S[i, j] * d[i] * d[j] for i in range(q)
                                                            for j in range(q)), rtol=1e-8, atol=1e-8)
    mu0, s0 = np.asarray(prm["means0"], float)[k], prm["s0"]
    np.testing.assert_allclose(cf.mean(0.0, k), mu0, atol=1e-12)
    gauss = np.exp(-sum((x[i] - mu0[i]) ** 2 for i in range(q)) / (2 * s0 ** 2)) / (2 * math.pi * s0 ** 2) ** (q / 2)
    np.testing.assert_allclose(cf.density(0.0, x, k), gauss, rtol=1e-10)


@pytest.mark.slow
@pytest.mark.parametrize("name", ["q1_Mneg", "q1_Mpos", "q3"])
def test_single_population_mean_is_constant(name):
    prm, _ = CASES[name]
    cf = RobustDesignerClosedForm(**prm)
    mbar = np.asarray(prm["means0"], float)[0]
    for t in np.linspace(0.0, prm["T"], 7):
        np.testing.assert_allclose(cf.mean(t), mbar, atol=1e-9)
        np.testing.assert_allclose(cf.h(t), -cf.phi(t) @ mbar, atol=1e-9)
        if cf.q == 1:
            m = lambda y: float(cf.density(t, (np.array(y),)))  # noqa: E731
            assert abs(quad(m, -np.inf, np.inf, epsabs=1e-13)[0] - 1.0) < 1e-9
            assert abs(quad(lambda y: y * m(y), -np.inf, np.inf, epsabs=1e-13)[0] - mbar[0]) < 1e-9


def scalar_tau(a, q, s):
    return (math.pi / 2 - math.atan(s * math.sqrt(a / q))) / math.sqrt(q * a)


@pytest.mark.slow
def test_conjugate_time():
    for a, q, s in [(1.0, 1.0, 1.0), (0.25, 2.0, 0.5), (3.0, 0.5, 2.0), (0.7, 1.3, 0.0)]:
        assert abs(conjugate_time(np.array([[-a]]), np.array([[q]]), np.array([[s]])) - scalar_tau(a, q, s)) < 1e-8
    for gamma in (1.0, math.sqrt(2.0), 2.0):
        M = B2 @ B2.T - I3 / gamma ** 2
        tau = conjugate_time(M, I3, I3)
        assert abs(tau - scalar_tau(1 / gamma ** 2, 1.0, 1.0)) < 1e-8
        big = lambda _, y: np.linalg.norm(y) - 1e6  # noqa: E731
        big.terminal = True
        rhs = lambda _, y: (I3 - y.reshape(3, 3) @ M @ y.reshape(3, 3)).ravel()  # noqa: E731
        before = solve_ivp(rhs, (0, 0.999 * tau), I3.ravel(), events=big, **ODE_TOL)
        assert before.status == 0 and np.linalg.norm(before.y[:, -1]) < 1e6
        after = solve_ivp(rhs, (0, 1.001 * tau), I3.ravel(), events=big, **ODE_TOL)
        assert after.status == 1 and len(after.t_events[0]) == 1
    assert conjugate_time(B2 @ B2.T + I3 - I3 / 2, I3, I3) == math.inf
    tau = conjugate_time(m_matrix(Q3), I3, I3)
    for T in (tau, 1.1 * tau):
        with pytest.raises(ArithmeticError):
            RobustDesignerClosedForm(**dict(Q3, T=T))
    assert math.isinf(RobustDesignerClosedForm(**dict(Q1, Gamma=[[2.0]], T=5.0)).tau_star)


@pytest.mark.slow
@pytest.mark.parametrize("name", ["q1_internal", "q3_internal"])
def test_augmented_riccati_matches_value(name):
    prm, _ = CASES[name]
    cf = RobustDesignerClosedForm(**prm)
    at, q, rng = cf.augmented(), cf.q, np.random.default_rng(2)
    for t in np.append(rng.uniform(0.0, prm["T"], 5), [0.0, prm["T"]]):
        P, p = at(t)
        mt = np.asarray(prm["means0"], float)[0] * math.exp(-prm["theta"] * t)
        for _ in range(4):
            x = rng.normal(0.0, 1.5, q)
            X = np.concatenate([x, mt])
            v = cf.value(t, tuple(x))
            assert abs(0.5 * X @ P @ X + 0.5 * p - v) <= 1e-9 * max(abs(v), 1e-3)


@pytest.mark.slow
def test_several_populations_two_point_problem():
    prm, _ = CASES["chain_k1"]
    cf = RobustDesignerClosedForm(**prm)
    W, M, Q, S, T = prm["W"], m_matrix(prm)[0, 0], 4.0, 1.0, prm["T"]
    np.testing.assert_allclose(W.sum(axis=1), 1.0)
    rhoT = [sum(W[k, j] * cf.mean(T, j)[0] for j in range(5)) for k in range(5)]
    for k in range(5):
        np.testing.assert_allclose(cf.mean(0.0, k), CHAIN_MEANS[k], atol=1e-12)
        assert abs(cf.h(T, k)[0] + S * rhoT[k]) < 1e-9
        for t in np.linspace(0.1, T - 0.1, 6):
            phi, h, mk = cf.phi(t)[0, 0], cf.h(t, k)[0], cf.mean(t, k)[0]
            rho = sum(W[k, j] * cf.mean(t, j)[0] for j in range(5))
            dm, dh = d_dt(lambda s: cf.mean(s, k)[0], t), d_dt(lambda s: cf.h(s, k)[0], t)
            assert abs(dm + M * (phi * mk + h)) < 1e-7 * (1 + abs(dm))
            assert abs(dh - phi * M * h - Q * rho) < 1e-7 * (1 + abs(dh))
    spread = lambda t: np.ptp([cf.mean(t, k)[0] for k in range(5)])  # noqa: E731
    assert spread(T) < 0.1 * spread(0.0)
    c = 0.37
    flat = RobustDesignerClosedForm(**dict(prm, means0=np.full((5, 1), c)))
    for t in np.linspace(0.0, T, 7):
        for k in range(5):
            assert abs(flat.mean(t, k)[0] - c) < 1e-9 and abs(flat.h(t, k)[0] + flat.phi(t)[0, 0] * c) < 1e-9


COST = dict(B=[[1.0]], R=[[1.0]], Gamma=[[0.8]], Q=[[2.0]], S=[[1.0]], sigma=0.5, T=1.0,
            means0=[[0.3]], s0=0.2)                          # M = −0.25
X0 = 1.1


def moment_cost(cf, du=0.0, dw=0.0):
    """E[cost] from x(0) = X0 under u = u* + du, w = w* + dw, exactly via (mean, variance) ODEs."""
    R, G, Q, S, rho = 1.0, 0.8, 2.0, 1.0, 0.3

    def rhs(t, z):
        (mu, var, _), ((u0,), (w0,)), ((u1,), (w1,)) = z, cf.feedbacks(t, (0.0,)), cf.feedbacks(t, (1.0,))
        (au, bu), (aw, bw), e2 = (u1 - u0, u0 + du), (w1 - w0, w0 + dw), var + mu * mu  # affine laws
        second = lambda a, b: a * a * e2 + 2 * a * b * mu + b * b  # noqa: E731  E[(ax + b)²]
        run = Q * (e2 - 2 * rho * mu + rho ** 2) + R * second(au, bu) - G * second(aw, bw)
        return [(au - aw) * mu + bu - bw, 2 * (au - aw) * var + COST["sigma"] ** 2, 0.5 * run]
    mu, var, J = solve_ivp(rhs, (0.0, COST["T"]), [X0, 0.0, 0.0], **ODE_TOL).y[:, -1]
    return J + 0.5 * S * ((mu - rho) ** 2 + var)


@pytest.mark.slow
def test_value_is_expected_cost_and_saddle_point():
    cf = RobustDesignerClosedForm(**COST)
    T, v0 = COST["T"], float(cf.value(0.0, (X0,)))
    assert abs(moment_cost(cf) - v0) < 1e-9 * abs(v0)
    for d in (0.2, -0.2):
        ju, jw = moment_cost(cf, du=d), moment_cost(cf, dw=d)
        assert ju > v0 and jw < v0
        assert abs(ju - (v0 + 0.5 * 1.0 * d * d * T)) < 1e-9 * abs(v0)  # v + ½δRδT
        assert abs(jw - (v0 - 0.5 * 0.8 * d * d * T)) < 1e-9 * abs(v0)
    # Euler–Maruyama, 20000 paths, 200 steps; common noise for the deviations
    n, steps, rho = 20000, 200, 0.3
    dt, dW = T / steps, np.random.default_rng(3).standard_normal((steps, n)) * math.sqrt(T / steps)

    def simulate(du=0.0, dw=0.0):
        x, cost = np.full(n, X0), np.zeros(n)
        for i in range(steps):
            (u,), (w,) = cf.feedbacks(i * dt, (x,))
            u, w = u + du, w + dw
            cost += 0.5 * (2.0 * (rho - x) ** 2 + u * u - 0.8 * w * w) * dt
            x = x + (u - w) * dt + COST["sigma"] * dW[i]
        return cost + 0.5 * (rho - x) ** 2
    base = simulate()
    se = base.std() / math.sqrt(n)
    assert abs(base.mean() - v0) < 4 * se + 0.01 * abs(v0), (base.mean(), v0, se)
    for d in (0.2, -0.2):
        assert (simulate(du=d) - base).mean() > 0 and (simulate(dw=d) - base).mean() < 0


def test_coalitions_and_neighbour_weights():
    np.testing.assert_array_equal(coalition_matrix(2), [[1, 0], [0, 1], [1, 1]])
    np.testing.assert_array_equal(coalition_matrix(3), [[1, 0, 0], [0, 1, 0], [0, 0, 1], [1, 1, 0],
                                                        [1, 0, 1], [0, 1, 1], [1, 1, 1]])
    np.testing.assert_array_equal(coalition_matrix(1), [[1]])
    W = neighbour_weights(CHAIN)
    np.testing.assert_allclose(W.sum(axis=1), 1.0)
    np.testing.assert_allclose(W[1], [0.5, 0, 0.5, 0, 0])
    np.testing.assert_allclose(neighbour_weights([[1, 2], [0], [0, 1]]).sum(axis=1), 1.0)
