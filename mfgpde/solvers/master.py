"""The Stackelberg master equation of a discrete-time mean field game (Vasal & Berry
2022, Section V), backward over a grid of the simplex of population states:

    q(x, a; z, b, γ) = R^f(z, x, a, b) + δ Σ_x' Q(x' | z, x, a, b) V^f_{t+1}(z', x'),
    z' = φ(z, b, γ),   γ ∈ E(z, b)  ⇔  γ(a|x) > 0 only where q(x, a) = max_a' q(x, a'),
    b* = argmax_b  R^l(z, b, γ_b) + δ V^l_{t+1}(z'(γ_b)),   γ_b ∈ E(z, b) selected,
    V^f_t(z, x) = max_a q(x, a; z, b*, γ*),   V^l_t(z) = R^l + δ V^l_{t+1}(z').

The leader is scored with the followers' response to each candidate b (the paper's (30)
prints the equilibrium response there, which would make it a Nash best response).  E(z, b)
is enumerated: every pure prescription, every prescription where one state mixes
between two actions (its indifference solved for the mixing probability), and on three
follower states those where two indifferences hold at once (mixing.py: one state mixing
three actions, or two states mixing).  Where E has
several members the leader is optimistic (best for it) or pessimistic (worst; Guo, Hu & Zhang 2022).
The ε-pessimistic leader guards against the worst ε-equilibrium: a prescription from which
no state's follower gains more than ε by deviating for one step (the continuation values
fixed); ε = 0 is the pessimistic leader.  The ε-equilibria of a mixed family form intervals
of its mixing probability, enumerated by their ends, the sample points inside them and the
exact roots (the two-indifference families contribute their exact equilibria only).
Ties in the leader's choice: every action within TIE_RTOL of the best value is optimal; the
ends of that set are reported (on an interval narrowed to the candidate spacing / 11^4) and
the leader plays its lowest point, which does not move when the candidates are refined.
Values between grid points are interpolated linearly; rows of z are independent, so the
grid's points are split over MPI ranks and the result does not depend on their number.
"""
import dataclasses
import itertools
from dataclasses import dataclass

import numpy as np

from ..models.discrete import population_update
from ..stop import StopRequested, poll
from . import mixing
from .problem import SolverError

SELECTIONS = ("optimistic", "pessimistic")
TIE_RTOL = 1e-12   # leader actions this close to the best value (relative) are all optimal
END_ROUNDS = 4     # rounds that narrow each end of the leader's optimal set


def _above(value, rtol):
    """value raised by a relative margin (−inf stays −inf): what a rival must beat."""
    finite = np.where(np.isfinite(value), value, 0.0)
    return np.where(np.isfinite(value), finite + rtol * (1 + np.abs(finite)), value)


def _roots(fun, p, d, width=1e-13, iterations=100):
    """Roots of fun (rows k, points n → (k, n)) from its values d at the sample points p
    (k, samples): every sign change is narrowed by the Illinois method (regula falsi with
    the kept end's value halved) until the bracket or the step is below `width`, all
    brackets of all rows at once, each stopping on its own so that a row's roots do not
    depend on the rows beside it; exact where fun is affine.  (roots (k, R), found (k, R)),
    R the most sign changes of any row."""
    change = (np.sign(d[:, :-1]) * np.sign(d[:, 1:]) < 0) | (d[:, :-1] == 0)  # a zero at a sample: a root
    R = max(1, int(change.sum(axis=1).max()))
    order = np.argsort(~change, axis=1, kind="stable")[:, :R]
    has = np.take_along_axis(change, order, axis=1)
    lo, hi = np.take_along_axis(p[:, :-1], order, axis=1), np.take_along_axis(p[:, 1:], order, axis=1)
    flo, fhi = np.take_along_axis(d[:, :-1], order, axis=1), np.take_along_axis(d[:, 1:], order, axis=1)
    root = np.where(flo == 0, lo, hi)
    active = has & (flo != 0) & (fhi != 0)
    for _ in range(iterations):
        if not active.any():
            break
        c = np.where(active, hi - fhi * (hi - lo) / np.where(active, fhi - flo, 1.0), root)
        at_end = (c <= np.minimum(lo, hi)) | (c >= np.maximum(lo, hi))  # that end is a root to round-off
        root = np.where(active & at_end, np.where(np.abs(flo) < np.abs(fhi), lo, hi), root)
        active &= ~at_end
        c = np.where(active, c, root)
        fc = fun(c)
        across = np.sign(fc) != np.sign(fhi)  # the root lies between hi and c
        flo = np.where(active, np.where(across, fhi, 0.5 * flo), flo)
        lo = np.where(active & across, hi, lo)
        moved = np.abs(c - root)
        hi, fhi, root = np.where(active, c, hi), np.where(active, fc, fhi), np.where(active, c, root)
        active &= (fc != 0) & (np.abs(hi - lo) > width) & (moved > width)
    return root, has


@dataclass
class Stage:
    """One time level at the rows z: the leader's action, the followers' prescription,
    the next state, the values, how many follower equilibria the chosen b has, and the
    ends of the leader's optimal set (the lowest and highest optimal actions)."""
    leader: np.ndarray
    policy: np.ndarray
    z_next: np.ndarray
    Vf: np.ndarray
    Vl: np.ndarray
    equilibria: np.ndarray
    low: np.ndarray
    high: np.ndarray


class MasterSolver:
    def __init__(self, model, grid, selection="optimistic", leader_points=41, tol=1e-10, epsilon=0.0):
        if selection not in SELECTIONS:
            raise ValueError(f"solver.leader: one of {', '.join(SELECTIONS)}, got {selection!r}")
        if not epsilon >= 0 or (epsilon > 0 and selection != "pessimistic"):
            raise ValueError(f"solver.epsilon: a number >= 0, above 0 only for the pessimistic leader, got {epsilon!r}")
        self.model, self.grid, self.selection, self.tol, self.epsilon = model, grid, selection, tol, epsilon
        actions = model.leader_actions()
        self.interval = isinstance(actions, tuple)
        self.candidates = np.linspace(*actions, leader_points) if self.interval else np.asarray(actions, float)
        S, A = len(model.states), len(model.actions)
        self.pure = np.array(list(itertools.product(range(A), repeat=S)))
        self.mixed = [(x, a1, a2, rest) for x in range(S) for a1, a2 in itertools.combinations(range(A), 2)
                      for rest in itertools.product(range(A), repeat=S - 1)]
        self.mixed2 = mixing.families(S, A)  # two indifferences at once (three states)

    # -- the followers ------------------------------------------------------------------
    def _q(self, z, b, Vf_next, z_next, Q):
        """q[k, x, a] at the next states z_next (k, S), Q = transition(z, b)."""
        m = self.model
        V = self.grid.interpolate(Vf_next, z_next)
        return m.follower_reward(z, b) + m.delta * np.einsum("kxay,ky->kxa", Q, V)

    def _policy(self, k, choice):
        """Pure prescriptions (k, S, A) from one action index per state."""
        S, A = len(self.model.states), len(self.model.actions)
        g = np.zeros((k, S, A))
        g[:, np.arange(S), choice] = 1.0
        return g

    @staticmethod
    def _gain(g, q):
        """Each state's best one-step deviation gain (..., S) under the prescriptions g (..., S, A)."""
        return q.max(axis=-1) - np.einsum("...xa,...xa->...x", g, q)

    def _within(self, g, q):
        """Whether the prescriptions g are ε-equilibria of q: no state's follower gains more
        than ε (plus round-off) by another action this step."""
        return np.all(self._gain(g, q) <= self.epsilon + self.tol * (1 + np.abs(q).max(axis=-1)), axis=-1)

    def equilibria(self, z, b, Vf_next):
        """All follower equilibria found at the rows z for leader action b:
        policies (k, E, S, A), valid (k, E).  With ε > 0: the pure ε-equilibria, the exact
        mixed ones, and each mixed family's ε-equilibria at its sample points and at the
        ends of its ε-intervals."""
        k, Q = len(z), self.model.transition(z, b)
        policies, valid = [], []
        for choice in self.pure:
            g = self._policy(k, choice)
            q = self._q(z, b, Vf_next, population_update(z, g, Q), Q)
            policies.append(g)
            valid.append(self._within(g, q))
        for x, a1, a2, rest in self.mixed:
            for g, ok in self._mixed(z, b, Vf_next, Q, x, a1, a2, rest):
                policies.append(g)
                valid.append(ok)
        for g, ok in mixing.equilibria(self, z, b, Vf_next, Q, self.mixed2):
            policies.append(g)
            valid.append(ok)
        return np.stack(policies, axis=1), np.stack(valid, axis=1)

    def _mixed(self, z, b, Vf_next, Q, x, a1, a2, rest, samples=41):
        """State x mixes a1 (prob. 1 − p) and a2 (prob. p), the others play `rest`: the
        roots p ∈ (0, 1) of q(x, a2) − q(x, a1) at z'(p), every one alone in its interval
        of the `samples`-point grid (two roots closer than 1/(samples − 1) can share one
        and cancel).  With ε > 0 also the sample points and the ends of the intervals of p
        where the prescription is an ε-equilibrium.  [(policies (k, S, A), valid (k,))]"""
        k = len(z)
        choice = list(rest[:x]) + [a1] + list(rest[x:])
        g0 = self._policy(k, choice)
        g1 = g0.copy()
        g1[:, x, a1], g1[:, x, a2] = 0.0, 1.0
        z0, z1 = population_update(z, g0, Q), population_update(z, g1, Q)
        b = np.broadcast_to(b, (k,))

        def q_at(p):  # p: (k, n) → q (k, n, S, A)
            n = p.shape[1]
            zn = (z0[:, None] + p[..., None] * (z1 - z0)[:, None]).reshape(k * n, -1)
            q = self._q(np.repeat(z, n, axis=0), np.repeat(b, n), Vf_next, zn, np.repeat(Q, n, axis=0))
            return q.reshape(k, n, *q.shape[1:])

        def policy(p):  # p: (k, n) → (k, n, S, A)
            return g0[:, None] + p[..., None, None] * (g1 - g0)[:, None]

        def gap(p):
            q = q_at(p)
            return q[:, :, x, a2] - q[:, :, x, a1]

        def slack(p, q=None):  # ≥ 0 where the prescription is an ε-equilibrium
            return self.epsilon - np.max(self._gain(policy(p), q_at(p) if q is None else q), axis=2)
        p = np.broadcast_to(np.linspace(0.0, 1.0, samples), (k, samples))
        q_samples = q_at(p)
        root, has = _roots(gap, p, q_samples[:, :, x, a2] - q_samples[:, :, x, a1])
        g, q = policy(root), q_at(root)
        scale = self.tol * 1e3 * (1 + np.abs(q).max(axis=3))
        support = (g > 0) & (q < (q.max(axis=3) - scale)[..., None])
        ok = has & (root > 0) & (root < 1) & ~support.any(axis=(2, 3))  # the ends are pure prescriptions
        out = [(g[:, r], ok[:, r]) for r in range(root.shape[1])]
        if self.epsilon > 0:
            g = policy(p[:, 1:-1])
            out += [(g[:, j], self._within(g[:, j], q_samples[:, j + 1])) for j in range(samples - 2)]
            ends, has = _roots(slack, p, slack(p, q_samples))
            g = policy(ends)
            ok = has & (ends > 0) & (ends < 1) & self._within(g, q_at(ends))
            out += [(g[:, r], ok[:, r]) for r in range(ends.shape[1])]
        return out

    # -- one time level -----------------------------------------------------------------
    def leader_value(self, z, b, Vf_next, Vl_next):
        """The leader's value W (k,) of action b at the rows z with the selected follower
        equilibrium (−inf where none was found), that equilibrium's policy, and the count."""
        m = self.model
        policies, valid = self.equilibria(z, b, Vf_next)
        k, E = valid.shape
        zs = np.repeat(z, E, axis=0)
        flat = policies.reshape(k * E, *policies.shape[2:])
        z_next = population_update(zs, flat, m.transition(zs, np.repeat(np.broadcast_to(b, (k,)), E)))
        W = (m.leader_reward(zs, np.repeat(np.broadcast_to(b, (k,)), E), flat)
             + m.delta * self.grid.interpolate(Vl_next, z_next)).reshape(k, E)
        pick = np.where(valid, W, -np.inf if self.selection == "optimistic" else np.inf)
        e = np.argmax(pick, axis=1) if self.selection == "optimistic" else np.argmin(pick, axis=1)
        rows = np.arange(k)
        W = np.where(valid.any(axis=1), W[rows, e], -np.inf)
        return W, policies[rows, e], valid.sum(axis=1)

    def stage(self, z, Vf_next, Vl_next):
        """The master equation's step at the rows z, given the next level's values on the grid.
        The leader's optimal set is every action within TIE_RTOL of the best value; the
        leader plays its lowest point, so that the choice does not depend on the grid of
        candidates (module docstring)."""
        k = len(z)
        grid = np.broadcast_to(self.candidates, (k, len(self.candidates)))
        action, best, W = self._best(z, grid, Vf_next, Vl_next)
        if self.interval:  # zoom in twice around each row's best candidate
            lower, upper = self.candidates[0], self.candidates[-1]
            step = self.candidates[1] - self.candidates[0]
            for _ in range(2):
                trial = np.clip(action[:, None] + step * np.linspace(-1.0, 1.0, 11), lower, upper)
                action, best = self._best(z, trial, Vf_next, Vl_next, action, best)[:2]
                step /= 5.0
        if not np.all(np.isfinite(best)):
            bad = z[np.argmin(np.isfinite(best))]
            raise SolverError(f"no follower equilibrium for any leader action at z = {np.round(bad, 6).tolist()}")
        low, high = self._optimal_set(z, grid, W, action, best, Vf_next, Vl_next)
        action = low
        W, policy, count = self.leader_value(z, action, Vf_next, Vl_next)
        Q = self.model.transition(z, action)
        z_next = population_update(z, policy, Q)
        q = self._q(z, action, Vf_next, z_next, Q)
        return Stage(action, policy, z_next, np.einsum("kxa,kxa->kx", policy, q), W, count, low, high)

    def _best(self, z, trial, Vf_next, Vl_next, action=None, best=None):
        """Each row's best leader action among its trial actions (k, n) (all evaluated at
        once) and the incumbent, which a rival must beat by a relative 1e-14; and the
        trials' values (k, n)."""
        k, n = trial.shape
        W = self.leader_value(np.repeat(z, n, axis=0), trial.ravel(), Vf_next, Vl_next)[0].reshape(k, n)
        if action is None:
            action, best = np.full(k, np.nan), np.full(k, -np.inf)
        for j in range(n):  # in order, so that ties go to the first (lowest) action
            better = W[:, j] > _above(best, 1e-14)
            best, action = np.where(better, W[:, j], best), np.where(better, trial[:, j], action)
        return action, best, W

    def _optimal_set(self, z, grid, W, action, best, Vf_next, Vl_next):
        """(low, high): the lowest and highest actions whose value is within TIE_RTOL of
        `best`, among the candidates and `action`; on an interval each end is narrowed
        between the last candidate outside the set and the first inside, by END_ROUNDS
        rounds of 10 points, to (candidate spacing) / 11^END_ROUNDS."""
        optimal = W >= best[:, None] - TIE_RTOL * (1 + np.abs(best[:, None]))
        inside = np.where(optimal, grid, np.nan)
        low, high = np.fmin(np.nanmin(inside, axis=1, initial=np.inf), action), \
            np.fmax(np.nanmax(inside, axis=1, initial=-np.inf), action)
        if not self.interval:
            return low, high
        for end, sign in ((low, -1.0), (high, 1.0)):
            outside = np.where(sign * (grid - end[:, None]) > 0, grid, np.nan)  # candidates beyond the end
            nearest = (np.nanmin(outside, axis=1, initial=np.inf) if sign > 0
                       else np.nanmax(outside, axis=1, initial=-np.inf))
            rows = np.flatnonzero(np.isfinite(nearest))
            a, b = nearest[rows], end[rows].copy()  # a outside the set, b inside
            for _ in range(END_ROUNDS):
                if not len(rows):
                    break
                trial = a[:, None] + (b - a)[:, None] * np.linspace(0.0, 1.0, 12)[1:-1]
                Wt = self.leader_value(np.repeat(z[rows], 10, axis=0), trial.ravel(), Vf_next, Vl_next)[0]
                Wt = Wt.reshape(-1, 10)
                member = Wt >= (best[rows] - TIE_RTOL * (1 + np.abs(best[rows])))[:, None]
                member = np.concatenate([member, np.ones((len(rows), 1), bool)], axis=1)
                j = np.argmax(member, axis=1)  # the first point inside, from the outside
                points = np.concatenate([a[:, None], trial, b[:, None]], axis=1)
                a, b = points[np.arange(len(rows)), j], points[np.arange(len(rows)), j + 1]
            end[rows] = b
        return low, high

    # -- the recursion ------------------------------------------------------------------
    def level(self, Vf_next, Vl_next):
        """One level on the whole grid: each rank its own points, then gathered."""
        g = self.grid
        st = self.stage(g.points[g.owned], Vf_next, Vl_next)
        return Stage(*(g.allgather(getattr(st, f.name)) for f in dataclasses.fields(Stage)))

    def _zero(self):
        return np.zeros((self.grid.size, len(self.model.states))), np.zeros(self.grid.size)

    def finite(self, T, done=(), on_level=None):
        """Levels t = 1..T (list, first = t = 1) from V_{T+1} = 0.  `done`: levels already
        computed (a checkpoint's), in the order of computation (t = T first);
        on_level(k, levels) after each, k levels computed.  A stop request (polled before
        every level, collectively) leaves with state (k, levels) of the completed ones."""
        return backward(self.level, self._zero(), T, self.grid.comm, done, on_level)

    def stationary(self, tol=1e-9, max_iterations=2000, start=None, on_iteration=None):
        """Iterate the master map from V = 0 (or from `start` = (stage, history), a
        checkpoint's iterate) to a fixed point; (stage, history of sup-changes, converged).
        on_iteration(k, stage, history) after each; a stop request (polled before every
        iteration) leaves with that state of the last completed one."""
        st, history = start if start is not None else (None, [])
        history = list(history)
        Vf, Vl = (st.Vf, st.Vl) if st is not None else self._zero()
        try:
            while not (history and history[-1] < tol) and len(history) < max_iterations:
                poll(self.grid.comm)
                st = self.level(Vf, Vl)
                change = max(np.max(np.abs(st.Vf - Vf)), np.max(np.abs(st.Vl - Vl)))
                history.append(change)
                Vf, Vl = st.Vf, st.Vl
                if on_iteration is not None:
                    on_iteration(len(history), st, np.array(history))
        except StopRequested as stop:
            if history:
                stop.state = (len(history), st, np.array(history))
            raise
        return st, np.array(history), bool(history) and history[-1] < tol

    def forward(self, z1, values, steps):
        """The equilibrium path from z1: the stage re-solved at every (off-grid) z_t with the
        next level's values; values(t) → (Vf, Vl) of level t + 1 (t from 0)."""
        z = np.atleast_2d(np.asarray(z1, float))
        path = {"z": [z[0]], "leader": [], "policy": [], "low": [], "high": []}
        for t in range(steps):
            poll(self.grid.comm)
            st = self.stage(z, *values(t))
            for key in ("leader", "policy", "low", "high"):
                path[key].append(getattr(st, key)[0])
            z = st.z_next
            path["z"].append(z[0])
        return {k: np.array(v) for k, v in path.items()}


def backward(level, zero, T, comm, done=(), on_level=None):
    """Levels t = 1..T (list, first = t = 1) by level(Vf, Vl) → a stage with Vf, Vl, from
    `zero` = (Vf, Vl) after T; `done`, on_level and a stop request as MasterSolver.finite."""
    levels = list(done)
    Vf, Vl = (levels[-1].Vf, levels[-1].Vl) if levels else zero
    try:
        while len(levels) < T:
            poll(comm)
            st = level(Vf, Vl)
            levels.append(st)
            Vf, Vl = st.Vf, st.Vl
            if on_level is not None:
                on_level(len(levels), levels)
    except StopRequested as stop:
        if levels:
            stop.state = (len(levels), list(levels))
        raise
    return levels[::-1]


def follower_exploitability(model, path, terminal):
    """The most a single follower gains by deviating from the prescriptions along the path,
    by its own dynamic programme on the realised (z_t, b_t) (nothing of the master values
    but the terminal value `terminal` (S,) after the last step): max over t and x of
    (optimal value − value of following)."""
    W_opt, W_pol = np.array(terminal, float), np.array(terminal, float)
    gain = 0.0
    for t in range(len(path["leader"]) - 1, -1, -1):
        z, b = path["z"][t:t + 1], np.array([path["leader"][t]])
        Q, R = model.transition(z, b)[0], model.follower_reward(z, b)[0]
        W_opt = np.max(R + model.delta * Q @ W_opt, axis=1)
        W_pol = np.sum(path["policy"][t] * (R + model.delta * Q @ W_pol), axis=1)
        gain = max(gain, float(np.max(W_opt - W_pol)))
    return gain


def leader_gain(solver, path, values, alternatives=401):
    """The most the leader gains along the path by another action at one step (the
    followers answering it with their selected equilibrium, the values after it unchanged),
    over a grid of `alternatives` actions (all of them for a finite set)."""
    b = (np.linspace(solver.candidates[0], solver.candidates[-1], alternatives) if solver.interval
         else solver.candidates)
    gain = 0.0
    for t, bt in enumerate(path["leader"]):
        poll(solver.grid.comm)
        z = np.repeat(path["z"][t:t + 1], len(b) + 1, axis=0)
        W = solver.leader_value(z, np.append(b, bt), *values(t))[0]
        gain = max(gain, float(np.max(W[:-1]) - W[-1]))
    return gain
