"""Follower equilibria of the master equation (master.py) in which two indifferences hold
at once, for three follower states: one state mixing three actions, or two states mixing
two actions each, the other states pure.

A family's prescriptions are g(p, r) = g0 + p d1 + r d2 on its domain: the triangle
p, r > 0, p + r < 1 (three actions with probabilities 1 − p − r, p, r) or the square
(0, 1)² (two mixing states).  Its two indifference gaps are affine in (p, r) wherever
z'(p, r) stays in one triangle of the simplex lattice (values are interpolated linearly
there).  They are sampled on a SAMPLES × SAMPLES grid of [0, 1]²; on each half of every
sample square the gaps' affine interpolant is solved, and a solution in or near that half
(half a sample spacing beyond it, for roots where the gaps have kinks) is refined by
Newton steps (the Jacobian from differences of the gaps), then kept if the gaps
vanish to round-off, (p, r) lies inside the domain, every state's played actions are best
and no earlier candidate of the family is the same point.  A root is found when it is the
only one in its half-square (two closer than 1/(SAMPLES − 1) can be missed).

With two follower states z' is one-dimensional and both gaps are functions of it, so two
indifferences hold at once only where two curves meet: not generic, not enumerated.
"""
import itertools

import numpy as np

from ..models.discrete import population_update

SAMPLES = 11
NEWTON = 4


def families(S, A):
    """[(g0 (S, A), d1, d2, gaps ((x, a, a') twice: q(x, a) − q(x, a')), triangle)]."""
    if S < 3:
        return []
    out = []

    def base(choice):
        g = np.zeros((S, A))
        g[np.arange(S), choice] = 1.0
        return g

    def unit(x, a):
        e = np.zeros((S, A))
        e[x, a] = 1.0
        return e
    for x in range(S):
        for a1, a2, a3 in itertools.combinations(range(A), 3):
            for rest in itertools.product(range(A), repeat=S - 1):
                g0 = base(list(rest[:x]) + [a1] + list(rest[x:]))
                out.append((g0, unit(x, a2) - unit(x, a1), unit(x, a3) - unit(x, a1),
                            ((x, a2, a1), (x, a3, a1)), True))
    for x, y in itertools.combinations(range(S), 2):
        for (a1, a2), (a3, a4) in itertools.product(itertools.combinations(range(A), 2), repeat=2):
            for rest in itertools.product(range(A), repeat=S - 2):
                choice = list(rest)
                choice.insert(x, a1)
                choice.insert(y, a3)
                out.append((base(choice), unit(x, a2) - unit(x, a1), unit(y, a4) - unit(y, a3),
                            ((x, a2, a1), (y, a4, a3)), False))
    return out


def equilibria(solver, z, b, Vf_next, Q, fams, tol=1e-10):
    """The equilibria found in the families `fams` at the rows z (k, 3) for actions b:
    [(policies (k, S, A), valid (k,))], as MasterSolver._mixed returns them."""
    k = len(z)
    b = np.broadcast_to(b, (k,))
    u = np.linspace(0.0, 1.0, SAMPLES)
    P, R = (np.broadcast_to(v.ravel(), (k, SAMPLES * SAMPLES)) for v in np.meshgrid(u, u, indexing="ij"))
    corners = _triangles()
    out = []
    for g0, d1, d2, gaps, triangle in fams:
        def q_at(p, r):  # (k, n) → q (k, n, S, A), prescriptions (k, n, S, A)
            n = p.shape[1]
            g = g0 + p[..., None, None] * d1 + r[..., None, None] * d2
            flat = g.reshape(k * n, *g0.shape)
            zs, bs, Qs = np.repeat(z, n, axis=0), np.repeat(b, n), np.repeat(Q, n, axis=0)
            q = solver._q(zs, bs, Vf_next, population_update(zs, flat, Qs), Qs)
            return q.reshape(k, n, *g0.shape), g

        def gap(p, r):
            q = q_at(p, r)[0]
            return np.stack([q[:, :, x, a] - q[:, :, x, c] for x, a, c in gaps], axis=-1)
        G = gap(P, R).reshape(k, SAMPLES * SAMPLES, 2)
        p, r, found = _solve_cells(G, P, R, corners)
        for _ in range(NEWTON):
            p, r = _newton(gap, p, r)
        q, g = q_at(p, r)
        scale = tol * 1e3 * (1 + np.abs(q).max(axis=3))
        best = q >= (q.max(axis=3) - scale)[..., None]
        played = g > 0
        inside = (p > 0) & (r > 0) & ((p + r < 1) if triangle else (p < 1) & (r < 1))
        residual = np.abs(gap(p, r)).max(axis=-1) <= scale.max(axis=2)
        ok = found & inside & residual & np.all(best | ~played, axis=(2, 3))
        ok &= ~_repeated(p, r, ok)
        out += [(g[:, j], ok[:, j]) for j in range(p.shape[1])]
    return out


def _triangles():
    """Indices into the flattened SAMPLES × SAMPLES grid of the corners (T, 3) of the two
    halves of every sample square."""
    i, j = np.meshgrid(np.arange(SAMPLES - 1), np.arange(SAMPLES - 1), indexing="ij")
    at = lambda a, c: (a * SAMPLES + c).ravel()  # noqa: E731
    lower = np.stack([at(i, j), at(i + 1, j), at(i, j + 1)], axis=1)
    upper = np.stack([at(i + 1, j + 1), at(i, j + 1), at(i + 1, j)], axis=1)
    return np.concatenate([lower, upper])


def _solve_cells(G, P, R, corners):
    """The zero of each half-square's affine interpolant of the gaps G (k, n, 2), where it
    lies in or near that half: (p, r, found), each (k, C), C the most found in any row
    (packed)."""
    G0, G1, G2 = (G[:, corners[:, c]] for c in range(3))  # (k, T, 2)
    A, B = G1 - G0, G2 - G0
    det = A[..., 0] * B[..., 1] - A[..., 1] * B[..., 0]
    safe = np.where(det == 0, 1.0, det)
    s = (-G0[..., 0] * B[..., 1] + G0[..., 1] * B[..., 0]) / safe
    t = (-A[..., 0] * G0[..., 1] + A[..., 1] * G0[..., 0]) / safe
    reach = 0.5  # beyond its half-square by this (in its sides): roots where the gaps have kinks
    found = (det != 0) & (s >= -reach) & (t >= -reach) & (s + t <= 1 + reach)
    p0, r0 = P[:, corners[:, 0]], R[:, corners[:, 0]]
    p = p0 + s * (P[:, corners[:, 1]] - p0) + t * (P[:, corners[:, 2]] - p0)
    r = r0 + s * (R[:, corners[:, 1]] - r0) + t * (R[:, corners[:, 2]] - r0)
    C = max(1, int(found.sum(axis=1).max()))
    order = np.argsort(~found, axis=1, kind="stable")[:, :C]
    pick = lambda a: np.take_along_axis(np.where(found, a, 0.5), order, axis=1)  # noqa: E731
    return pick(p), pick(r), np.take_along_axis(found, order, axis=1)


def _newton(gap, p, r, h=1e-7):
    """One Newton step on the gaps at (p, r) (k, C), the Jacobian by forward differences;
    a singular Jacobian leaves the point."""
    F, Fp, Fr = gap(p, r), gap(p + h, r), gap(p, r + h)
    a, c = (Fp[..., 0] - F[..., 0]) / h, (Fp[..., 1] - F[..., 1]) / h
    b, d = (Fr[..., 0] - F[..., 0]) / h, (Fr[..., 1] - F[..., 1]) / h
    det = a * d - b * c
    safe = np.where(det == 0, 1.0, det)
    dp = np.where(det == 0, 0.0, (d * F[..., 0] - b * F[..., 1]) / safe)
    dr = np.where(det == 0, 0.0, (a * F[..., 1] - c * F[..., 0]) / safe)
    return np.clip(p - dp, 0.0, 1.0), np.clip(r - dr, 0.0, 1.0)


def _repeated(p, r, ok, width=1e-7):
    """Candidates (k, C) equal (within width) to an earlier valid one of their row."""
    close = (np.abs(p[:, :, None] - p[:, None, :]) < width) & (np.abs(r[:, :, None] - r[:, None, :]) < width)
    earlier = np.tril(np.ones(close.shape[1:], bool), k=-1)  # [i, j]: j before i
    return np.any(close & earlier & ok[:, None, :], axis=2)
