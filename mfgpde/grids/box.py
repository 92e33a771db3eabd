"""Uniform cell-centred tensor-product grids on a box, distributed with PETSc DMDA.

Cell i of an axis with `n` cells on [lower, upper] has centre lower + (i + 1/2) h,
h = (upper - lower) / n.  A reflecting (no-flux) edge mirrors the edge cell into
its ghost, a periodic edge wraps around.  Owned blocks are numpy arrays indexed
[i_x, i_y, i_z] (axis order of the grid); padded blocks carry one ghost layer on
every side.  Nothing here knows an equation.
"""
import numpy as np
from mpi4py import MPI
from petsc4py import PETSc

from .boundary import BOUNDARIES, PERIODIC, REFLECTING  # noqa: F401  (re-exported)


class Grid:
    """A box [lower, upper] with n[d] cells per axis d, split over the ranks of `comm`."""

    def __init__(self, lower, upper, n, boundary=REFLECTING, names=None, comm=None):
        self.lower = tuple(float(v) for v in lower)
        self.upper = tuple(float(v) for v in upper)
        self.n = tuple(int(v) for v in n)
        self.dim = len(self.n)
        if not 1 <= self.dim <= 3 or len(self.lower) != self.dim or len(self.upper) != self.dim:
            raise ValueError("lower, upper and n need one entry per axis (1 to 3 axes)")
        if isinstance(boundary, str):
            boundary = (boundary,) * self.dim
        self.boundary = tuple(boundary)
        self.names = tuple(names or ("x", "y", "z")[: self.dim])
        self.h = tuple((b - a) / k for a, b, k in zip(self.lower, self.upper, self.n))
        self.cell_volume = float(np.prod(self.h))
        comm = comm or PETSc.COMM_WORLD
        bt = [PETSc.DM.BoundaryType.PERIODIC if b == PERIODIC else PETSc.DM.BoundaryType.NONE
              for b in self.boundary]
        self.da = PETSc.DMDA().create(dim=self.dim, dof=1, sizes=self.n, boundary_type=bt,
                                      stencil_type=PETSc.DMDA.StencilType.STAR,
                                      stencil_width=1, comm=comm)
        self.comm = self.da.getComm().tompi4py()
        self.rank = self.comm.Get_rank()
        self.ranges = tuple(self.da.getRanges())
        self.ghost_ranges = tuple(self.da.getGhostRanges())
        self.owned_shape = tuple(e - s for s, e in self.ranges)
        self._local = self.da.createLocalVec()
        self._index = self._padded_index()

    # -- coordinates ---------------------------------------------------------
    def coordinates(self, axis):
        """All cell centres of one axis (every rank)."""
        return self.lower[axis] + (np.arange(self.n[axis]) + 0.5) * self.h[axis]

    def local_coordinates(self):
        """Cell centres of the owned block, one broadcastable array per axis ('ij' order)."""
        xs = [self.coordinates(d)[s:e] for d, (s, e) in enumerate(self.ranges)]
        return tuple(np.meshgrid(*xs, indexing="ij", sparse=True))

    # -- vectors and arrays --------------------------------------------------
    def create_vec(self):
        return self.da.createGlobalVec()

    def owned(self, vec):
        """Writable numpy view of the owned block of a global vector."""
        return vec.getArray().reshape(self.owned_shape, order="F")

    def set_owned(self, vec, values):
        vec.getArray()[:] = np.broadcast_to(values, self.owned_shape).ravel(order="F")

    def padded(self, vec):
        """Owned block plus one ghost layer, ghosts from neighbours and the boundary rule."""
        self.da.globalToLocal(vec, self._local)
        ghosted = self._local.getArray(readonly=True).reshape(self._ghost_shape(), order="F")
        return self._fix_edges(ghosted)

    def _ghost_shape(self):
        return tuple(e - s for s, e in self.ghost_ranges)

    def _fix_edges(self, ghosted):
        """The one boundary routine: a reflecting wall has no ghost layer from the DMDA;
        mirror the edge cell into it (axis by axis, so corners too, as np.pad's "edge"
        mode).  Interior and periodic ghosts are already there.  A new array each call."""
        pad = [(1 - (s - gs), 1 - (ge - e)) for (s, e), (gs, ge) in zip(self.ranges, self.ghost_ranges)]
        shape = tuple(k + lo + hi for k, (lo, hi) in zip(ghosted.shape, pad))
        out = np.empty(shape, dtype=ghosted.dtype, order="F" if ghosted.flags.fnc else "C")
        out[tuple(slice(lo, lo + k) for k, (lo, _) in zip(ghosted.shape, pad))] = ghosted
        for d, (lo, hi) in enumerate(pad):
            head = (slice(None),) * d
            if lo:
                out[head + (0,)] = out[head + (1,)]
            if hi:
                out[head + (-1,)] = out[head + (-2,)]
        return out

    def walls(self, axis):
        """(lower, upper): whether this rank's block touches the reflecting walls of an axis."""
        s, e = self.ranges[axis]
        wall = self.boundary[axis] == REFLECTING
        return wall and s == 0, wall and e == self.n[axis]

    def add_local_to_global(self, local_values, vec):
        """vec ← the ghosted-local values summed onto their owners (ghost entries included)."""
        self._local.getArray()[:] = local_values
        vec.zeroEntries()
        self.da.localToGlobal(self._local, vec, addv=PETSc.InsertMode.ADD_VALUES)

    @property
    def local_size(self):
        """Size of the ghosted local vector."""
        return self._local.getSize()

    def _padded_index(self):
        """Local (ghosted) vector index of each point of the padded block."""
        idx = np.arange(int(np.prod(self._ghost_shape()))).reshape(self._ghost_shape(), order="F")
        return self._fix_edges(idx)

    def neighbour_indices(self, axis, side):
        """Local ghosted indices of the owned points' neighbours along `axis` (side -1 or +1);
        at a reflecting wall the neighbour is the point itself."""
        sl = [slice(1, -1)] * self.dim
        sl[axis] = slice(1 + side, self._index.shape[axis] - 1 + side)
        return self._index[tuple(sl)]

    def owned_indices(self):
        """Local ghosted indices of the owned points."""
        return self._index[(slice(1, -1),) * self.dim]

    # -- reductions and gathering ------------------------------------------
    def integrate(self, values):
        """∫ f dx over the whole box (midpoint rule) for owned values of f, on all ranks;
        leading axes beyond the grid's (e.g. time) are kept."""
        grid_axes = tuple(range(np.ndim(values) - self.dim, np.ndim(values)))
        local = np.asarray(np.sum(values, axis=grid_axes), dtype=float)
        total = self.comm.allreduce(local, op=MPI.SUM) * self.cell_volume
        return float(total) if total.ndim == 0 else total

    def moments(self, m):
        """Mass and mean vector ∫ x m dx of a density given by its owned values."""
        x = self.local_coordinates()
        local = [np.sum(m)] + [np.sum(m * xd) for xd in x]
        total = np.array(self.comm.allreduce(np.array(local, dtype=float), op=MPI.SUM))
        total *= self.cell_volume
        return total[0], total[1:]

    def max_abs(self, values):
        return self.comm.allreduce(float(np.max(np.abs(values), initial=0.0)), op=MPI.MAX)

    def gather(self, values):
        """The whole field on rank 0 (leading axes kept, then the grid axes), None elsewhere."""
        values = np.ascontiguousarray(values)
        lead = values.shape[: values.ndim - self.dim]
        blocks = self.comm.gather((self.ranges, values), root=0)
        if self.rank != 0:
            return None
        full = np.empty(lead + self.n)
        for ranges, block in blocks:
            full[(Ellipsis,) + tuple(slice(s, e) for s, e in ranges)] = block
        return full

    def allgather(self, values):
        """The whole field on every rank (leading axes kept, then the grid axes)."""
        values = np.ascontiguousarray(values)
        full = np.empty(values.shape[: values.ndim - self.dim] + self.n)
        for ranges, block in self.comm.allgather((self.ranges, values)):
            full[(Ellipsis,) + tuple(slice(s, e) for s, e in ranges)] = block
        return full

    def diagonal(self, values, a, b):
        """The whole field restricted to i_a = i_b (axes a < b of equal sizes), on every rank,
        over the grid axes without axis a, in order."""
        lo, hi = max(self.ranges[a][0], self.ranges[b][0]), min(self.ranges[a][1], self.ranges[b][1])
        g = np.arange(lo, max(lo, hi))
        picked = np.moveaxis(values, (a, b), (0, 1))[g - self.ranges[a][0], g - self.ranges[b][0]]
        local = np.zeros(tuple(k for d, k in enumerate(self.n) if d != a))
        rest = tuple(slice(s, e) for d, (s, e) in enumerate(self.ranges) if d not in (a, b))
        np.moveaxis(local, b - 1, 0)[(g,) + rest] = picked
        return self.comm.allreduce(local, op=MPI.SUM)

    def restrict(self, full, axes):
        """The owned block of a field given whole on every rank over the grid axes `axes`
        (in order); missing axes become length-1 (broadcastable)."""
        index = tuple(slice(*self.ranges[d]) if d in axes else None for d in range(self.dim))
        expanded = np.asarray(full)[tuple(index[d] for d in axes)]
        return expanded.reshape(tuple(self.owned_shape[d] if d in axes else 1 for d in range(self.dim)))

    def scatter(self, full):
        """Owned block of a field given whole on every rank (leading axes kept)."""
        return np.array(full[(Ellipsis,) + tuple(slice(s, e) for s, e in self.ranges)], dtype=float)


def concatenated_indices(grids, vec):
    """For unknowns stored grid after grid on each rank (`vec`: every rank's owned points of
    grids[0], then of grids[1], ...): per grid, the global index in `vec` of each point of
    its ghosted local vector."""
    comm = grids[0].comm
    offsets = np.array(comm.allgather(vec.getOwnershipRange()[0]))
    sizes = [np.array(comm.allgather(int(np.prod(g.owned_shape)))) for g in grids]
    maps, before = [], np.zeros_like(offsets)
    for g, size in zip(grids, sizes):
        starts = np.array(comm.allgather(g.create_vec().getOwnershipRange()[0]))
        index = g.da.getLGMap().getIndices()
        owner = np.searchsorted(starts, index, side="right") - 1
        maps.append(index - starts[owner] + offsets[owner] + before[owner])
        before = before + size
    return maps
