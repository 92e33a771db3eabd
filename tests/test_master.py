"""The discrete-time Stackelberg master equation: games solved by hand, optimistic and
pessimistic leaders, equilibrium checks on the studies, 1 rank = 2 ranks."""
import json

import h5py
import numpy as np
import pytest

from conftest import RUNS, mfgpde, run_in_process
from mfgpde.grids import SimplexGrid
from mfgpde.models import DiscreteGameModel
from mfgpde.solvers.master import MasterSolver, follower_exploitability


class Threshold(DiscreteGameModel):
    """Action 1 pays b − ½, action 0 nothing; the next state is the action.  The leader
    earns (1 − b) per follower on action 1.  One step: followers take 1 iff b > ½."""
    name = "threshold"
    states, actions = ("s0", "s1"), ("a0", "a1")
    parameters = {"delta": 0.5}

    def leader_actions(self):
        return (0.0, 1.0)

    def transition(self, z, b):
        Q = np.zeros((len(z), len(self.states), 2, len(self.states)))
        Q[:, :, 0, 0] = Q[:, :, 1, 1] = 1.0
        return Q

    def follower_reward(self, z, b):
        R = np.zeros((len(z), len(self.states), 2))
        R[:, :, 1] = (np.broadcast_to(b, (len(z),)) - 0.5)[:, None]
        return R

    def leader_reward(self, z, b, policy):
        return (1 - np.broadcast_to(b, (len(z),))) * np.einsum("kx,kx->k", z, policy[:, :, 1])


class Threshold3(Threshold):
    """The same on three states (the third is never entered): the triangle grid."""
    name = "threshold3"
    states = ("s0", "s1", "s2")


class Crowd(Threshold):
    """No leader effect; the follower pays κ z'(x') for the crowd in the state it moves to:
    the plain MFE splits the population evenly, value −δκ/2 at t = 1 of two steps."""
    name = "crowd"
    parameters = {"delta": 0.8, "kappa": 1.5}

    def follower_reward(self, z, b):
        return -self.kappa * np.repeat(z[:, :, None], 2, axis=2)  # paid where one is now

    def leader_reward(self, z, b, policy):
        return np.zeros(len(z))


class Waves(Crowd):
    """Paid cos(ω z(x)) where one is: from z = (1, 0), state 0 sending p to state 1 is
    indifferent where cos(ωp) = cos(ω(1 − p)), at p = ½ + j π/ω; ω = 7π: seven mixed
    equilibria, p = 1/14, 3/14, …, 13/14 (and no pure one: 1 − cos 7π ≠ 0)."""
    name = "waves"
    parameters = {"delta": 0.8, "omega": 7 * np.pi}

    def follower_reward(self, z, b):
        return np.repeat(np.cos(self.omega * z)[:, :, None], 2, axis=2)


def test_every_mixed_equilibrium_is_found():
    model, grid = Waves(), SimplexGrid(2, 280)
    solver = MasterSolver(model, grid, leader_points=3)
    last = np.cos(model.omega * grid.points)  # the last level's value: its reward, wherever one is
    policies, valid = solver.equilibria(np.array([[1.0, 0.0]]), 0.0, last)
    p = np.unique(np.round(policies[0, valid[0], 0, 1], 6))
    assert np.allclose(p, (2 * np.arange(7) + 1) / 14, atol=2e-3), p


class WavesLeader(Waves):
    """Waves with a leader who earns the share on action 1: its seven equilibria from
    z = (1, 0) are worth p_j to it, so the selection decides its value."""
    name = "waves_leader"

    def leader_reward(self, z, b, policy):
        return np.einsum("kx,kx->k", z, policy[:, :, 1])


@pytest.mark.parametrize("selection", ["optimistic", "pessimistic"])
def test_selection_among_seven_equilibria_equals_brute_force(selection):
    """The optimistic (pessimistic) leader's value is the largest (smallest) over the
    equilibria that a brute-force scan finds: the indifference gap of state 0 from the
    model's own q on 200001 mixing probabilities, its sign changes the roots."""
    model, grid = WavesLeader(), SimplexGrid(2, 280)
    solver = MasterSolver(model, grid, selection=selection, leader_points=3)
    last, z = np.cos(model.omega * grid.points), np.array([[1.0, 0.0]])
    W, _, count = solver.leader_value(z, 0.0, last, np.zeros(grid.size))
    p = np.linspace(0.0, 1.0, 200001)
    Q = model.transition(z, 0.0)[0]
    q = (model.follower_reward(np.repeat(z, len(p), 0), 0.0)
         + model.delta * np.einsum("xay,ky->kxa", Q, grid.interpolate(last, np.stack([1 - p, p], axis=1))))
    gap = q[:, 0, 1] - q[:, 0, 0]
    roots = p[:-1][(np.sign(gap[:-1]) * np.sign(gap[1:]) < 0) | (gap[:-1] == 0)]  # the leader earns p (nothing after)
    assert len(roots) == 7 and count[0] >= 7, (roots, count)
    expect = roots.max() if selection == "optimistic" else roots.min()
    assert abs(W[0] - expect) < 1e-5, (W[0], roots)


@pytest.mark.parametrize("selection", ["optimistic", "pessimistic"])
@pytest.mark.parametrize("model", [Threshold, pytest.param(Threshold3, marks=pytest.mark.slow)])
def test_threshold_game_by_hand(selection, model):
    """Optimistic and pessimistic leaders differ where the followers are indifferent."""
    solver = MasterSolver(model(), SimplexGrid(len(model.states), 4), selection=selection, leader_points=41)
    (level,) = solver.finite(1)
    share = np.einsum("kx,kx->k", solver.grid.points, level.policy[:, :, 1])  # of the population on action 1
    if selection == "optimistic":  # at b = ½ every profile is an equilibrium; the best for the leader
        assert np.all(level.leader == 0.5) and np.allclose(level.Vl, 0.5)
        assert np.all(level.equilibria >= 4) and np.allclose(share, 1.0)  # a continuum, sampled
    else:  # the worst equilibrium at b = ½ sells nothing: the leader prices just above ½
        assert np.all((level.leader > 0.5) & (level.leader <= 0.502)), level.leader
        assert np.all((level.Vl >= 0.498) & (level.Vl < 0.5)) and np.allclose(share, 1.0)


@pytest.mark.parametrize("epsilon", [0.005, 0.02, 0.08, 0.2])
def test_epsilon_pessimistic_threshold_game_by_hand(epsilon):
    """Against the worst ε-equilibrium at price b = ½ + u, all followers on one state may buy
    with any probability p ≥ 1 − ε/u (none for u ≤ ε), so the leader earns (½ − u)(1 − ε/u),
    largest at u = √(ε/2): V(ε) = ½ + ε − √(2ε).  Exact where the population is on one state
    (one mixing state is enumerated); never below it, and non-increasing in ε, elsewhere."""
    grid = SimplexGrid(2, 4)
    (level,) = MasterSolver(Threshold(), grid, selection="pessimistic", epsilon=epsilon).finite(1)
    value, u = 0.5 + epsilon - np.sqrt(2 * epsilon), np.sqrt(epsilon / 2)
    vertices = [0, grid.size - 1]
    assert np.allclose(level.Vl[vertices], value, atol=1e-6), level.Vl  # the price grid: 2e-4 apart
    assert np.allclose(level.leader[vertices], 0.5 + u, atol=2e-3), level.leader
    assert np.all(level.Vl >= value - 1e-6)
    (wider,) = MasterSolver(Threshold(), grid, selection="pessimistic", epsilon=1.5 * epsilon).finite(1)
    assert np.all(wider.Vl <= level.Vl + 1e-12)


def test_epsilon_zero_is_the_pessimistic_leader_and_needs_it():
    grid = SimplexGrid(2, 4)
    plain = MasterSolver(Threshold(), grid, selection="pessimistic").finite(1)[0]
    zero = MasterSolver(Threshold(), grid, selection="pessimistic", epsilon=0.0).finite(1)[0]
    assert np.array_equal(plain.Vl, zero.Vl) and np.array_equal(plain.leader, zero.leader)
    with pytest.raises(ValueError, match="solver.epsilon"):
        MasterSolver(Threshold(), grid, selection="optimistic", epsilon=0.1)


def test_leader_without_effect_gives_the_plain_mean_field_equilibrium():
    model = Crowd()
    solver = MasterSolver(model, SimplexGrid(2, 20), leader_points=3)
    first, last = solver.finite(2)
    assert np.allclose(last.Vf, -1.5 * SimplexGrid(2, 20).points)  # V_2(z, x) = −κ z(x)
    # t = 1: the crowd splits evenly whatever z is, and each follower expects −δκ/2 next
    assert np.allclose(first.z_next, 0.5, atol=1e-9)
    assert np.allclose(first.Vf, -1.5 * SimplexGrid(2, 20).points - 0.8 * 1.5 * 0.5, atol=1e-9)


@pytest.mark.slow
def test_followers_cannot_gain_along_the_infection_path():
    from mfgpde.models import create
    model = create("infection")
    solver = MasterSolver(model, SimplexGrid(2, 20), leader_points=11)
    levels = solver.finite(8)
    zero = (np.zeros((21, 2)), np.zeros(21))
    path = solver.forward([0.6, 0.4], lambda t: (levels[t + 1].Vf, levels[t + 1].Vl) if t + 1 < 8 else zero, 8)
    assert follower_exploitability(model, path, np.zeros(2)) < 1e-9
    assert np.allclose(path["z"].sum(axis=1), 1.0)


@pytest.mark.slow
@pytest.mark.mpi
@pytest.mark.parametrize("run, sets", [("infection_vaccination", ["--set", "grid.n=10", "--set", "time.steps=6",
                                                                   "--set", "solver.tolerance=1e-3"]),
                                       ("technology_adoption", ["--set", "grid.n=16", "--set", "time.T=5"]),
                                       ("infection_vaccination", ["--set", "grid.n=10", "--set", "time.T=6",
                                                                  "--set", "solver.leader='pessimistic'",
                                                                  "--set", "solver.epsilon=0.002"])])
def test_studies_are_equilibria_and_rank_independent(run, sets, tmp_path):
    """The followers gain nothing by deviating along the path (at most ε/(1 − δ), the sum of
    one-step gains of ε, for the ε-pessimistic leader); 1 and 2 ranks give the same bits."""
    fields = {}
    for nproc in (None, 2):
        out = tmp_path / f"{nproc or 1}.h5"
        proc = mfgpde("run", RUNS / f"{run}.toml", *sets, "--set", "solver.leader_points=11",
                      "--set", "output.plots=false", "-o", out, nproc=nproc)
        assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
        with h5py.File(out, "r") as f:
            cfg = json.loads(f.attrs["config"])
            bound = cfg["solver"]["epsilon"] / (1 - cfg["model"].get("delta", 0.0))
            assert f.attrs["follower_exploitability"] <= bound + 1e-9
            assert f.attrs["leader_gain"] < 1e-2
            commitment = f["trajectory/leader_commitment_gain"][()]
            assert f.attrs["commitment_steps"] == 1 and len(commitment) == len(f["trajectory/leader_action"])
            if cfg["solver"]["epsilon"]:  # the independent check enumerates exact equilibria only
                assert np.all(np.isnan(commitment))
            else:  # one step, the path's own action among the candidates: nothing to gain
                assert np.all(np.abs(commitment) < 1e-9) and f.attrs["leader_commitment_gain"] < 1e-9
            fields[nproc] = {k: f["solution"][k][()] for k in f["solution"]}
            fields[nproc]["path"] = f["trajectory/z"][()]
            fields[nproc]["commitment"] = commitment
    for k in fields[None]:
        assert np.array_equal(fields[None][k], fields[2][k], equal_nan=True), k


@pytest.mark.parametrize("sets, key", [(["time.z1=[0.5, 0.6]"], "time.z1"), (["solver.leader='greedy'"], "solver.leader"),
                                       (["solver.epsilon=-0.1"], "solver.epsilon"), (["solver.epsilon=0.1"], "solver.epsilon"),
                                       (["time.T=0"], "time.T"), (["model.lam=-1.0"], "model.lam"),
                                       (["grid.n=0"], "grid.n"), (["grid.lower=[0.0]"], "grid.lower")])
def test_bad_discrete_input_is_one_line(sets, key, tmp_path):
    proc = run_in_process("run", RUNS / "infection_vaccination.toml", *[a for s in sets for a in ("--set", s)],
                          "-o", tmp_path / "x.h5")
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert proc.returncode == 2 and len(lines) == 1 and key in lines[0], proc.stderr
    assert not (tmp_path / "x.h5").exists()


def test_leader_optimal_set_does_not_depend_on_the_price_grid():
    """Infection game, 3 levels: where the leader's value is flat in the price, the ends of
    its optimal set, the price played (the lowest optimal one) and the followers' values are
    the same with 21 and 41 candidate prices, to the width the ends are narrowed to."""
    from mfgpde.models import create
    model, grid = create("infection"), SimplexGrid(2, 20)
    a, b = (MasterSolver(model, grid, leader_points=n).finite(3)[0] for n in (21, 41))
    width = model.lam / 20 / 11 ** 4                    # 21 candidates' spacing / 11^4
    assert np.max(a.high - a.low) > 0.05                 # a genuine tie, an interval of prices
    assert np.array_equal(a.leader, a.low) and np.all(a.low <= a.high)
    for end in ("low", "high"):
        assert np.max(np.abs(getattr(a, end) - getattr(b, end))) < 2 * width, end
    assert np.max(np.abs(a.Vf - b.Vf)) < 1e-5
    assert np.max(np.abs(a.Vl - b.Vl)) < 1e-9


class Promise(DiscreteGameModel):
    """Followers are out (0) or in (1); investing (action 1) puts one in at the next step
    at cost c, waiting puts one out.  In, a follower earns 1 − b (b the leader's tax, 0,
    ½ or 1); the leader earns (w + b) per follower in, plus e·b.  This step's tax cannot
    move this step's investment, so the Markov leader taxes 1 everywhere and nobody
    invests: V^l = (w + 1) z(in) + e/(1 − δ).  Committing to tax ½ next step (δ/2 > c)
    makes everyone invest now, worth δ(w + ½ − e/2) more from every state (1.305); one
    step of deviation gains nothing."""
    name = "promise"
    states, actions = ("out", "in"), ("wait", "invest")
    parameters = {"delta": 0.9, "c": 0.3, "w": 1.0, "e": 0.1}

    def leader_actions(self):
        return [0.0, 0.5, 1.0]

    def transition(self, z, b):
        Q = np.zeros((len(z), 2, 2, 2))
        Q[:, :, 0, 0] = Q[:, :, 1, 1] = 1.0
        return Q

    def follower_reward(self, z, b):
        R = np.zeros((len(z), 2, 2))
        R[:, 1, :] = (1.0 - np.broadcast_to(b, (len(z),)))[:, None]
        R[:, :, 1] -= self.c
        return R

    def leader_reward(self, z, b, policy):
        b = np.broadcast_to(b, (len(z),))
        return (self.w + b) * z[:, 1] + self.e * b


@pytest.mark.parametrize("selection", ["optimistic", "pessimistic"])
def test_commitment_gain_by_hand(selection):
    from mfgpde.solvers.commitment import commitment_gain
    from mfgpde.solvers.master import leader_gain
    model, grid = Promise(), SimplexGrid(2, 4)
    solver = MasterSolver(model, grid, selection=selection)
    stage, _, converged = solver.stationary(tol=1e-13)
    assert converged and np.allclose(stage.Vl, 2.0 * grid.points[:, 1] + 1.0, atol=1e-11)

    def values(t):
        return stage.Vf, stage.Vl
    path = solver.forward([0.6, 0.4], values, 3)
    assert leader_gain(solver, path, values) < 1e-12  # the solver's one-step check sees nothing
    one, two = (commitment_gain(model, grid, selection, solver.candidates, path, values, k) for k in (1, 2))
    assert np.all(np.abs(one) < 1e-12), one
    assert np.allclose(two, 0.9 * 1.45, atol=1e-11), two
    finite = commitment_gain(model, grid, selection, solver.candidates, path, values, 2, horizon=3)
    assert np.allclose(finite, [1.305, 1.305, 0.0], atol=1e-11), finite  # the last step has no next one


def test_commitment_check_answers_the_infection_path_like_the_solver():
    """k = 1 on the infection game (mixed equilibria, ties): the independent enumeration's
    value of the played price is the solver's, and no candidate price does better."""
    from mfgpde.models import create
    from mfgpde.solvers.commitment import Answers, commitment_gain
    model, grid = create("infection"), SimplexGrid(2, 20)
    solver = MasterSolver(model, grid, leader_points=21)
    levels = solver.finite(4)
    zero = (np.zeros((grid.size, 2)), np.zeros(grid.size))

    def values(t):
        return (levels[t + 1].Vf, levels[t + 1].Vl) if t + 1 < 4 else zero
    path = solver.forward([0.6, 0.4], values, 4)
    answer = Answers(model, grid, "optimistic")
    for t in range(4):
        st = solver.stage(path["z"][t:t + 1], *values(t))
        assert abs(answer(path["z"][t:t + 1], st.leader, *values(t))[1][0] - st.Vl[0]) < 1e-12
    gain = commitment_gain(model, grid, "optimistic", solver.candidates, path, values, 1, horizon=4)
    assert np.all(gain < 1e-12) and np.all(gain > -1e-3), gain
