"""Layout of the whole discrete MFG system as one distributed PETSc vector.

Unknowns, in blocks of the grid's owned points on every rank (rank r holds N_r points):
block n = u^n (n = 0..nt−1), block nt + n − 1 = m^n (n = 1..nt); then, on rank 0 only
and only for models coupled through the mean, μ^n_d ≈ m̄_d(t_n) (n = 1..nt, d < dim).
u^{nt} = g(m^{nt}) and m^0 = m0 are not unknowns.  Global index of point q of block b on
rank r: start_r + b N_r + q.
"""
import numpy as np
from petsc4py import PETSc


class SpaceTimeLayout:
    def __init__(self, problem, with_means):
        grid = problem.grid
        self.grid, self.nt, self.dim = grid, problem.nt, grid.dim
        comm = grid.comm
        self.N = int(np.prod(grid.owned_shape))
        sizes = np.array(comm.allgather(self.N))
        self.n_means = self.nt * self.dim if with_means else 0
        local = 2 * self.nt * sizes + np.where(np.arange(len(sizes)) == 0, self.n_means, 0)
        starts = np.concatenate([[0], np.cumsum(local)[:-1]])
        self.local_size, self.size = int(local[grid.rank]), int(local.sum())
        self.start = int(starts[grid.rank])
        self.mean_start = int(starts[0] + 2 * self.nt * sizes[0])
        # stencil columns: owner rank's start and stride for each (local ghosted) column
        rows, cols = problem.stencil.rows_and_columns()
        petsc_index = grid.da.getLGMap().apply(cols.ravel()).reshape(cols.shape)
        da_starts = np.concatenate([[0], np.cumsum(sizes)[:-1]])
        owner = np.searchsorted(da_starts, petsc_index, side="right") - 1
        idx = PETSc.IntType
        self.col_base = (starts[owner] + petsc_index - da_starts[owner]).astype(idx)
        self.col_stride = sizes[owner].astype(idx)
        self.own = (self.start + np.arange(self.N)).astype(idx)

    # -- indices -------------------------------------------------------------
    @staticmethod
    def u_block(n):
        return n

    def m_block(self, n):
        return self.nt + n - 1

    def rows(self, blocks):
        """Global indices (len(blocks), N) of the owned points in these blocks."""
        return self.own[None, :] + np.asarray(blocks, dtype=PETSc.IntType)[:, None] * self.N

    def columns(self, blocks):
        """Global indices (len(blocks), N, 2d+1) of the stencil columns in these blocks."""
        b = np.asarray(blocks, dtype=PETSc.IntType)[:, None, None]
        return self.col_base[None] + b * self.col_stride[None]

    def mean_index(self, n, d):
        return self.mean_start + (n - 1) * self.dim + d

    # -- vectors ---------------------------------------------------------------
    def create_vec(self):
        vec = PETSc.Vec().createMPI((self.local_size, self.size), comm=self.grid.da.getComm())
        vec.setUp()
        return vec

    def split(self, array):
        """Views (u[0..nt−1], m[1..nt], means (nt, dim) or None) of a local array."""
        shape = self.grid.owned_shape
        blocks = array[: 2 * self.nt * self.N].reshape((2 * self.nt,) + shape[::-1]).transpose(
            (0,) + tuple(range(self.dim, 0, -1)))
        means = array[2 * self.nt * self.N:].reshape(self.nt, self.dim) if self.n_means and \
            self.grid.rank == 0 else None
        return blocks[: self.nt], blocks[self.nt:], means

    def create_matrix(self, row_nnz):
        """AIJ matrix preallocated with (diagonal, off-diagonal) counts per local row."""
        mat = PETSc.Mat().createAIJ(((self.local_size, self.size), (self.local_size, self.size)),
                                    nnz=row_nnz, comm=self.grid.da.getComm())
        mat.setOption(PETSc.Mat.Option.NEW_NONZERO_ALLOCATION_ERR, False)
        mat.setUp()
        return mat
