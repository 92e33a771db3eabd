"""Sparse assembly of (2d+1)-point star-stencil operators on a grid's owned rows.

Coefficients come as an array of shape (2d+1, *owned_shape) in the order
[centre, axis 0 −, axis 0 +, axis 1 −, axis 1 +, ...]; `coefficients()` allocates one with
each slot in Fortran order, as the grid's fields are, which `assemble` reads without a
copy.  A neighbour behind a reflecting wall is the point itself, so its coefficient adds
onto the diagonal.
"""
import numpy as np
from petsc4py import PETSc


class Stencil:
    def __init__(self, grid):
        self.grid = grid
        cols = [grid.owned_indices()]
        for d in range(grid.dim):
            cols += [grid.neighbour_indices(d, -1), grid.neighbour_indices(d, +1)]
        self.width = len(cols)
        self._memory_order = (0,) + tuple(range(grid.dim, 0, -1))  # slot, then axes reversed
        self._rows = cols[0].reshape(-1, 1, order="F").astype(PETSc.IntType)
        self._cols = np.stack([c.ravel(order="F") for c in cols], axis=1).astype(PETSc.IntType)
        self._work = None
        self._csr = None

    def matrix(self):
        """An empty matrix with the grid's layout and the star pattern, built on a value
        array that `assemble` fills in place: on one rank the CSR values, on several the
        diagonal block's values followed by the off-diagonal block's (PETSc's split arrays)."""
        mat = self.grid.da.createMatrix()
        if self._csr is None:
            self._csr = self._plans(mat)
        ai, aj, split = self._csr[0], self._csr[1], self._csr[4]
        values = np.zeros(len(aj), dtype=PETSc.ScalarType)
        if split is None:
            csr = (ai, aj, values)
        else:  # PETSc compresses the off-diagonal columns in place: each matrix its own copy
            (di, dj, oi, oj), nd = split, len(split[1])
            csr = ((di, dj, values[:nd]), (oi, oj.copy(), values[nd:]))
        mat = PETSc.Mat().createAIJWithArrays(mat.getSizes(), csr, comm=mat.getComm())
        mat.setOption(PETSc.Mat.Option.NEW_NONZERO_ALLOCATION_ERR, True)
        mat.setAttr("stencil_values", values)
        mat.setAttr("stencil_arrays", csr)
        return mat

    def _plans(self, mat):
        """The CSR pattern (row pointers, global columns) of the owned rows, and for each entry
        of a coefficient array (2d+1, *owned_shape), slot-major with the points in Fortran
        order, the position in the value array it adds onto (repeated positions: a wall's
        neighbour folded onto the diagonal): for the operator, and on one rank for its
        transpose; on several ranks, the split pattern (diagonal block with local columns,
        off-diagonal block with global ones) that the value array follows."""
        ai, aj, _ = mat.getValuesCSR()
        ncols = np.int64(mat.getSize()[1])
        lg = self.grid.da.getLGMap().getIndices()
        start = mat.getOwnershipRange()[0]
        rows, cols = lg[self._rows[:, 0]].astype(np.int64) - start, lg[self._cols].astype(np.int64)
        keys = np.repeat(np.arange(len(ai) - 1, dtype=np.int64), np.diff(ai)) * ncols + aj

        def native(pos):  # (point in F order, slot) -> slot-major, points in F order
            return np.ascontiguousarray(pos.T).ravel()
        pos = np.searchsorted(keys, rows[:, None] * ncols + cols)
        if self.grid.comm.Get_size() == 1:
            transpose = native(np.searchsorted(keys, cols * ncols + rows[:, None]))
            return ai, aj, native(pos), transpose, None
        c0, c1 = mat.getOwnershipRangeColumn()
        diag = (aj >= c0) & (aj < c1)
        owner = np.repeat(np.arange(len(ai) - 1), np.diff(ai))

        def pointers(mask):
            counts = np.bincount(owner[mask], minlength=len(ai) - 1)
            return np.concatenate([[0], np.cumsum(counts)]).astype(PETSc.IntType)
        nd = int(np.count_nonzero(diag))
        slot = np.empty(len(aj), dtype=np.int64)  # CSR entry -> place in [diagonal values, off-diagonal values]
        slot[diag], slot[~diag] = np.arange(nd), nd + np.arange(len(aj) - nd)
        split = (pointers(diag), (aj[diag] - c0).astype(PETSc.IntType),
                 pointers(~diag), aj[~diag].astype(PETSc.IntType))
        return ai, aj, native(slot[pos]), None, split

    def laplacian_coefficients(self, weights=None):
        """Coefficients of Σ_d w_d ∂²_d discretised (w_d = 1: Δ_h)."""
        h = self.grid.h
        weights = [1.0] * self.grid.dim if weights is None else weights
        c = self.coefficients()
        for d, w in enumerate(weights):
            c[0] -= 2.0 * w / h[d] ** 2
            c[1 + 2 * d] = c[2 + 2 * d] = w / h[d] ** 2
        return c

    def drift_coefficients(self, backward, forward):
        """Coefficients of v ↦ Σ_d (backward_d D⁻_d v + forward_d D⁺_d v), D∓ the one-sided
        differences; the linearisation of the upwind numerical Hamiltonian."""
        h = self.grid.h
        c = self.coefficients(zero=False)
        for d in range(self.grid.dim):
            bwd, fwd = c[1 + 2 * d], c[2 + 2 * d]
            np.divide(backward[d], h[d], out=bwd)
            np.divide(forward[d], h[d], out=fwd)
            if d == 0:
                np.subtract(bwd, fwd, out=c[0])
            else:
                c[0] += bwd - fwd
            np.negative(bwd, out=bwd)
        return c

    def coefficients(self, zero=True):
        """A coefficient array (2d+1, *owned_shape), slot-major, each slot in Fortran order."""
        shape = (self.width,) + self.grid.owned_shape[::-1]
        c = np.zeros(shape) if zero else np.empty(shape)
        return c.transpose(self._memory_order)

    def rows_and_columns(self):
        """Local ghosted indices: rows (N, 1) and stencil columns (N, 2d+1) of the owned points."""
        return self._rows, self._cols

    def flat(self, coefficients):
        """Coefficients as an (N, 2d+1) array matching rows_and_columns()."""
        return np.moveaxis(coefficients, 0, -1).reshape(-1, self.width, order="F")

    def _neighbour(self, values, axis, side, wall):
        """values at the neighbour j + side e_axis of every owned point j; `wall` where that
        neighbour lies behind a reflecting wall (from neighbouring ranks across cuts)."""
        grid = self.grid
        if self._work is None:
            self._work = grid.create_vec()
        grid.set_owned(self._work, values)
        padded = grid.padded(self._work)
        index = [slice(1, -1)] * grid.dim
        index[axis] = slice(1 + side, padded.shape[axis] - 1 + side)
        out = np.array(padded[tuple(index)])
        lower, upper = grid.walls(axis)
        if (lower and side < 0) or (upper and side > 0):
            edge = [slice(None)] * grid.dim
            edge[axis] = 0 if side < 0 else -1
            out[tuple(edge)] = np.broadcast_to(wall, out.shape)[tuple(edge)]
        return out

    def transposed(self, coefficients):
        """Coefficients of Aᵀ: row j holds A's column j, A[j ∓ e_d, j] = the ± coefficient of
        the neighbour; at a wall the folded coefficient stays where it was."""
        t = np.array(coefficients)
        for d in range(self.grid.dim):
            minus, plus = coefficients[1 + 2 * d], coefficients[2 + 2 * d]
            t[1 + 2 * d] = self._neighbour(plus, d, -1, wall=minus)
            t[2 + 2 * d] = self._neighbour(minus, d, +1, wall=plus)
        return t

    def difference_gram(self, weights):
        """Coefficients of Σ_k D_kᵀ diag(w_k) D_k, (D_k v)_j = v_{nb_k(j)} − v_j, k over the
        neighbour columns [axis 0 −, axis 0 +, ...] with weights (2d, *owned_shape)."""
        c = self.coefficients()
        for k in range(1, self.width):
            d, side = (k - 1) // 2, (-1 if k % 2 else 1)
            opposite = k + 1 if side < 0 else k - 1
            w = weights[k - 1]
            # own row: w (v_j − v_nb); the neighbour's row: w_j (v_nb − v_j) seen from nb
            from_neighbour = self._neighbour(w, d, -side, wall=0.0)
            c[0] += w + from_neighbour
            c[k] -= w
            c[opposite] -= from_neighbour
        return c

    def transpose_apply(self, coefficients, values, out):
        """out ← Aᵀ v for the operator A with these coefficients, v given by its owned values."""
        weights = self.flat(coefficients) * values.reshape(-1, 1, order="F")
        local = np.bincount(self._cols.ravel(), weights=weights.ravel(), minlength=self.grid.local_size)
        self.grid.add_local_to_global(local, out)
        return out

    def assemble(self, mat, coefficients, transpose=False):
        """mat ← the operator (or its transpose) with the given coefficients; mat from matrix()."""
        aj, pos, pos_t = self._csr[1:4]
        if transpose and pos_t is None:  # several ranks: the transpose's rows need neighbours' values
            coefficients, transpose = self.transposed(coefficients), False
        memory = np.asarray(coefficients, dtype=PETSc.ScalarType).transpose(self._memory_order)
        mat.getAttr("stencil_values")[:] = np.bincount(pos_t if transpose else pos, minlength=len(aj),
                                                       weights=memory.ravel())
        mat.assemble()
        return mat
