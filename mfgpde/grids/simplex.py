"""A structured grid of the simplex P(X) of population states over |X| = 2 or 3 states,
split across MPI ranks by contiguous blocks of points.

Points are z = k / N for the integer vectors k ≥ 0 with Σ k = N (an interval of N + 1
points for two states, a triangle of (N + 1)(N + 2)/2 points for three).  Values between
points are interpolated linearly on the lattice's triangulation (the intervals; in the
triangle, the two triangles of every lattice square), which is exact for affine functions.
"""
import numpy as np
from mpi4py import MPI


class SimplexGrid:
    def __init__(self, states, n, comm=None):
        if states not in (2, 3):
            raise ValueError(f"grid.states: 2 or 3 follower states, got {states!r}")
        if isinstance(n, bool) or not isinstance(n, int) or n < 1:
            raise ValueError(f"grid.n: a positive integer, got {n!r}")
        self.states, self.n = states, n
        self.comm = comm or MPI.COMM_WORLD
        if states == 2:
            k = np.arange(n + 1)
            lattice = np.stack([n - k, k], axis=1)
        else:
            lattice = np.array([(n - i - j, i, j) for i in range(n + 1) for j in range(n + 1 - i)])
        self.lattice = lattice
        self.points = lattice / n
        self.size = len(lattice)
        self._index = np.full((n + 2, n + 2), -1)
        if states == 3:
            self._index[lattice[:, 1], lattice[:, 2]] = np.arange(self.size)
        size, rank = self.comm.Get_size(), self.comm.Get_rank()
        bounds = np.linspace(0, self.size, size + 1).round().astype(int)
        self.counts = np.diff(bounds)
        self.lo, self.hi = int(bounds[rank]), int(bounds[rank + 1])

    @property
    def owned(self):
        """Indices of the points this rank computes."""
        return np.arange(self.lo, self.hi)

    def allgather(self, owned_values):
        """The whole array (points first) from every rank's owned rows."""
        owned_values = np.ascontiguousarray(owned_values, dtype=float)
        tail = owned_values.shape[1:]
        width = int(np.prod(tail)) if tail else 1
        out = np.empty((self.size,) + tail)
        self.comm.Allgatherv(owned_values, [out, self.counts * width])
        return out

    def weights(self, z):
        """Vertices (M, s) and barycentric weights (M, s) of the lattice cell holding each z
        (rows of z are points of the simplex; s = number of states)."""
        z = np.clip(np.atleast_2d(np.asarray(z, float)), 0.0, 1.0)
        n = self.n
        if self.states == 2:
            u = np.clip(n * z[:, 1], 0.0, n)
            i = np.minimum(np.floor(u).astype(int), n - 1)
            f = u - i
            return np.stack([i, i + 1], axis=1), np.stack([1 - f, f], axis=1)
        u, v = n * z[:, 1], n * z[:, 2]
        i = np.minimum(np.floor(u).astype(int), n - 1)
        j = np.minimum(np.floor(v).astype(int), n - 1 - i)
        j = np.maximum(j, 0)
        fu, fv = u - i, v - j
        lower = fu + fv <= 1.0
        verts = np.where(lower[:, None],
                         np.stack([self._index[i, j], self._index[i + 1, j], self._index[i, j + 1]], axis=1),
                         np.stack([self._index[i + 1, j + 1], self._index[i + 1, j], self._index[i, j + 1]], axis=1))
        w = np.where(lower[:, None], np.stack([1 - fu - fv, fu, fv], axis=1),
                     np.stack([fu + fv - 1, 1 - fv, 1 - fu], axis=1))
        return verts, w

    def interpolate(self, values, z):
        """values (points, ...) at the points z (M, states) → (M, ...)."""
        verts, w = self.weights(z)
        values = np.asarray(values)
        w = w.reshape(w.shape + (1,) * (values.ndim - 1))
        return np.sum(values[np.maximum(verts, 0)] * w, axis=1)
