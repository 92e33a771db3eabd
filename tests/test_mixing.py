"""Follower equilibria with two indifferences at once (solvers/mixing.py) on three states:
every one that an exact enumeration finds, and no other.  The exact enumeration uses that
the interpolated continuation is affine on each triangle of the simplex lattice: on every
triangle it solves the two indifferences for z' exactly, maps z' back to the family's
(p, r), and checks the domain and the best replies from the model's own q."""
import itertools

import numpy as np
import pytest

from mfgpde.grids import SimplexGrid
from mfgpde.models import DiscreteGameModel
from mfgpde.solvers import mixing
from mfgpde.solvers.master import MasterSolver


class Destinations(DiscreteGameModel):
    """Three states, three actions: action a moves to state a; a follower in x playing a
    earns c[x, a] (fixed small numbers).  No leader effect."""
    name = "destinations"
    states, actions = ("s0", "s1", "s2"), ("go0", "go1", "go2")
    parameters = {"delta": 0.9}
    c = 0.05 * np.array([[0.3, -0.5, 0.9], [-0.2, 0.4, 0.1], [0.6, 0.0, -0.7]])

    def leader_actions(self):
        return [0.0]

    def transition(self, z, b):
        Q = np.zeros((len(z), 3, 3, 3))
        Q[:, :, np.arange(3), np.arange(3)] = 1.0
        return Q

    def follower_reward(self, z, b):
        return np.broadcast_to(self.c, (len(z), 3, 3)).copy()

    def leader_reward(self, z, b, policy):
        return np.zeros(len(z))


def _exact(model, grid, V, z, tol=1e-9):
    """The two-indifference equilibria (prescriptions, a list of (S, A)) at the row z, by
    lattice triangles."""
    S, A, n = 3, 3, grid.n
    Q = model.transition(z[None], 0.0)[0]
    step = lambda g: np.einsum("x,xa,xay->y", z, g, Q)  # noqa: E731  z' of a prescription
    q_at = lambda w: model.follower_reward(w, 0.0) + model.delta * np.einsum(  # noqa: E731
        "xay,ky->kxa", Q, grid.interpolate(V, w))
    q_lattice = q_at(grid.points)  # exact at the lattice points, affine on every triangle
    index = {tuple(k): i for i, k in enumerate(grid.lattice)}
    triangles = []
    for i in range(n):
        for j in range(n - i):
            triangles.append([(n - i - j, i, j), (n - i - j - 1, i + 1, j), (n - i - j - 1, i, j + 1)])
            if i + j <= n - 2:
                triangles.append([(n - i - j - 2, i + 1, j + 1), (n - i - j - 1, i + 1, j), (n - i - j - 1, i, j + 1)])
    triangles = np.array([[index[v] for v in tri] for tri in triangles])
    fams = []  # (base profile, x, (a, c), y, (e, f), three actions at x): g = base + p (x: c → a) + r (y: f → e)
    for base in itertools.product(range(A), repeat=S):
        for x in range(S):
            if base[x] == 0:
                fams.append((np.eye(A)[list(base)], x, (1, 0), x, (2, 0), True))
            for y in range(x + 1, S):
                for a in range(base[x] + 1, A):
                    for e in range(base[y] + 1, A):
                        fams.append((np.eye(A)[list(base)], x, (a, base[x]), y, (e, base[y]), False))
    found = []
    for g0, x, (a, c), y, (e, f), triangle in fams:
        d1, d2 = np.zeros((S, A)), np.zeros((S, A))
        d1[x, a], d1[x, c] = 1.0, -1.0
        d2[y, e], d2[y, f] = 1.0, -1.0
        base, e1, e2 = step(g0), step(d1 + g0) - step(g0), step(d2 + g0) - step(g0)
        E = np.stack([e1[1:], e2[1:]], axis=1)
        if abs(np.linalg.det(E)) < 1e-14:
            continue
        gaps = np.stack([q_lattice[:, x, a] - q_lattice[:, x, c], q_lattice[:, y, e] - q_lattice[:, y, f]], axis=1)
        G0, G1, G2 = (gaps[triangles[:, v]] for v in range(3))
        M = np.stack([G1 - G0, G2 - G0], axis=2)  # (T, 2 gaps, 2 barycentric)
        solvable = np.abs(np.linalg.det(M)) > 1e-14
        lam = np.zeros((len(M), 2))
        lam[solvable] = np.linalg.solve(M[solvable], -G0[solvable][..., None])[..., 0]
        inside = solvable & (lam.min(axis=1) >= -1e-12) & (lam.sum(axis=1) <= 1 + 1e-12)
        for tri, (l1, l2) in zip(triangles[inside], lam[inside]):
            w = grid.points[tri]
            star = w[0] + l1 * (w[1] - w[0]) + l2 * (w[2] - w[0])
            p, r = np.linalg.solve(E, (star - base)[1:])
            if not (p > 0 and r > 0 and (p + r < 1 if triangle else p < 1 and r < 1)):
                continue
            g = g0 + p * d1 + r * d2
            q = q_at(step(g)[None])[0]
            if np.all((g <= 0) | (q >= q.max(axis=1, keepdims=True) - tol)):
                if not any(np.abs(g - h).max() < 1e-7 for h in found):
                    found.append(g)
    return found


@pytest.mark.parametrize("z", [[0.5, 0.3, 0.2], [0.2, 0.35, 0.45], [0.34, 0.33, 0.33]])
def test_two_indifferences_match_the_exact_enumeration(z):
    model, grid = Destinations(), SimplexGrid(3, 12)
    V = np.cos(3 * np.pi * grid.points)  # the continuation of being in x': a wave in its crowd
    solver = MasterSolver(model, grid)
    z = np.array(z)
    Q = model.transition(z[None], 0.0)
    ours = [g[0] for g, ok in mixing.equilibria(solver, z[None], 0.0, V, Q, solver.mixed2) if ok[0]]
    exact = _exact(model, grid, V, z)
    assert len(exact) >= 2, len(exact)  # the test game has such equilibria
    assert len(ours) == len(exact), (len(ours), len(exact))
    for g in exact:
        assert min(np.abs(g - h).max() for h in ours) < 1e-9


def test_counted_among_the_equilibria_and_none_with_two_states():
    model, grid = Destinations(), SimplexGrid(3, 12)
    V = np.cos(3 * np.pi * grid.points)
    solver = MasterSolver(model, grid)
    z = np.array([[0.5, 0.3, 0.2]])
    policies, valid = solver.equilibria(z, 0.0, V)
    mixing_states = (policies[0] % 1 != 0).any(axis=2).sum(axis=1)
    mixing_actions = (policies[0] > 0).sum(axis=2).max(axis=1)
    two = valid[0] & ((mixing_states == 2) | (mixing_actions == 3))
    assert two.sum() == len(_exact(model, grid, V, z[0])) and two.sum() >= 2
    assert mixing.families(2, 3) == []
