"""Incentive design (closedforms/incentive.py) against checks that do not use its formulas:
best responses found numerically from the costs (validation/incentive_check.py), the
minors' Nash equilibrium as a fixed point of those, the leader's cost sampled.

- followers' game: the incentive makes the leader-optimal outcome every follower's best
  answer (and without it they answer otherwise); the gain it needs, measured as N times a
  follower's numerical marginal cost at that outcome, grows like N;
- major-minor game: the minors' Nash answer, the major's answer to its finite incentive,
  the leader-major optimum (the leader's sampled cost against the major's strategy, the
  minors re-answering numerically), the mean field design applied to N minors;
- the leader's costs ordered leader-optimal ≤ leader-major-optimal ≤ uncontrolled, and the
  error of the mean field solution as an approximation of the N-minor game falling with N.
"""
import math

import numpy as np
import pytest

from mfgpde.closedforms.incentive import FollowersGame, MajorMinorGame, comparison, gain_growth, mean_field_errors
from mfgpde.validation.incentive_check import Sampled, affine, best_response, minors_nash

OTHER = {"a": 1.3, "q": 0.7, "rho": 2.0, "mu": -0.4, "s": 1.1}  # a second parameter set
OTHER_MAJOR = dict(OTHER, b=2.5, e=0.6, p=1.5, mu_M=0.8, s_M=0.3)


@pytest.mark.parametrize("params", [{}, OTHER], ids=["default", "other"])
@pytest.mark.parametrize("N", [1, 4, 25])
def test_incentive_makes_the_leader_optimal_outcome_a_best_answer(N, params):
    game = FollowersGame(N=N, **params)
    sampled = Sampled(game)
    g, h = game.team()
    target = g * sampled.nodes + h
    answer = best_response(sampled.minor_cost(affine(g, h), leader=game.incentive), sampled.nodes)
    assert np.abs(answer - target).max() < 1e-9
    uncontrolled = best_response(sampled.minor_cost(affine(g, h)), sampled.nodes)
    assert np.abs(uncontrolled - target).max() > 0.05
    # and the leader-optimal outcome is optimal for the leader: its sampled cost is a
    # parabola in g and in h, with its vertex there
    for i in (0, 1):
        step = np.eye(2)[i] * 0.1
        J = [sampled.leader_cost(affine(*((g, h) + c * step)))[0] for c in (-1, 0, 1)]
        assert abs(0.1 * (J[2] - J[0]) / (2 * (J[2] - 2 * J[1] + J[0]))) < 1e-9
    assert abs(sampled.leader_cost(affine(g, h))[0] - game.leader_cost(g, h)) < 1e-12


def test_needed_gain_grows_like_N():
    """k(x) = −N dJ_i/du_i at the leader-optimal outcome, the derivative taken numerically
    from the sampled cost: it matches the formula's gain, and k/N tends to a nonzero limit."""
    ratios = []
    for N in (2, 8, 32, 128):
        game = FollowersGame(N=N)
        sampled = Sampled(game, samples=500)
        g, h = game.team()
        f, u, d = sampled.minor_cost(affine(g, h)), g * sampled.nodes + h, 1e-3
        needed = -N * (f(u + d) - f(u - d)) / (2 * d)
        k1, k0 = game.gain()
        assert np.abs(needed - (k1 * sampled.nodes + k0)).max() < 1e-9 * N
        ratios.append(np.abs(needed).mean() / N)
    assert min(ratios) > 0.3 and abs(ratios[-1] - ratios[-2]) < 0.02 * ratios[-1]
    growth = gain_growth(FollowersGame(), [10, 100, 1000, 10000])
    assert abs(growth["slope"] - 1.0) < 0.01
    with pytest.raises(ValueError, match="grows like N"):
        FollowersGame(N=math.inf).gain()


def test_no_gain_needed_when_the_team_mean_is_the_uncontrolled_mean():
    """q = a rho: the team mean rho mu/(rho + q) is the mean field mean mu/(1 + a), and the
    gain stays bounded."""
    norms = [FollowersGame(N=N, a=0.5, q=0.5, rho=1.0).gain_norm() for N in (10, 100, 1000)]
    assert max(norms) < 2.0 and abs(norms[-1] - norms[-2]) < 0.01


@pytest.mark.parametrize("params", [{}, OTHER_MAJOR], ids=["default", "other"])
@pytest.mark.parametrize("N", [1, 3, 12])
def test_major_minor_solution_checked_numerically(N, params):
    game = MajorMinorGame(N=N, **params)
    sampled = Sampled(game)
    d = game.leader_major()
    major = affine(1.0, d["h_M"])
    minors = minors_nash(sampled, major)
    assert np.abs(minors.values - (d["g"] * sampled.nodes + d["h"])).max() < 1e-9
    nodes, f = sampled.major_cost(minors, lambda x_M, u_M: d["k_M"] * (u_M - x_M - d["h_M"]))
    assert np.abs(best_response(f, nodes) - (nodes + d["h_M"])).max() < 1e-9
    nodes, f = sampled.major_cost(minors, lambda x_M, u_M: 0.0 * u_M)
    assert np.abs(best_response(f, nodes) - (nodes + d["h_M"])).max() > 0.05
    # the leader's sampled cost over the major's strategy, the minors answering each one
    # numerically: a parabola in h_M whose vertex is the leader-major optimum
    costs = []
    for dh in (-0.1, 0.0, 0.1):
        major = affine(1.0, d["h_M"] + dh)
        costs.append(sampled.leader_cost(minors_nash(sampled, major), major)[0])
    vertex = d["h_M"] - 0.1 * (costs[2] - costs[0]) / (2 * (costs[2] - 2 * costs[1] + costs[0]))
    assert abs(vertex - d["h_M"]) < 1e-8
    assert abs(sampled.leader_cost(minors, affine(1.0, d["h_M"]))[0] - d["J0"]) < 1e-12


def test_mean_field_design_applied_to_N_minors():
    """The N = inf incentive in the game of 5 minors: the followers' equilibrium (major's
    numerical answer and minors' numerical Nash, alternated) is the closed form's answer."""
    game = MajorMinorGame(N=5, **OTHER_MAJOR)
    k_M = MajorMinorGame(N=math.inf, **OTHER_MAJOR).leader_major()["k_M"]
    sampled, h_M = Sampled(game), 0.0
    for _ in range(100):
        minors = minors_nash(sampled, affine(1.0, h_M))
        nodes, f = sampled.major_cost(minors, lambda x_M, u_M: k_M * u_M)
        new = np.mean(best_response(f, nodes) - nodes)
        h_M, change = new, abs(new - h_M)
        if change < 1e-12:
            break
    expected = game.answer(k_M)
    assert abs(h_M - expected["h_M"]) < 1e-9
    assert np.abs(minors.values - (expected["g"] * sampled.nodes + expected["h"])).max() < 1e-9


def test_mean_field_error_falls_with_N():
    rows = mean_field_errors(MajorMinorGame(), [64, 128, 256, 512, 1024])
    assert abs(rows["slope_loss"] + 2) < 0.1  # the leader's loss against the N-game optimum
    for k in ("cost_error", "major_error", "minor_error"):
        assert abs(rows[f"slope_{k}"] + 1) < 0.1, k
    assert np.all(rows["loss"] > 0)


def test_leader_costs_are_ordered_and_the_major_gain_stays_finite():
    table = comparison(MajorMinorGame(N=math.inf), np.linspace(0, 4, 9), [0.1, 0.5, 2.0])
    assert np.all(table["leader_optimal"] <= table["leader_major"] + 1e-15)
    assert np.all(table["leader_major"] <= table["nash"] + 1e-15)
    assert np.all(table["leader_major"] - table["leader_optimal"] > 0.05)  # a real price of the limit
    gains = [MajorMinorGame(N=N).leader_major()["k_M"] for N in (10, 100, 1000, math.inf)]
    assert max(map(abs, gains)) < 1 and abs(gains[-2] - gains[-1]) < 1e-3


def test_bad_parameters():
    for bad, match in (({"N": 2.5}, "N: a whole number"), ({"a": -1}, "a: must be ≥ 0"),
                       ({"q": 0}, "q: must be > 0")):
        with pytest.raises(ValueError, match=match):
            FollowersGame(**bad)
    with pytest.raises(ValueError, match="p and b"):
        MajorMinorGame(p=0, b=0)
