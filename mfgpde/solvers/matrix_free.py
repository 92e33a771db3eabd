"""The space–time Newton Jacobian kept as grid-sized blocks per time level, never as one
space–time matrix: its action (a MatPython context) and the block Gauss–Seidel
preconditioner over the fields (u, m, mean) whose u and m inverses march in time (a
PCPYTHON context).  With the row weight w and level n (m-block n is m^{n+1}):

    HJB_n:  D_n u^n − (w/dt) u^{n+1} + diag(∂_m H_n) m^{n+1} + Σ_d ∂_μd H_n μ^{n+1}_d
    FP_n:   A_nᵀ m^{n+1} − (w/dt) m^n + C_n u^n
    MEAN_n: w_μ (μ^n_d − h^d Σ x_d m^n)

D_n, A_nᵀ (the time marchings' level matrices) and C_n = ∂(L_uᵀ m)/∂u are star-stencil
grid matrices; the diagonal couplings are arrays.  Memory and set-up grow like 3·nt grid
matrices, the solve costs grid solves.
"""
import numpy as np
from petsc4py import PETSc

from .marching import TimeMarching


class LevelJacobian:
    def __init__(self, problem, layout, weight, mean_weight):
        grid, nt = problem.grid, problem.nt
        self.problem, self.layout, self.nt, self.N = problem, layout, nt, layout.N
        self.mean_weight = mean_weight
        w_dt = weight / problem.dt
        self.u_march = TimeMarching(problem, backward=True, coupling=w_dt, transpose=False)
        self.m_march = TimeMarching(problem, backward=False, coupling=w_dt, transpose=True)
        self.C = [problem.stencil.matrix() for _ in range(nt)]
        self.dH_dm = np.zeros((nt, self.N))
        self.dH_dmean = np.zeros((nt, layout.n_means and grid.dim, self.N))
        self.x = [np.broadcast_to(xd, grid.owned_shape).ravel(order="F") for xd in problem.x]
        self._in, self._out = grid.create_vec(), grid.create_vec()

    @property
    def marchings(self):
        return self.u_march, self.m_march

    # -- filling the levels (from the Newton Jacobian callback) ------------------
    def set_level(self, n, D, A, dH_dm, dH_dmean, C):
        """Level n from the stencil coefficients of D_n, A_n and C_n (weighted) and the
        diagonal couplings."""
        self.u_march.set_level(n, D)
        self.m_march.set_level(n, A)
        self.problem.stencil.assemble(self.C[n], C)
        self.dH_dm[n] = dH_dm
        for k, values in enumerate(dH_dmean):
            self.dH_dmean[n, k] = values

    # -- helpers -------------------------------------------------------------------
    def _fields(self, array):
        nt, N = self.nt, self.N
        return array[: nt * N].reshape(nt, N), array[nt * N: 2 * nt * N].reshape(nt, N), array[2 * nt * N:]

    def _apply(self, mat, values):
        """mat · values (one level's grid vector), as a new array."""
        self._in.getArray()[:] = values
        mat.mult(self._in, self._out)
        return self._out.getArray(readonly=True).copy()

    def _moments(self, m):
        """h^d Σ x_d m^n for every level and axis, summed over ranks: (nt, dim)."""
        local = np.stack([m @ xd for xd in self.x], axis=1)
        return self.problem.grid.comm.allreduce(local) * self.problem.grid.cell_volume

    def _means(self, means):
        """The μ unknowns (nt, dim) on every rank (they live on rank 0)."""
        grid = self.problem.grid
        return grid.comm.bcast(np.array(means).reshape(self.nt, -1) if grid.rank == 0 else None, root=0)

    # -- MatPython: y = J x ----------------------------------------------------------
    def mult(self, mat, x, y):
        xu, xm, xmean = self._fields(x.getArray(readonly=True))
        yu, ym, ymean = self._fields(y.getArray())
        c = self.u_march.coupling
        mu = self._means(xmean) if self.layout.n_means else None
        for n in range(self.nt):
            yu[n] = self._apply(self.u_march.mats[n], xu[n]) + self.dH_dm[n] * xm[n]
            if n + 1 < self.nt:
                yu[n] -= c * xu[n + 1]
            if mu is not None:
                yu[n] += mu[n] @ self.dH_dmean[n]
            ym[n] = self._apply(self.m_march.mats[n], xm[n]) + self._apply(self.C[n], xu[n])
            if n > 0:
                ym[n] -= c * xm[n - 1]
        if self.layout.n_means:
            moments = self._moments(xm)
            if ymean.size:
                ymean[:] = (self.mean_weight * (mu - moments)).ravel()


class BlockGaussSeidel:
    """PCPYTHON: y_u = U⁻¹ b_u, y_m = M⁻¹ (b_m − C y_u), y_μ = (b_μ − J_μm y_m)/w_μ, with U
    and M inverted by time marching: the preconditioner PCFIELDSPLIT (multiplicative)
    would build over these fields, without extracting their blocks."""

    def __init__(self, jacobian):
        self.J = jacobian

    def apply(self, pc, x, y):
        J = self.J
        bu, bm, bmean = J._fields(x.getArray(readonly=True))
        yu, ym, ymean = J._fields(y.getArray())
        J.u_march.solve(bu, yu)
        rm = np.array(bm)
        for n in range(J.nt):
            rm[n] -= J._apply(J.C[n], yu[n])
        J.m_march.solve(rm, ym)
        if J.layout.n_means:
            moments = J._moments(ym)
            if ymean.size:
                ymean[:] = (np.asarray(bmean).reshape(J.nt, -1) / J.mean_weight + moments).ravel()
