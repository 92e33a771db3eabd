"""The leader's k-step commitment gain along an equilibrium path of the master equation,
computed with its own enumeration of the followers' equilibria (no MasterSolver routine):

    G_t(k) = max over b_t..b_{t+k-1} in B of W_t(z_t; b_t..b_{t+k-1})  −  W_t(z_t; b*_t),

W the leader's value when it commits to the actions for k steps, after which the
equilibrium resumes (the master values of level t+k).  The followers know the commitment:
at committed step j they answer b_j with an equilibrium of their game whose continuation
is the committed value of step j+1, computed backward on the whole simplex grid, so that
the states off the path are answered too.  Among several equilibria the leader's selection
(optimistic: the best for it; pessimistic: the worst) applies, as in the solver.  The
reference W_t(z_t; b*_t) is the path's own action answered the same way.

k = 1 checks the solver's leader at each step (≤ 0 up to the candidate grid B).  For k ≥ 2,
G is what commitment is worth against the Markov (time-consistent) leader of the master
equation, which cannot promise its future actions: a diagnostic, not an error.

The followers' equilibria found here: every pure prescription, and one state mixing two
actions (the others pure), the mixing probability a root of that state's indifference,
bracketed by sign changes on SAMPLES points and bisected to 1e-13.  Only exact equilibria
(ε = 0).
"""
import itertools

import numpy as np

from ..models.discrete import population_update

SAMPLES = 101


class Answers:
    """The followers' selected equilibrium at a batch of rows."""

    def __init__(self, model, grid, selection, tol=1e-10):
        self.model, self.grid, self.tol = model, grid, tol
        self.pick = np.argmax if selection == "optimistic" else np.argmin
        self.worst = -np.inf if selection == "optimistic" else np.inf
        S, A = len(model.states), len(model.actions)
        self.pure = list(itertools.product(range(A), repeat=S))
        self.families = [(x, a1, a2, rest) for x in range(S) for a1, a2 in itertools.combinations(range(A), 2)
                         for rest in itertools.product(range(A), repeat=S - 1)]

    def _q(self, z, b, g, Q, Vf_next):
        """q[k, x, a] of prescriptions g (k, S, A), and the next states."""
        zn = population_update(z, g, Q)
        V = self.grid.interpolate(Vf_next, zn)
        return self.model.follower_reward(z, b) + self.model.delta * np.einsum("kxay,ky->kxa", Q, V), zn

    def _best(self, q):
        """Whether each action is a best reply (k, S, A), to the tolerance."""
        top = q.max(axis=-1, keepdims=True)
        return q >= top - self.tol * (1 + np.abs(top))

    def _onehot(self, k, choice):
        g = np.zeros((k, len(self.model.states), len(self.model.actions)))
        g[:, np.arange(len(choice)), list(choice)] = 1.0
        return g

    def __call__(self, z, b, Vf_next, Vl_next):
        """Rows z (k, S), actions b (k,): the followers' values (k, S) and the leader's (k,)
        under the selected equilibrium; the leader's is ∓inf where none is found."""
        m, k = self.model, len(z)
        Q = m.transition(z, b)
        found = []  # (g, q, z_next, valid)
        for choice in self.pure:
            g = self._onehot(k, choice)
            q, zn = self._q(z, b, g, Q, Vf_next)
            chosen = np.take_along_axis(self._best(q), np.array(choice)[None, :, None], 2)
            found.append((g, q, zn, np.all(chosen, axis=(1, 2))))
        for x, a1, a2, rest in self.families:
            found += self._mixed(z, b, Q, Vf_next, x, a1, a2, rest)
        g, q, zn, valid = (np.stack(v, axis=1) for v in zip(*found))  # (k, E, ...)
        E = g.shape[1]
        flat = lambda a: a.reshape((k * E,) + a.shape[2:])  # noqa: E731
        zs, bs = np.repeat(z, E, axis=0), np.repeat(b, E)
        W = (m.leader_reward(zs, bs, flat(g)) + m.delta * self.grid.interpolate(Vl_next, flat(zn))).reshape(k, E)
        e = self.pick(np.where(valid, W, self.worst), axis=1)
        rows = np.arange(k)
        Vf = np.einsum("kxa,kxa->kx", g[rows, e], q[rows, e])
        return Vf, np.where(valid.any(axis=1), W[rows, e], -np.inf)

    def _mixed(self, z, b, Q, Vf_next, x, a1, a2, rest):
        """State x plays a2 with probability p and a1 otherwise, the others `rest`."""
        k = len(z)
        choice = list(rest[:x]) + [a1] + list(rest[x:])
        g0 = self._onehot(k, choice)
        g1 = g0.copy()
        g1[:, x, a1], g1[:, x, a2] = 0.0, 1.0

        def gap(p):  # p (k, n) -> q(x, a2) − q(x, a1) (k, n)
            n = p.shape[1]
            g = (g0[:, None] + p[..., None, None] * (g1 - g0)[:, None]).reshape(k * n, *g0.shape[1:])
            q, _ = self._q(np.repeat(z, n, 0), np.repeat(b, n), g, np.repeat(Q, n, 0), Vf_next)
            return (q[:, x, a2] - q[:, x, a1]).reshape(k, n)
        p = np.broadcast_to(np.linspace(0.0, 1.0, SAMPLES), (k, SAMPLES))
        d = gap(p)
        change = (np.sign(d[:, :-1]) * np.sign(d[:, 1:]) < 0) | (d[:, :-1] == 0)  # a zero at a sample: a root
        R = max(1, int(change.sum(axis=1).max()))
        order = np.argsort(~change, axis=1, kind="stable")[:, :R]  # each row's brackets, all bisected at once
        has = np.take_along_axis(change, order, axis=1)
        lo, hi = np.take_along_axis(p[:, :-1], order, axis=1), np.take_along_axis(p[:, 1:], order, axis=1)
        dlo = np.take_along_axis(d[:, :-1], order, axis=1)
        for _ in range(int(np.ceil(np.log2(1.0 / (SAMPLES - 1) / 1e-13)))):
            mid = 0.5 * (lo + hi)
            dm = gap(mid)
            left = (np.sign(dm) == np.sign(dlo)) & (dlo != 0)
            lo, dlo, hi = np.where(left, mid, lo), np.where(left, dm, dlo), np.where(left, hi, mid)
        roots = np.where(dlo == 0, lo, 0.5 * (lo + hi))
        others = [s for s in range(len(choice)) if s != x]
        out = []
        for r in range(R):
            root = roots[:, r]
            g = g0 + root[:, None, None] * (g1 - g0)
            q, zn = self._q(z, b, g, Q, Vf_next)
            best = self._best(q)
            # a root (not a jump), inside (0, 1): a1 and a2 best at x, every other state's action best
            ok = has[:, r] & (root > 0) & (root < 1) & best[:, x, a1] & best[:, x, a2]
            ok &= np.all(np.take_along_axis(best, np.array(choice)[None, :, None], 2)[:, others], axis=(1, 2))
            out.append((g, q, zn, ok))
        return out


def commitment_gain(model, grid, selection, actions, path, values, k, horizon=None):
    """G_t(k) for every t of the path over the candidate actions and the path's own;
    values(t) → (Vf, Vl) of
    level t + 1, as MasterSolver.forward takes them; a finite `horizon` (the number of
    levels) shortens the commitment to the steps left."""
    answer = Answers(model, grid, selection)
    actions = np.union1d(np.asarray(actions, float), path["leader"])  # the path's own actions among them
    n, steps, G = len(actions), len(path["leader"]), grid.size
    gains = np.empty(steps)
    for t in range(steps):
        span = k if horizon is None else min(k, horizon - t)
        Vf, Vl = (np.asarray(v)[None] for v in values(t + span - 1))  # one table per committed suffix
        for _ in range(span - 1):  # committed steps t + span − 1 .. t + 1, on the whole grid
            tables = [answer(np.tile(grid.points, (n, 1)), np.repeat(actions, G), vf, vl) for vf, vl in zip(Vf, Vl)]
            Vf = np.concatenate([f.reshape(n, G, -1) for f, _ in tables])
            # where b finds no follower equilibrium, the leader cannot go: a finite floor, so
            # that interpolating with weight 0 next to it stays finite
            Vl = np.maximum(np.concatenate([w.reshape(n, G) for _, w in tables]), -np.finfo(float).max / 4)
        z = np.repeat(path["z"][t:t + 1], n, axis=0)
        best = max(float(np.max(answer(z, actions, vf, vl)[1])) for vf, vl in zip(Vf, Vl))
        reference = answer(path["z"][t:t + 1], np.array([path["leader"][t]]), *values(t))[1][0]
        gains[t] = best - reference
    return gains
