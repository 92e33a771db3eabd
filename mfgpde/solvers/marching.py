"""Inverse of one field's block of the space–time Newton Jacobian, by time marching.

The u block is block upper bidiagonal in time (row n: D_n u^n − (w/dt) u^{n+1}), the m
block block lower bidiagonal (row n + 1: A_nᵀ m^{n+1} − (w/dt) m^n): one grid-sized solve
per time level inverts it, backward for u and forward for m, which is what a Picard
sweep does, linearised: the Newton step costs grid solves instead of a space–time
factorisation (see matrix_free.BlockGaussSeidel).  Level solves by a PETSc KSP (options
prefix `newton_march_`; by default at most 9 iterations of GMRES + Jacobi, stopped when the
residual falls by 1e-3, or LU on small grids).
"""
import numpy as np
from petsc4py import PETSc

from ..stop import poll
from .problem import SolverError
from .reasons import ksp_reason

LEVEL_ITERATIONS = 9
MARCHING_DIRECT_MAX_POINTS = 5000  # one LU factor kept per level: small grids only


class TimeMarching:
    def __init__(self, problem, backward, coupling, transpose):
        """backward: march from the last level (u) or the first (m); coupling: the weight
        w/dt of the neighbouring level; transpose: the levels' matrices are transposes of
        the stencil operators given to `set_level` (the Fokker–Planck block)."""
        grid = problem.grid
        self.problem, self.backward, self.coupling, self.transpose = problem, backward, coupling, transpose
        self.mats = [problem.stencil.matrix() for _ in range(problem.nt)]
        comm = grid.da.getComm()
        # one KSP (one Krylov workspace) for all levels, each level its own PC: the PC keeps
        # what it set up for its matrix (an LU factor on small grids, a diagonal otherwise)
        self.ksp = ksp = PETSc.KSP().create(comm=comm)
        ksp.setOptionsPrefix("newton_march_")
        if grid.comm.Get_size() == 1 and (grid.dim == 1 or np.prod(grid.n) <= MARCHING_DIRECT_MAX_POINTS):
            ksp.setType(PETSc.KSP.Type.PREONLY)
            ksp.getPC().setType(PETSc.PC.Type.LU)
        else:
            # a small budget, as a smoother: the outer FGMRES corrects what a level solve
            # leaves.  Jacobi is the same on any partition, so the outer iterations are too;
            # block-local SOR and block Jacobi/ILU are not, and ASM's subdomain copies cost
            # more than they saved (docs/benchmarks.md)
            ksp.setType(PETSc.KSP.Type.GMRES)
            ksp.setPCSide(PETSc.PC.Side.RIGHT)
            ksp.setNormType(PETSc.KSP.NormType.UNPRECONDITIONED)
            ksp.setTolerances(rtol=1e-3, atol=1e-50, max_it=LEVEL_ITERATIONS)
            ksp.getPC().setType(PETSc.PC.Type.JACOBI)
            ksp.setInitialGuessNonzero(True)
        ksp.setFromOptions()
        pc_type = ksp.getPC().getType()
        self.pcs = []
        for mat in self.mats:
            pc = PETSc.PC().create(comm=comm)
            pc.setOptionsPrefix("newton_march_")
            pc.setType(pc_type)
            pc.setOperators(mat)
            pc.setFromOptions()
            self.pcs.append(pc)
        self._b, self._x = grid.create_vec(), grid.create_vec()
        self.solves = self.iterations = 0

    def set_level(self, n, coefficients):
        """The diagonal block of level n from its stencil coefficients (already weighted)."""
        self.problem.stencil.assemble(self.mats[n], coefficients, transpose=self.transpose)
        self.pcs[n].setOperators(self.mats[n])

    def solve(self, rhs, out):
        """out ← (the field's block)⁻¹ rhs, both (nt, N) arrays of the owned values (approximate
        where the level solves are iterative).  Each level's solve starts from its neighbour's
        solution (the fields are smooth in time)."""
        x = self._x.getArray()
        x[:] = 0.0
        previous = None
        for n in (range(self.problem.nt - 1, -1, -1) if self.backward else range(self.problem.nt)):
            poll(self.problem.grid.comm)
            b = self._b.getArray()
            b[:] = rhs[n] if previous is None else rhs[n] + self.coupling * out[previous]
            self.ksp.setPC(self.pcs[n])
            self.ksp.solve(self._b, self._x)
            reason = self.ksp.getConvergedReason()
            if reason < 0 and reason != PETSc.KSP.ConvergedReason.DIVERGED_MAX_IT:
                raise SolverError(f"time-marching preconditioner: level {n} solve failed "
                                  f"({ksp_reason(reason, 'newton_march_')})")
            self.solves += 1
            self.iterations += self.ksp.getIterationNumber()
            out[n] = self._x.getArray(readonly=True)
            previous = n
