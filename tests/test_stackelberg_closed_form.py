"""Independent checks of the LQ mean field Stackelberg closed form (mfgpde.closedforms).

The Riccati right-hand side against a sympy derivation, the HJB system by finite-difference
residuals (feedbacks from finite differences of the values, not from the gains), the values as
expected costs (moment ODEs, Monte Carlo), the equilibrium property (perturbed follower
feedbacks, best responses with N followers), the 1/sqrt(N) mean-field gap, argument checks.
"""
import numpy as np
import pytest

from mfgpde.closedforms.stackelberg_finite import (expected_costs, follower_deviation_gain,
                                                   loglog_slope, mean_gap, monte_carlo_costs)
from mfgpde.closedforms.stackelberg_lq import COEFFS, DEFAULTS, StackelbergLQ

OTHER = dict(DEFAULTS, A0=-0.3, B0=1.0, F0=-0.4, A=0.2, D=0.5, F=-0.3, G=-0.6, Gamma0=1.2,
             Q=1.0, R0=2.0, R1=0.5, R2=-0.3, rho=0.4, T=3.0, sigma0=0.5, sigma=0.8)
CASES = {"printed": DEFAULTS, "other": OTHER}


@pytest.fixture(scope="module", params=list(CASES))
def cf(request):
    return StackelbergLQ(**CASES[request.param])


# ---- 1. sympy derivation -------------------------------------------------------------------
@pytest.fixture(scope="module")
def derived():
    sp = pytest.importorskip("sympy")
    from mfgpde.closedforms import derive_stackelberg as ds
    return sp, ds, ds.derive()


@pytest.mark.slow
def test_sympy_derivation_equals_rhs(derived):
    sp, ds, eqs = derived
    s = ds.symbols()
    args = [s[n] for n in ds.PARAMS + ds.COEFFS]
    f = sp.lambdify(args, [eqs[n] for n in COEFFS], "numpy")
    rng = np.random.default_rng(3)
    for _ in range(5):
        prm = {n: rng.uniform(-1.5, 1.5) for n in ds.PARAMS}
        prm.update(R=rng.uniform(0.3, 2), R0=rng.uniform(0.3, 2), rho=rng.uniform(0, 1),
                   sigma0=rng.uniform(0, 1), sigma=rng.uniform(0, 1))
        model = StackelbergLQ(**prm, T=0.05)
        y = rng.uniform(-2, 2, len(COEFFS))
        expect = np.array(f(*[prm[n] for n in ds.PARAMS], *y))
        np.testing.assert_allclose(model.rhs(0.0, y), expect, rtol=1e-12,
                                   atol=1e-12 * np.max(np.abs(expect)))


@pytest.mark.slow
def test_printed_equations_differ_exactly_in_P02_and_P10(derived):
    sp, ds, eqs = derived
    cmp = ds.compare_with_printed(eqs)
    assert [n for n, (ok, _) in cmp.items() if not ok] == ["P02", "P10"]
    s, k = ds.symbols(), ds.gains(ds.symbols())
    expected = {"P02": s["P0"] * (s["B0"] * k["K10"] + s["F0"]),            # -2 P0 a0z -> -P0 a0z
                "P10": 2 * s["P010"] * s["B0"] * (k["K00"] - k["K10"])}     # K00 -> K10
    for name, diff in expected.items():
        assert sp.simplify(cmp[name][1] - diff) == 0


# ---- 2. HJB residuals ----------------------------------------------------------------------
def fd(f, x, i, h, order=1):
    """Fourth-order centred first (order=1) or second (order=2) derivative of f(*x) along i."""
    def at(k):
        y = list(x)
        y[i] = y[i] + k * h
        return f(*y)
    if order == 1:
        return (-at(2) + 8 * at(1) - 8 * at(-1) + at(-2)) / (12 * h)
    return (-at(2) + 16 * at(1) - 30 * at(0) + 16 * at(-1) - at(-2)) / (12 * h * h)


def test_hjb_residuals(cf):
    p = cf.params
    rng = np.random.default_rng(7)
    n = 20
    t = rng.uniform(0.05, 0.95, n) * p["T"]
    x0, x1, z = rng.uniform(-2, 2, (3, n))
    h, ht = 1e-2, 1e-2
    V0, V1 = cf.V0, cf.V1
    V0x0, V0z = fd(V0, (t, x0, z), 1, h), fd(V0, (t, x0, z), 2, h)
    V1x0, V1x1, V1z = (fd(V1, (t, x0, x1, z), i, h) for i in (1, 2, 3))
    V1x1_at_z = fd(V1, (t, x0, z, z), 2, h)                    # V1_x1 at x1 = z
    Dt = p["D"] - p["B"] * p["R2"] / p["R"]
    u0 = -(p["B0"] * V0x0 + Dt * V0z) / (2 * p["R0"])
    u1 = -(p["B"] * V1x1 + 2 * p["R2"] * u0) / (2 * p["R"])
    ubar = -(p["B"] * V1x1_at_z + 2 * p["R2"] * u0) / (2 * p["R"])
    f0 = p["A0"] * x0 + p["B0"] * u0 + p["F0"] * z
    f1 = p["A"] * x1 + p["B"] * u1 + p["D"] * u0 + p["F"] * z + p["G"] * x0
    zdot = (p["A"] + p["F"]) * z + p["G"] * x0 + p["D"] * u0 + p["B"] * ubar
    np.testing.assert_allclose(cf.u0(t, x0, z), u0, rtol=1e-8, atol=1e-9)
    np.testing.assert_allclose(cf.u1(t, x0, x1, z), u1, rtol=1e-8, atol=1e-9)
    np.testing.assert_allclose(cf.mean_drift(t, x0, z), zdot, rtol=1e-8, atol=1e-9)
    np.testing.assert_allclose(cf.leader_drift(t, x0, z), f0, rtol=1e-8, atol=1e-9)
    L0 = p["Q0"] * (x0 - p["Gamma0"] * z) ** 2 + p["R0"] * u0**2
    L1 = (p["Q"] * (x1 - p["Gamma1"] * x0 - p["Gamma2"] * z) ** 2 + p["R"] * u1**2
          + p["R1"] * u0**2 + 2 * p["R2"] * u0 * u1)
    terms0 = [-p["rho"] * V0(t, x0, z), fd(V0, (t, x0, z), 0, ht), L0, V0x0 * f0, V0z * zdot,
              0.5 * p["sigma0"] ** 2 * fd(V0, (t, x0, z), 1, h, 2)]
    terms1 = [-p["rho"] * V1(t, x0, x1, z), fd(V1, (t, x0, x1, z), 0, ht), L1, V1x0 * f0,
              V1x1 * f1, V1z * zdot, 0.5 * p["sigma0"] ** 2 * fd(V1, (t, x0, x1, z), 1, h, 2),
              0.5 * p["sigma"] ** 2 * fd(V1, (t, x0, x1, z), 2, h, 2)]
    for terms in (terms0, terms1):
        rel = np.abs(sum(terms)) / sum(np.abs(tm) for tm in terms)
        assert rel.max() < 1e-6, rel.max()


def test_terminal_values_and_shapes(cf):
    T = cf.params["T"]
    assert all(abs(v) < 1e-14 for v in cf.coefficients(T).values())
    t = np.linspace(0, T, 6).reshape(2, 3)
    assert all(v.shape == (2, 3) for v in cf.gains(t).values())
    assert cf.V1(t, 1.0, np.ones((2, 1)), 0.5).shape == (2, 3)
    assert [r["t"] for r in cf.table([0.0, T])] == [0.0, T]
    with pytest.raises(ValueError, match="t must lie"):
        cf.coefficients(1.1 * T)


# ---- 3. value = expected cost --------------------------------------------------------------
STATES = [(1.0, 0.5, 0.8), (-1.3, 2.0, 0.0), (0.0, 0.0, 0.0), (0.4, -0.7, 1.5)]


@pytest.mark.slow
@pytest.mark.parametrize("frac", [0.0, 0.6])
def test_value_equals_moment_ode_cost(cf, frac):
    t0 = frac * cf.params["T"]
    for x0, x1, z in STATES:
        J0, J1 = expected_costs(cf, t0, x0, x1, z)
        assert abs(J0 - cf.V0(t0, x0, z)) <= 1e-8 * abs(J0)
        assert abs(J1 - cf.V1(t0, x0, x1, z)) <= 1e-8 * abs(J1)


class Misprinted(StackelbergLQ):
    """The Riccati system as printed by Huang & Yang (the two misprints of the module
    docstring of stackelberg_lq), for checks that must reject it."""

    def rhs(self, t, y):
        d = super().rhs(t, y)
        K00, K10 = self._gains(*y[:9])[:2]
        d[COEFFS.index("P02")] -= y[COEFFS.index("P0")] * (self.B0 * K10 + self.F0)
        d[COEFFS.index("P10")] -= 2 * y[COEFFS.index("P010")] * self.B0 * (K00 - K10)
        return d


def mc_misfit(cf, t0, state, seed=11):
    """Largest |Monte Carlo cost of cf's feedbacks − cf's value formula| in standard errors."""
    x0, x1, z = state
    mc = monte_carlo_costs(cf, t0, x0, x1, z, paths=20_000, seed=seed)
    return max(abs(mc["J0"] - cf.V0(t0, x0, z)) / mc["J0_se"], abs(mc["J1"] - cf.V1(t0, x0, x1, z)) / mc["J1_se"])


@pytest.mark.slow
@pytest.mark.parametrize("horizon", [3.0, 1.0])
def test_value_monte_carlo(cf, horizon):
    """From a state with z ≠ 0 (where P10, P02 matter), over horizons 3 and 1: the derived
    system's values are the simulated costs; the printed system's are not."""
    t0 = cf.params["T"] - horizon
    state = STATES[0]                                          # (x0, x1, z) = (1, 0.5, 0.8)
    assert mc_misfit(cf, t0, state) < 4
    wrong = Misprinted(**cf.params)
    assert mc_misfit(wrong, t0, state) > 20


# ---- 4. equilibrium: no profitable deviation -----------------------------------------------
@pytest.mark.slow
@pytest.mark.parametrize("which", ["K0", "K1", "K2", "offset"])
def test_no_profitable_deviation_in_limit(cf, which):
    """J1(delta) - J1(0) >= 0 and = c delta^2 + O(delta^3): the first-order term vanishes."""
    x0, x1, z = STATES[0]

    def J1(d):
        dK = [d * (which == k) for k in ("K0", "K1", "K2")]
        return expected_costs(cf, 0.0, x0, x1, z, dK=dK, offset=d * (which == "offset"))[1]

    J = J1(0.0)
    for d in (0.1, 0.02):
        up, down = J1(d) - J, J1(-d) - J
        assert up > 0 and down > 0
        assert abs(up - down) < 0.1 * (up + down) * d / 0.1        # odd part is O(delta^3)
    c1, c2 = (J1(0.02) + J1(-0.02) - 2 * J) / 0.02**2, (J1(0.01) + J1(-0.01) - 2 * J) / 0.01**2
    assert abs(c1 / c2 - 1) < 0.01


LEADER_DEVIATIONS = {"K00": dict(dK0=(1.0, 0.0)), "K10": dict(dK0=(0.0, 1.0)), "offset": dict(offset0=1.0)}


def leader_deviation(cf, which, d, state=STATES[0]):
    """J0 when the leader's feedback moves by d in one direction and the followers re-respond,
    minus J0 on the equilibrium (moment ODEs, not the value formulas)."""
    def J0(s):
        kw = {k: tuple(s * np.asarray(v)) if isinstance(v, tuple) else s * v
              for k, v in LEADER_DEVIATIONS[which].items()}
        return expected_costs(cf, 0.0, *state, **kw)[0]
    return J0(d) - J0(0.0)


@pytest.mark.slow
@pytest.mark.parametrize("which", list(LEADER_DEVIATIONS))
def test_leader_optimal_against_its_deviations(cf, which):
    """The Stackelberg leader cannot gain by changing its feedback while the followers
    re-respond: J0(δ) − J0(0) > 0 and = c δ² + O(δ³), so the first-order slope
    (J0(δ) − J0(−δ)) / 2δ vanishes (measured below 3e-6 at δ = 1e-3; a Nash leader's is
    above 0.05)."""
    for d in (0.1, 0.02, 0.002):
        up, down = leader_deviation(cf, which, d), leader_deviation(cf, which, -d)
        assert up > 0 and down > 0, (which, d, up, down)
        assert abs(up - down) < 2.5 * d * (up + down), (which, d, up, down)   # the odd part is O(δ³)
    d = 1e-3
    assert abs(leader_deviation(cf, which, d) - leader_deviation(cf, which, -d)) / (2 * d) < 1e-4


@pytest.mark.slow
def test_nash_leader_fails_the_leader_check(cf):
    """The same check rejects a leader that ignores the followers' answer (Dt = D): some
    deviation lowers its cost, at first order; with R2 = 0 the two leaders coincide."""
    nash = StackelbergLQ(leader="nash", **cf.params)
    gains = {w: -min(leader_deviation(nash, w, d) for d in (0.02, -0.02, 1e-3, -1e-3)) for w in LEADER_DEVIATIONS}
    assert max(gains.values()) > 1e-4, gains
    slope = max(abs(leader_deviation(nash, w, 1e-3) - leader_deviation(nash, w, -1e-3)) / 2e-3
                for w in LEADER_DEVIATIONS)
    assert slope > 1e-2, slope
    plain = dict(cf.params, R2=0.0)
    a, b = StackelbergLQ(**plain), StackelbergLQ(leader="nash", **plain)
    assert np.allclose([a.V0(0.0, 1.0, 0.8)], [b.V0(0.0, 1.0, 0.8)], rtol=1e-12)
    assert all(leader_deviation(b, w, d) > 0 for w in LEADER_DEVIATIONS for d in (0.02, -0.02))


@pytest.mark.slow
def test_n_player_deviation_gain(cf):
    x0, z0, s0 = 1.0, 0.8, 0.5
    Ns = (2, 5, 20, 100, 1000)
    res = [follower_deviation_gain(cf, N, x0, z0, s0) for N in Ns]
    gain = np.array([r["gain"] for r in res])
    assert np.all(gain > 0) and np.all(np.diff(gain) < 0)
    assert -2.3 < loglog_slope(np.array(Ns[2:]), gain[2:]) < -1.7       # gain ~ 1/N^2
    lim = follower_deviation_gain(cf, np.inf, x0, z0, s0)
    assert abs(lim["gain"]) < 1e-9 * lim["cost_keep"]
    P1 = cf.coefficients(0.0)["P1"]
    assert abs(lim["cost_keep"] - cf.V1(0.0, x0, z0, z0) - P1 * s0**2) < 1e-9 * lim["cost_keep"]


def test_mean_gap_rate():
    cf = StackelbergLQ()
    Ns = np.array([10, 40, 160, 640])
    gaps = np.array([mean_gap(cf, N, paths=300, seed=int(N), steps=120) for N in Ns])
    assert np.all(np.diff(gaps[:, 0]) < 0)
    slope = loglog_slope(Ns, gaps[:, 0])
    assert -0.7 < slope < -0.3, slope


# ---- 5. argument checks --------------------------------------------------------------------
@pytest.mark.parametrize("name, value", [("R", 0.0), ("R", -1.0), ("R0", 0.0), ("R0", -0.5),
                                         ("T", 0.0), ("T", -2.0), ("rho", -0.1)])
def test_bad_parameters(name, value):
    with pytest.raises(ValueError, match=rf"^parameter {name} must be [^\n]*$"):
        StackelbergLQ(**{name: value})


def test_blow_up():
    with pytest.raises(ValueError, match=r"^Riccati solution blows up near t = [^\n]*$"):
        StackelbergLQ(Q=-5.0)
    with pytest.raises(ValueError):
        follower_deviation_gain(StackelbergLQ(), 1)
