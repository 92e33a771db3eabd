"""Sparse assembly of (2d+1)-point star-stencil operators on a grid's owned rows.

Coefficients come as an array of shape (2d+1, *owned_shape) in the order
[centre, axis 0 −, axis 0 +, axis 1 −, axis 1 +, ...].  A neighbour behind a
reflecting wall is the point itself, so its coefficient adds onto the diagonal.
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
        self._rows = cols[0].reshape(-1, 1, order="F").astype(PETSc.IntType)
        self._cols = np.stack([c.ravel(order="F") for c in cols], axis=1).astype(PETSc.IntType)

    def matrix(self):
        """An empty matrix with the grid's layout and the star pattern preallocated."""
        mat = self.grid.da.createMatrix()
        mat.setOption(PETSc.Mat.Option.NEW_NONZERO_ALLOCATION_ERR, True)
        return mat

    def laplacian_coefficients(self, weights=None):
        """Coefficients of Σ_d w_d ∂²_d discretised (w_d = 1: Δ_h)."""
        h = self.grid.h
        weights = [1.0] * self.grid.dim if weights is None else weights
        c = np.zeros((self.width,) + self.grid.owned_shape)
        for d, w in enumerate(weights):
            c[0] -= 2.0 * w / h[d] ** 2
            c[1 + 2 * d] = c[2 + 2 * d] = w / h[d] ** 2
        return c

    def drift_coefficients(self, backward, forward):
        """Coefficients of v ↦ Σ_d (backward_d D⁻_d v + forward_d D⁺_d v), D∓ the one-sided
        differences; the linearisation of the upwind numerical Hamiltonian."""
        h = self.grid.h
        c = np.zeros((self.width,) + self.grid.owned_shape)
        for d in range(self.grid.dim):
            bwd, fwd = backward[d] / h[d], forward[d] / h[d]
            c[0] += bwd - fwd
            c[1 + 2 * d] = -bwd
            c[2 + 2 * d] = fwd
        return c

    def rows_and_columns(self):
        """Local ghosted indices: rows (N, 1) and stencil columns (N, 2d+1) of the owned points."""
        return self._rows, self._cols

    def flat(self, coefficients):
        """Coefficients as an (N, 2d+1) array matching rows_and_columns()."""
        return np.moveaxis(coefficients, 0, -1).reshape(-1, self.width, order="F")

    def transpose_apply(self, coefficients, values, out):
        """out ← Aᵀ v for the operator A with these coefficients, v given by its owned values."""
        weights = self.flat(coefficients) * values.reshape(-1, 1, order="F")
        local = np.bincount(self._cols.ravel(), weights=weights.ravel(), minlength=self.grid.local_size)
        self.grid.add_local_to_global(local, out)
        return out

    def assemble(self, mat, coefficients, transpose=False):
        """mat ← the operator (or its transpose) with the given coefficients."""
        vals = np.ascontiguousarray(self.flat(coefficients), dtype=PETSc.ScalarType)
        mat.zeroEntries()
        if transpose:
            rows = np.broadcast_to(self._rows, self._cols.shape)
            mat.setValuesLocalRCV(self._cols.reshape(-1, 1), np.ascontiguousarray(rows).reshape(-1, 1),
                                  vals.reshape(-1, 1), addv=PETSc.InsertMode.ADD_VALUES)
        else:
            mat.setValuesLocalRCV(self._rows, self._cols, vals, addv=PETSc.InsertMode.ADD_VALUES)
        mat.assemble()
        return mat
