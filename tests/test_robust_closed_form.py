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
import time

import numpy as np
import pytest
from scipy.integrate import quad, solve_ivp
from scipy.linalg import expm

from mfgpde.closedforms.conjugate import conjugate_search, conjugate_time
from mfgpde.closedforms.robust_designer import RobustDesignerClosedForm, coalition_matrix, neighbour_weights

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


# -- the conjugate time: three games of the issue, two methods --------------------------------
# All three have Q = S = I and M = BR⁻¹Bᵀ − Γ⁻¹ with a repeated or tiny negative eigenvalue.
# "reported": what the sign-change search of det(expm(τK)[I; S]) that conjugate_time
# replaced gave for them.
def wide_incidence(players):
    """B of the paper's eq. (2): [B_H | −I over a row of zeros], q × (n + q − 1)."""
    BH = coalition_matrix(players)
    q = len(BH)
    return np.hstack([BH, np.vstack([-np.eye(q - 1), np.zeros((1, q - 1))])])


ISSUE_GAMES = {
    # a single player acting on the first of three coalitions, Γ = 4: M = diag(3/4, −1/4, −1/4),
    # a double root of det X (reported inf)
    "B100": dict(B=[[1.0], [0.0], [0.0]], R=[[1.0]], Gamma=4 * I3, Q=I3, S=I3),
    # the paper's 3-player game of Section 8 (q = 7 coalitions, B_H of Table 1) with R = I,
    # Γ = I (γ = 1), Q = S = I: BBᵀ has rank 3, so M = −1 on a 4-dimensional kernel (reported 3.927 = 5π/4)
    "tu3": dict(B=coalition_matrix(3), R=np.eye(3), Gamma=np.eye(7), Q=np.eye(7), S=np.eye(7)),
    # the wide B of eq. (2) for 2 players (3×4), R = I, Γ = 1.703025 = 1.305²: 1/Γ barely exceeds
    # the smallest eigenvalue 2 − √2 of BBᵀ, a long horizon (reported 21.89, from round-off)
    "wide": dict(B=wide_incidence(2), R=np.eye(4), Gamma=1.703025 * I3, Q=I3, S=I3),
}


def _exact_scalar_blow_up():
    """Along a common eigen-direction e (Me = −ae, Qe = qe, Se = se) φ = p eeᵀ + (the rest) with
    p' = q + ap², p(0) = s.  Derived here with sympy: p = √(q/a) tan(√(qa)τ + atan(s√(a/q)))
    solves it, so p blows up at τ* = (π/2 − atan(s√(a/q)))/√(qa)."""
    sympy = pytest.importorskip("sympy")
    tau, a, q, s = sympy.symbols("tau a q s", positive=True)
    p = sympy.sqrt(q / a) * sympy.tan(sympy.sqrt(q * a) * tau + sympy.atan(s * sympy.sqrt(a / q)))
    assert sympy.simplify(sympy.diff(p, tau) - (q + a * p ** 2)) == 0
    assert sympy.simplify(p.subs(tau, 0) - s) == 0
    star = (sympy.pi / 2 - sympy.atan(s * sympy.sqrt(a / q))) / sympy.sqrt(q * a)
    # B100: a = 1/4, q = s = 1 gives π − 2 atan(1/2) = 2 atan 2; tu3: a = q = s = 1 gives π/4
    assert abs(sympy.N(star.subs({a: sympy.Rational(1, 4), q: 1, s: 1}) - 2 * sympy.atan(2), 40)) < 1e-35
    assert sympy.simplify(star.subs({a: 1, q: 1, s: 1}) - sympy.pi / 4) == 0
    return sympy.lambdify((a, q, s), star)


def exact_conjugate_time(prm):
    """τ* of a game whose M, Q, S are simultaneously diagonal: the first scalar blow-up over
    M's negative eigen-directions (checked to diagonalise Q and S)."""
    M, Q, S = m_matrix(prm), np.asarray(prm["Q"], float), np.asarray(prm["S"], float)
    lam, E = np.linalg.eigh(M)
    for A in (Q, S):
        D = E.T @ A @ E
        assert np.allclose(D, np.diag(np.diag(D)), atol=1e-12)
    star = _exact_scalar_blow_up()
    times = [star(-l, e @ Q @ e, e @ S @ e) for l, e in zip(lam, E.T) if l < -1e-12]
    return min(times), int(np.sum(np.abs(lam - lam[0]) < 1e-9))


def riccati_blow_up(M, Q, S, tau_max, big=1e7):
    """Method 2, independent of conjugate_time: integrate dφ/dτ = Q − φMφ, φ(0) = S, until
    ‖φ‖ = big, then add the rest of the blow-up from its rate: φ ≈ vvᵀ/(a(τ* − τ)),
    a = −vᵀMv, along the blowing-up direction v (inf if there is none before tau_max)."""
    q = len(M)
    rhs = lambda _, y: (Q - y.reshape(q, q) @ M @ y.reshape(q, q)).ravel()  # noqa: E731
    large = lambda _, y: np.linalg.norm(y) - big  # noqa: E731
    large.terminal = True
    sol = solve_ivp(rhs, (0.0, tau_max), np.asarray(S, float).ravel(), method="DOP853", rtol=1e-12,
                    atol=1e-12, events=large)
    if sol.status != 1:
        return math.inf
    phi = sol.y_events[0][0].reshape(q, q)
    lam, V = np.linalg.eigh(0.5 * (phi + phi.T))
    v = V[:, np.argmax(np.abs(lam))]
    return sol.t_events[0][0] + 1.0 / (-(v @ M @ v) * np.max(np.abs(lam)))


@pytest.mark.parametrize("name, expected, multiplicity", [("B100", 2.2143, 2), ("tu3", 0.785, 4),
                                                          ("wide", 40.92, 1)])
@pytest.mark.slow
def test_conjugate_time_of_the_issue_games_by_two_methods(name, expected, multiplicity):
    prm = ISSUE_GAMES[name]
    M, Q, S = m_matrix(prm), np.asarray(prm["Q"], float), np.asarray(prm["S"], float)
    exact, mult = exact_conjugate_time(prm)
    assert mult == multiplicity and round(exact, len(str(expected).split(".")[1])) == expected  # the issue's digits
    frame = conjugate_time(M, Q, S)                  # method 1: the orthonormal Lagrangian frame
    riccati = riccati_blow_up(M, Q, S, 2 * exact)    # method 2: the Riccati equation's blow-up
    assert abs(frame - exact) < 1e-10 * exact, (frame, exact)
    assert abs(riccati - exact) < 1e-7 * exact, (riccati, exact)
    assert abs(frame - riccati) < 1e-7 * exact


def test_a_double_root_of_det_X_has_no_sign_change():
    """Why a sign-change search misses B100: det X(τ) = x(τ)²·(a positive factor) about τ*."""
    prm = ISSUE_GAMES["B100"]
    M = m_matrix(prm)
    K = np.block([[np.zeros((3, 3)), M], [I3, np.zeros((3, 3))]])
    det = lambda tau: np.linalg.det((expm(tau * K) @ np.vstack([I3, I3]))[:3])  # noqa: E731
    star = 2 * math.atan(2.0)
    assert det(star - 1e-3) > 0 and det(star + 1e-3) > 0 and abs(det(star)) < 1e-12


def test_conjugate_time_on_random_games_against_the_riccati_blow_up():
    rng = np.random.default_rng(7)
    for _ in range(12):
        q = int(rng.integers(1, 5))
        A, C, D = (rng.normal(size=(q, q)) for _ in range(3))
        M = A @ A.T / q - rng.uniform(0.2, 1.5) * np.eye(q)
        Q, S = C @ C.T / q * rng.uniform(0.0, 2.0), D @ D.T / q * rng.uniform(0.0, 2.0)
        tau = conjugate_time(M, Q, S)
        ref = riccati_blow_up(M, Q, S, 2 * tau if math.isfinite(tau) else 50.0)
        assert (math.isinf(tau) and math.isinf(ref)) or abs(tau - ref) < 1e-7 * ref, (tau, ref)


def test_conjugate_time_is_fast_and_scale_free():
    for prm in ISSUE_GAMES.values():
        M, Q, S = m_matrix(prm), np.asarray(prm["Q"], float), np.asarray(prm["S"], float)
        best = math.inf
        for _ in range(3):
            start = time.perf_counter()
            conjugate_time(M, Q, S)
            best = min(best, time.perf_counter() - start)
        assert best < 0.2, best
    # (x, y, τ) ↦ (x/α, αy, τ/c): the same conjugate point, at c τ*
    exact = lambda a, q, s: math.atan2(math.sqrt(q), s * math.sqrt(a)) / math.sqrt(q * a)  # noqa: E731  (scalar_tau)
    for scale in (1e-60, 1e-6, 1e6, 1e60):
        for a, q, s in ((scale, 1.0, 1.0), (1.0, scale, 1.0), (1.0, 1.0, scale)):
            assert conjugate_time([[-a]], [[q]], [[s]]) == pytest.approx(exact(a, q, s), rel=1e-10), (a, q, s)
    assert conjugate_time(np.diag([1.0, -1.0]), np.diag([1.0, 0.0]), np.diag([1.0, 0.0])) == math.inf  # decoupled
    assert conjugate_time([[-1.25]], [[0.0]], [[0.004]]) == pytest.approx(200.0, rel=1e-12)  # Q = 0: 1/(as)


def test_the_search_covers_the_horizon_asked_about():
    # no conjugate point although M is indefinite and Q couples to its negative direction
    th = 0.3
    e = np.array([math.cos(th), math.sin(th)])
    M, Q, S = np.diag([4.0, -0.01]), np.outer(e, e), np.zeros((2, 2))
    assert riccati_blow_up(M, Q, S, 3000.0) == math.inf
    tau, covered = conjugate_search(M, Q, S, horizon=1000.0)
    assert tau == math.inf and covered >= 1060.0
    assert conjugate_time(M, Q, S, horizon=1000.0) == math.inf
    assert conjugate_time(np.diag([1.0, -1.0]), I2, I2, horizon=1e3) == pytest.approx(math.pi / 4, rel=1e-12)
    # a shear (Q = 0): τ* = 1/(as) = 1e5 along the negative direction
    shear = conjugate_time(np.diag([1.0, -1e-2]), np.zeros((2, 2)), np.diag([1.0, 1e-3]))
    assert shear == pytest.approx(1e5, rel=1e-10)
    # τ* = 1e10 beside a mode growing like e^τ: too far to reach, but a short horizon is decided, quickly
    M, Q, S = np.diag([1.0, -1e-4]), np.diag([1.0, 0.0]), np.diag([1.0, 1e-6])
    start = time.perf_counter()
    tau, covered = conjugate_search(M, Q, S, horizon=1.0)
    assert tau == math.inf and 1.06 <= covered < 1e10 and time.perf_counter() - start < 3.0


@pytest.mark.slow
def test_long_horizon_below_the_conjugate_time_builds():
    """T = 30 lies between the old (round-off) 21.89 and the true 40.92 of the wide game."""
    prm = ISSUE_GAMES["wide"]
    cf = RobustDesignerClosedForm(**prm, sigma=0.3, T=30.0, means0=[[0.1, 0.0, -0.1]], s0=0.3)
    assert cf.tau_star == pytest.approx(40.9218767578776, rel=1e-10)
    assert np.all(np.isfinite(cf.phi(0.0))) and np.linalg.eigvalsh(cf.phi(0.0))[-1] > 1.0


def test_a_blow_up_inside_the_closed_form_is_one_quick_error(monkeypatch):
    """Were the conjugate time missed again (here: forced to inf), building the closed form past
    it raises an ArithmeticError at once instead of looping on NaN."""
    import mfgpde.closedforms.robust_designer as module
    monkeypatch.setattr(module, "conjugate_time", lambda *a, **k: math.inf)
    prm = ISSUE_GAMES["B100"]
    start = time.perf_counter()
    with pytest.raises(ArithmeticError, match="closed form: .*(not finite|failed|evaluations)"):
        RobustDesignerClosedForm(**prm, sigma=0.3, T=3.0, means0=[[0.2, -0.1, 0.1]], s0=0.25)
    assert time.perf_counter() - start < 5.0
