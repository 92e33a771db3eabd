"""The master equation of a discrete-time Stackelberg mean field game whose leader has a
private type θ ∈ {θ0, θ1}, drawn once from the prior and kept (Vasal & Berry 2022,
Section IV, with a persistent type), over (π, z): π = P(θ = θ1 | common information).

At (π, z) the leader commits to a pure prescription β: θ → B.  The followers know β, see
the action b = β(θ) before they act, update π' = P(θ1 | b) by Bayes' rule and answer with
an equilibrium γ of the stage game of b (as in master.py) whose continuation is
V^f_{t+1}(π', ·), expecting the rewards R^f_θ of the types under π'.  With two types β
pools (β(θ0) = β(θ1) = b: π' = π) or separates (π' = 0 after β(θ0), 1 after β(θ1)).  With z' = φ(z, b, γ),

    W_θ = R^l_θ(z, b, γ) + δ V^l_{t+1}(π', z', θ),    b = β(θ),
    β* = argmax_β (1 − π) W_θ0 + π W_θ1      (the leader's value given the common information),
    V^l_t(π, z, θ) = W_θ(β*),   V^f_t(π, z, x) = (1 − π) v(x | β*(θ0)) + π v(x | β*(θ1)),

v(x | b) = max_a q(x, a) the followers' value once b is seen.  Among several follower
equilibria the leader's selection (optimistic or pessimistic) ranks them by the weighted
value (pooling) or by the revealed type's value (separating).  The candidates B are the
model's finite actions or `leader_points` points of its interval (no refinement); ties go
to the lowest action (lexicographically for a pair, and to pooling over separating).
Beliefs stay on the grid of π: pooling keeps π, separating reaches 0 or 1.  A leader with
a changing type, ε-pessimism and the stationary problem are not built here.
"""
from dataclasses import dataclass

import numpy as np

from ..models.discrete import population_update
from ..stop import poll
from .commitment import Answers
from .master import TIE_RTOL, MasterSolver, backward
from .problem import SolverError


@dataclass
class TypedStage:
    """One level at every belief node j and row z: the actions (j, k, 2) the leader's
    types play, whether they pool (j, k), the followers' prescriptions after each type's
    action (j, k, 2, S, A), the values Vf (j, k, S) and Vl (j, k, 2), and what each type
    would gain by playing the other's action (j, k, 2; 0 when they pool), which the
    commitment forbids."""
    leader: np.ndarray
    pooling: np.ndarray
    policy: np.ndarray
    Vf: np.ndarray
    Vl: np.ndarray
    mimicry: np.ndarray


FIELDS = ("leader", "pooling", "policy", "Vf", "Vl", "mimicry")


def beliefs(points, prior):
    """The belief grid: `points` equally spaced values of π in [0, 1], and the prior."""
    return np.union1d(np.linspace(0.0, 1.0, points), [prior])


class KnownType:
    """The model as a game without types: the leader's reward w·R^l (w (2,)), the
    followers' belief·R^f (their expectation; belief = w unless given).  w = (1, 0) or
    (0, 1) is the game of a known type."""

    def __init__(self, model, w, belief=None, actions=None):
        self._model, self.w, self._actions = model, np.asarray(w, float), actions
        self.belief = self.w if belief is None else np.asarray(belief, float)

    def __getattr__(self, name):
        return getattr(self._model, name)

    def leader_actions(self):
        return self._model.leader_actions() if self._actions is None else list(self._actions)

    def leader_reward(self, z, b, policy):
        return self._model.leader_reward(z, b, policy) @ self.w

    def follower_reward(self, z, b):
        return np.einsum("ktxa,t->kxa", self._model.follower_reward(z, b), self.belief)


class PrivateTypeSolver:
    def __init__(self, model, grid, pi, selection="optimistic", leader_points=21):
        self.model, self.grid = model, grid
        self.pi = np.asarray(pi, float)
        if self.pi[0] != 0.0 or self.pi[-1] != 1.0 or np.any(np.diff(self.pi) <= 0):
            raise ValueError("beliefs: an increasing grid of π from 0 to 1")
        # at node j the followers expect the rewards of belief π_j
        self.bases = [MasterSolver(KnownType(model, (1 - p, p)), grid, selection=selection,
                                   leader_points=leader_points) for p in self.pi]
        self.candidates, self.selection = self.bases[0].candidates, selection

    def answers(self, z, j, Vf_next, Vl_next):
        """Every candidate b at the rows z (k, S), answered with the continuation at belief
        node j: the selected equilibrium's W (k, n, 2), followers' values v (k, n, S),
        policy (k, n, S, A); W = −inf where no equilibrium was found."""
        m, k, n = self.model, len(z), len(self.candidates)
        zs, bs = np.repeat(z, n, axis=0), np.tile(self.candidates, k)
        policies, valid = self.bases[j].equilibria(zs, bs, Vf_next[j])
        E = valid.shape[1]
        zE, bE = np.repeat(zs, E, axis=0), np.repeat(bs, E)
        flat = policies.reshape(k * n * E, *policies.shape[2:])
        Q = m.transition(zE, bE)
        z_next = population_update(zE, flat, Q)
        W = (m.leader_reward(zE, bE, flat) + m.delta * self.grid.interpolate(Vl_next[j], z_next)).reshape(k * n, E, 2)
        score = _mix(W[..., 0], W[..., 1], self.pi[j])
        optimistic = self.selection == "optimistic"
        e = (np.argmax if optimistic else np.argmin)(np.where(valid, score, -np.inf if optimistic else np.inf), axis=1)
        rows = np.arange(k * n)
        W, g = W[rows, e], policies[rows, e]
        W[~valid.any(axis=1)] = -np.inf
        Q = m.transition(zs, bs)
        q = self.bases[j]._q(zs, bs, Vf_next[j], population_update(zs, g, Q), Q)
        v = np.einsum("kxa,kxa->kx", g, q)
        S, A = len(m.states), len(m.actions)
        return W.reshape(k, n, 2), v.reshape(k, n, S), g.reshape(k, n, S, A)

    def stage(self, z, nodes, Vf_next, Vl_next):
        """The leader's prescription and the values at the rows z for the belief nodes
        `nodes` (a list of indices): a TypedStage over those nodes."""
        J, k = len(self.pi) - 1, len(z)
        cache = {}

        def at(j):
            if j not in cache:
                cache[j] = self.answers(z, j, Vf_next, Vl_next)
            return cache[j]
        W0, v0, g0 = at(0)
        W1, v1, g1 = at(J)
        sep0, sep1 = _lowest_best(W0[:, :, 0]), _lowest_best(W1[:, :, 1])
        out = {key: [] for key in FIELDS}
        rows = np.arange(k)
        for j in nodes:
            p = self.pi[j]
            W, v, g = at(j)
            pool_value = _mix(W[..., 0], W[..., 1], p)
            b_pool = _lowest_best(pool_value)
            pool = pool_value[rows, b_pool]
            b0, b1, separate = _best_pair(W0[:, :, 0], W1[:, :, 1], p, sep0, sep1)
            pooling = pool >= separate - TIE_RTOL * (1 + np.abs(separate)) if 0 < p < 1 else np.ones(k, bool)
            if not np.all(np.isfinite(np.where(pooling, pool, separate))):
                bad = z[np.argmin(np.isfinite(np.where(pooling, pool, separate)))]
                raise SolverError(f"no follower equilibrium for any prescription at pi = {p:.6g}, "
                                  f"z = {np.round(bad, 6).tolist()}")
            a0, a1 = np.where(pooling, b_pool, b0), np.where(pooling, b_pool, b1)
            Vl = np.stack([np.where(pooling, W[rows, b_pool, 0], W0[rows, b0, 0]),
                           np.where(pooling, W[rows, b_pool, 1], W1[rows, b1, 1])], axis=1)
            vp, va, vb = v[rows, b_pool], v0[rows, b0], v1[rows, b1]
            Vf = np.where(pooling[:, None], vp, (1 - p) * va + p * vb)
            policy = np.stack([np.where(pooling[:, None, None], g[rows, b_pool], g0[rows, b0]),
                               np.where(pooling[:, None, None], g[rows, b_pool], g1[rows, b1])], axis=1)
            mimicry = np.stack([W1[rows, b1, 0] - W0[rows, b0, 0], W0[rows, b0, 1] - W1[rows, b1, 1]], axis=1)
            mimicry = np.where(pooling[:, None], 0.0, mimicry)
            for key, value in (("leader", self.candidates[np.stack([a0, a1], axis=1)]), ("pooling", pooling),
                               ("policy", policy), ("Vf", Vf), ("Vl", Vl), ("mimicry", mimicry)):
                out[key].append(value)
        return TypedStage(*(np.array(out[key]) for key in FIELDS))

    def level(self, Vf_next, Vl_next):
        """One level at every belief node and grid point: each rank its own points, gathered."""
        g = self.grid
        st = self.stage(g.points[g.owned], range(len(self.pi)), Vf_next, Vl_next)
        gathered = []
        for name in FIELDS:
            value = np.moveaxis(getattr(st, name), 1, 0).astype(float)  # points first
            gathered.append(np.moveaxis(g.allgather(value), 0, 1))
        gathered[1] = gathered[1] > 0.5
        return TypedStage(*gathered)

    def finite(self, T, done=(), on_level=None):
        """Levels t = 1..T (first = t = 1) from zero values after T; `done` (a checkpoint's
        levels, t = T first), on_level(k, levels) and a stop request as MasterSolver.finite."""
        J1, P, S = len(self.pi), self.grid.size, len(self.model.states)
        return backward(self.level, (np.zeros((J1, P, S)), np.zeros((J1, P, 2))), T, self.grid.comm, done, on_level)

    def forward(self, z1, prior, levels):
        """The equilibrium path of each true type from (prior, z1): per type θ a dict of z
        (T+1, S), belief π (T+1,), the action b (T,), pooling (T,), the followers'
        prescription (T, S, A), the mimicry gain of the type (T,), the leader's weighted value
        (1 − π_t) W_θ0 + π_t W_θ1 at (π_t, z_t) (T,); the stage re-solved at every (off-grid) z_t."""
        J, T = len(self.pi) - 1, len(levels)
        start = int(np.flatnonzero(np.isclose(self.pi, prior, rtol=0, atol=1e-15))[0])
        zero = (np.zeros_like(levels[0].Vf), np.zeros_like(levels[0].Vl))
        paths = []
        for theta in (0, 1):
            z, j = np.atleast_2d(np.asarray(z1, float)), start
            path = {"z": [z[0]], "belief": [self.pi[j]], "leader": [], "pooling": [], "policy": [], "mimicry": [],
                    "value": []}
            for t in range(T):
                poll(self.grid.comm)
                nxt = (levels[t + 1].Vf, levels[t + 1].Vl) if t + 1 < T else zero
                st = self.stage(z, [j], *nxt)
                b, pooled, g = st.leader[0, 0, theta], bool(st.pooling[0, 0]), st.policy[0, 0, theta]
                path["value"].append((1 - self.pi[j]) * st.Vl[0, 0, 0] + self.pi[j] * st.Vl[0, 0, 1])
                j = j if pooled else (0 if theta == 0 else J)
                z = population_update(z, g[None], self.model.transition(z, np.array([b])))
                for key, value in (("leader", b), ("pooling", pooled), ("policy", g), ("z", z[0]),
                                   ("belief", self.pi[j]), ("mimicry", st.mimicry[0, 0, theta])):
                    path[key].append(value)
            paths.append({key: np.array(value) for key, value in path.items()})
        return paths


def _lowest_best(W):
    """Per row of W (k, n), the lowest index within TIE_RTOL of the row's best."""
    best = W.max(axis=1, keepdims=True)
    return np.argmax(W >= best - TIE_RTOL * (1 + np.abs(best)), axis=1)


def _mix(a, b, p):
    """(1 − p) a + p b, exactly a at p = 0 and b at p = 1 (where the other may be −inf)."""
    return a if p == 0 else b if p == 1 else (1 - p) * a + p * b


def _best_pair(W0, W1, p, b0, b1):
    """The best separating pair b0 ≠ b1 of (1 − p) W0[b0] + p W1[b1] (rows k, candidates
    n), from each type's lowest best action b0, b1: where those coincide, the better of
    moving θ0's or θ1's action to its next best (θ0's on a tie).  (b0, b1, value)."""
    rows = np.arange(len(W0))
    value = _mix(W0[rows, b0], W1[rows, b1], p)
    same = b0 == b1
    if same.any():
        rest0, rest1 = W0.copy(), W1.copy()
        rest0[rows, b0], rest1[rows, b1] = -np.inf, -np.inf
        c0, c1 = _lowest_best(rest0), _lowest_best(rest1)
        move0, move1 = _mix(rest0[rows, c0], W1[rows, b1], p), _mix(W0[rows, b0], rest1[rows, c1], p)
        first = move0 >= move1 - TIE_RTOL * (1 + np.abs(move1))
        b0, b1 = np.where(same & first, c0, b0), np.where(same & ~first, c1, b1)
        value = np.where(same, np.maximum(move0, move1), value)
    return b0, b1, value


def prescription_gain(model, grid, selection, candidates, pi, j, z, Vf_next, Vl_next, chosen):
    """The most the leader's weighted value at belief node j and rows z gains over its
    `chosen` value (k,) by any pure prescription (every pair of candidates), the followers'
    answers from commitment.Answers, its own enumeration (no PrivateTypeSolver routine)."""
    p, J, k, n = pi[j], len(pi) - 1, len(z), len(candidates)
    zs, bs = np.repeat(z, n, axis=0), np.tile(candidates, k)

    def value(w, node):
        answer = Answers(KnownType(model, w), grid, selection)
        return answer(zs, bs, Vf_next[node], Vl_next[node] @ np.asarray(w, float))[1].reshape(k, n)
    pool = value((1 - p, p), j)
    W0, W1 = value((1.0, 0.0), 0), value((0.0, 1.0), J)
    with np.errstate(invalid="ignore"):  # 0 · (−inf) where a type has probability 0
        pairs = np.nan_to_num((1 - p) * W0[:, :, None] + p * W1[:, None, :], nan=-np.inf)  # (k, b0, b1)
    diagonal = np.arange(n)
    pairs[:, diagonal, diagonal] = pool
    return pairs.reshape(k, -1).max(axis=1) - chosen


def follower_exploitability(model, paths, prior):
    """The most a single follower gains by deviating from the prescriptions, by its own
    dynamic programme over the two types' paths (a follower who has seen the actions
    b_1..b_t weighs the types that play them by the prior, and expects its rewards under that
    belief): max over t, θ and x of (optimal value − value of following), zero values after
    the last step."""
    T, w = len(paths[0]["leader"]), np.array([1.0 - prior, prior])
    S = len(model.states)
    W_opt, W_pol = np.zeros((2, S)), np.zeros((2, S))
    gain = 0.0
    for t in range(T - 1, -1, -1):
        if t + 1 < T:  # the value before b_{t+1}: the types whose actions so far are these
            same = np.all([paths[0]["leader"][:t + 1] == paths[1]["leader"][:t + 1]])
            if same and 0 < prior < 1:
                W_opt[:], W_pol[:] = w @ W_opt, w @ W_pol
        new_opt, new_pol = np.empty_like(W_opt), np.empty_like(W_pol)
        for theta, path in enumerate(paths):
            z, b = path["z"][t:t + 1], np.array([path["leader"][t]])
            belief = np.array([1.0 - path["belief"][t + 1], path["belief"][t + 1]])  # after seeing b_t
            Q, R = model.transition(z, b)[0], KnownType(model, belief).follower_reward(z, b)[0]
            new_opt[theta] = np.max(R + model.delta * Q @ W_opt[theta], axis=1)
            new_pol[theta] = np.sum(path["policy"][t] * (R + model.delta * Q @ W_pol[theta]), axis=1)
            gain = max(gain, float(np.max(new_opt[theta] - new_pol[theta])))
        W_opt, W_pol = new_opt, new_pol
    return gain
