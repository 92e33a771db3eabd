"""Inverse of one field's block of the space–time Newton Jacobian, by time marching.

The u block is block upper bidiagonal in time (row n: D_n u^n − (w/dt) u^{n+1}), the m
block block lower bidiagonal (row n + 1: A_nᵀ m^{n+1} − (w/dt) m^n): one grid-sized solve
per time level inverts it, backward for u and forward for m, which is what a Picard
sweep does, linearised.  Used as the PCPYTHON context of a PCFIELDSPLIT split, so the
Newton step costs grid solves instead of a space–time factorisation.  Per level a PETSc
KSP (options prefix `newton_march_`; GMRES + ILU, or LU on small grids, by default).
"""
from petsc4py import PETSc

from .linear import configure_default
from .problem import SolverError


class TimeMarching:
    def __init__(self, problem, backward, coupling, transpose):
        """backward: march from the last level (u) or the first (m); coupling: the weight
        w/dt of the neighbouring level; transpose: the levels' matrices are transposes of
        the stencil operators given to `set_level` (the Fokker–Planck block)."""
        grid = problem.grid
        self.problem, self.backward, self.coupling, self.transpose = problem, backward, coupling, transpose
        self.mats = [problem.stencil.matrix() for _ in range(problem.nt)]
        self.ksps = []
        for mat in self.mats:
            ksp = PETSc.KSP().create(comm=grid.da.getComm())
            ksp.setOptionsPrefix("newton_march_")
            configure_default(ksp, grid, rtol=1e-6)
            ksp.setOperators(mat)
            ksp.setFromOptions()
            self.ksps.append(ksp)
        self._b, self._x = grid.create_vec(), grid.create_vec()
        self.solves = self.iterations = 0

    def set_level(self, n, coefficients):
        """The diagonal block of level n from its stencil coefficients (already weighted)."""
        self.problem.stencil.assemble(self.mats[n], coefficients, transpose=self.transpose)
        self.ksps[n].setOperators(self.mats[n])

    def apply(self, pc, x, y):
        """y ← (the field's block)⁻¹ x."""
        nt = self.problem.nt
        xa = x.getArray(readonly=True).reshape(nt, -1)
        ya = y.getArray().reshape(nt, -1)
        previous = None
        for n in (range(nt - 1, -1, -1) if self.backward else range(nt)):
            rhs = self._b.getArray()
            rhs[:] = xa[n] if previous is None else xa[n] + self.coupling * ya[previous]
            self.ksps[n].solve(self._b, self._x)
            if self.ksps[n].getConvergedReason() < 0:
                raise SolverError(f"time-marching preconditioner: level {n} solve failed "
                                  f"(KSP reason {self.ksps[n].getConvergedReason()})")
            self.solves += 1
            self.iterations += self.ksps[n].getIterationNumber()
            ya[n] = self._x.getArray(readonly=True)
            previous = n
