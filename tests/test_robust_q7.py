"""The q = 7 three-player game (Section 8.1 of Bauso & Başar 2016) by closed form and Monte
Carlo (mfgpde/validation/robust_q7.py).  The paper's θT = 0.01 × 500 = 5 is kept as
θ = 0.1 over T = 50 where the claim is about consensus, to keep the closed form cheap."""
import math

import numpy as np
import pytest

from mfgpde.models.base import ModelError
from mfgpde.models.registry import create
from mfgpde.validation import robust_q7 as q7


@pytest.fixture(scope="module")
def noisy():
    """The paper's player, x(0) = [1 3 2 3 2 5 4], tracking m̄(0) e^{−θt}: θT = 5, σ = 0.01, dt = 0.1."""
    return q7.study(T=50.0, theta=0.1, sigma=0.01, samples=200, dt=0.1, seed=1)


@pytest.fixture(scope="module")
def deterministic():
    return q7.study(T=20.0, theta=0.0, sigma=0.0, samples=50, dt=0.1, seed=2)


def test_conjugate_time_of_the_three_player_game():
    """Γ = γI: M = −1/γ on ker Bᵀ, so τ* = √γ atan √γ; Γ = I gives π/4 and refuses T = 1."""
    assert q7.build(T=0.5, gamma=1.0)[0].tau_star == pytest.approx(math.pi / 4, rel=1e-9)
    with pytest.raises(ModelError, match="conjugate time 0.785398"):
        q7.build(T=1.0, gamma=1.0)
    model = create("robust_designer", 7, players=3, Gamma=q7.GAMMA, mu0=q7.MBAR0, tracking="internal")
    model.set_horizon(q7.T_PAPER)
    g = q7.GAMMA
    assert model.tau_star == pytest.approx(math.sqrt(g) * math.atan(math.sqrt(g)), rel=1e-6)
    assert model.tau_star > 1.9 * q7.T_PAPER


@pytest.mark.slow
def test_the_closed_form_holds_on_a_long_horizon():
    """The internal model's h backward, m̄ forward: finite at T = 50 (the shooting overflowed
    from T ≈ 10), h(T) = −Sρ(T), m̄(0) = m̄(0), and the mean from m̄(0) is the closed form's."""
    _, cf = q7.build(T=50.0, theta=0.1)
    rhoT = np.asarray(q7.MBAR0) * math.exp(-0.1 * 50.0)
    assert np.abs(cf.h(50.0) + cf.S @ rhoT).max() < 1e-9 * np.abs(rhoT).max()
    t = np.linspace(0.0, 50.0, 11)
    assert np.all(np.isfinite(cf.mean(t))) and np.allclose(cf.mean(0.0), q7.MBAR0, rtol=1e-12)
    assert np.abs(q7.mean_from(cf, q7.MBAR0)(t) - cf.mean(t)).max() < 1e-6 * np.abs(cf.mean(t)).max()


@pytest.mark.slow
def test_monte_carlo_mean_within_four_standard_errors_of_the_closed_form():
    """|x̂(t) − m̄(t)| ≤ 4 ŝ(t)/√N at t = 0.25, 0.5, 1, 2, with a time step whose Euler bias
    (computed from the recursion of the mean) is below one standard error."""
    r = q7.study(T=2.0, theta=0.5, sigma=2.0, s0=0.5, samples=400, dt=1e-3, seed=3)
    for t in (0.25, 0.5, 1.0, 2.0):
        k = int(round(t / r["dt"]))
        se = np.sqrt(np.diag(r["mc_cov"][k]) / r["samples"])
        assert np.all(np.abs(r["euler_mean"][k] - r["cf_mean"][k]) < se), "time step too coarse for the test"
        assert np.all(np.abs(r["mc_mean"][k] - r["cf_mean"][k]) <= 4 * se), t
    assert np.abs(r["cf_mean"][-1] - r["cf_mean"][0]).max() > 100 * se.max()  # the mean moves: a real test


@pytest.mark.slow
def test_monte_carlo_covariance_matches_the_closed_form():
    """|Σ̂_ij − Σ_ij| / √(Σ_ii Σ_jj) ≤ 0.1 (five standard errors of a sample covariance,
    5√(2/N) ≤ 0.1 at N = 5000) at every step; Euler's relative bias is ≈ √8 dt / 2 = 1.4 %."""
    r = q7.study(T=2.0, theta=0.5, sigma=0.5, s0=0.1, samples=5000, dt=0.01, seed=4)
    assert 5 * math.sqrt(2 / r["samples"]) <= 0.1
    d = np.sqrt(np.einsum("kii->ki", r["cf_cov"]))
    rel = np.abs(r["mc_cov"] - r["cf_cov"]) / (d[:, :, None] * d[:, None, :])
    assert rel.max() <= 0.1
    spread = np.linalg.eigvalsh(r["cf_cov"][-1])
    assert spread[-1] / spread[0] > 3  # not isotropic: ker Bᵀ (diffusing) and range B (held) differ


@pytest.mark.slow
def test_consensus_to_the_internal_model_and_a_neighbourhood_of_the_origin(noisy):
    """The least-squares error e_ls = (BᵀB)⁻¹Bᵀ(ρ − x̄) falls by 1e-3 or more; x̄(T) ends
    within 5 % of its largest excursion, near (I − P)x(0), the part no allocation reaches."""
    c = noisy["consensus"]
    assert c["e_ls factor"] < 1e-3
    assert c["|x(T)| / max |x|"] < 0.05
    assert c["|x(T)|"] < 1.2 * c["|(I-P)x(0)|"] + np.linalg.norm(noisy["rho"][-1])
    assert c["core eps(T)"] < 1e-3 * c["core eps(0)"]  # the allocation ends in a small ε-core


@pytest.mark.slow
def test_least_squares_target_reached_without_noise_or_decay(deterministic):
    """θ = 0, σ = 0: x̄ → the least-squares approximation of m̄(0) on x(0) + range B:
    e_ls(T) below 1e-6 (from 33), and the mean is the closed form's to 1e-2 (Euler, dt = 0.1)."""
    r = deterministic
    assert r["consensus"]["e_ls(0)"] > 30
    assert r["consensus"]["e_ls(T)"] < 1e-6
    assert np.abs(r["mc_mean"][-1] - r["cf_mean"][-1]).max() < 1e-2


@pytest.mark.slow
def test_the_adversary_pushes_the_unreachable_excess_away():
    """On ker Bᵀ only w* acts: (I − P)(x̄ − m̄(0)) grows by exp ∫ φ/γ dt (θ = 0); with γ = 100,
    T = 10 < τ* = 14.7 the closed form says by about 2.2, and the Monte Carlo mean agrees to 1 %."""
    r = q7.study(T=10.0, gamma=100.0, theta=0.0, sigma=0.0, samples=20, dt=0.01, seed=5)
    B = r["cf"].B
    null = np.eye(7) - B @ np.linalg.solve(B.T @ B, B.T)
    grow = {k: np.linalg.norm(null @ (r[k][-1] - q7.MBAR0)) / np.linalg.norm(null @ (r[k][0] - q7.MBAR0))
            for k in ("mc_mean", "cf_mean")}
    assert grow["cf_mean"] > 2.0
    assert grow["mc_mean"] == pytest.approx(grow["cf_mean"], rel=1e-2)
