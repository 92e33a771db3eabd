"""Forward Fokker–Planck solve, implicit Euler, the adjoint of the linearised HJB:

    (m^{n+1} − m^n)/dt − ν Δ_h m^{n+1} + L_{u^n}ᵀ m^{n+1} = 0,   m^0 = m0,

L_u v = Σ_d ∂H/∂p_d(x, p̃(u); m^{n+1}) D̃_d v.  Rows of L and Δ_h sum to zero, so the
columns of the FP matrix sum to 1/dt and mass is conserved exactly; the matrix is an
M-matrix, so m stays non-negative.  One PETSc KSP per step, options prefix `fp_`.
"""
import numpy as np
from petsc4py import PETSc

from ..stop import poll
from .linear import configure_default, dominance
from .problem import SolverError, sweep_guess
from .reasons import ksp_reason

RTOL = 1e-14  # exact steps: mass conserved to round-off by the column sums


class FPSolver:
    def __init__(self, problem):
        self.problem = problem
        grid = problem.grid
        self._A = problem.stencil.matrix()
        self.ksp = PETSc.KSP().create(comm=grid.da.getComm())
        self.ksp.setOptionsPrefix("fp_")
        configure_default(self.ksp, grid, RTOL, dominance(grid, problem.nu, problem.dt))
        self.ksp.setFromOptions()
        # Krylov solves start from m^n (m^{n+1} differs from it by O(dt))
        self.iterative = self.ksp.getType() != PETSc.KSP.Type.PREONLY
        self.ksp.setInitialGuessNonzero(self.iterative)
        self._b, self._m = grid.create_vec(), grid.create_vec()
        self.linear_iterations = 0
        self.solves = 0
        self.loose, self.eta = False, 0.0

    def set_accuracy(self, eta):
        """Solve each step to |r|_2 <= eta·|b|_∞ (b = m^n/dt), which bounds its sup error by
        about eta·|m^n|_∞, unless -fp_ksp_rtol is given; eta = 0: the default 1e-14·|b|_2.
        A loosened solve's negative round-off is cut and its mass set to m^n's, so mass
        stays conserved to round-off and m non-negative."""
        self.loose = bool(eta > 0 and self.iterative and not PETSc.Options().hasName("fp_ksp_rtol"))
        self.eta = eta
        if not self.loose and self.iterative and not PETSc.Options().hasName("fp_ksp_rtol"):
            self.ksp.setTolerances(rtol=RTOL)

    def solve(self, u_path, m_coupling, m_path, guess=None, densities=None):
        """Fill m_path[1:] from m_path[0]; drift from u_path and the densities m_coupling
        (the iterate the HJB saw, or the Density of every level given).  Krylov solves
        start from guess[n + 1] with the change extrapolated (sweep_guess) where a path
        `guess` is given (a previous or nearly converged one), otherwise from m^n."""
        pb, grid = self.problem, self.problem.grid
        mass = grid.integrate(m_path[0]) if self.loose else None
        for n in range(pb.nt):
            poll(grid.comm)
            grid.set_owned(self._b, u_path[n])
            density = densities[n + 1] if densities is not None else pb.density(m_coupling[n + 1], n + 1)
            coeffs = pb.fp_operator(pb.t[n], grid.padded(self._b), density)
            pb.stencil.assemble(self._A, coeffs, transpose=True)
            self.ksp.setOperators(self._A)
            grid.set_owned(self._b, m_path[n] / pb.dt)
            if self.loose:
                sup, l2 = self._b.norm(PETSc.NormType.INFINITY), self._b.norm()
                self.ksp.setTolerances(rtol=float(np.clip(self.eta * sup / max(l2, 1e-300), 1e-14, 0.1)))
            if self.iterative:
                grid.set_owned(self._m, m_path[n] if guess is None else sweep_guess(guess, m_path, n + 1, 1))
            self.ksp.solve(self._b, self._m)
            reason = self.ksp.getConvergedReason()
            if reason <= 0:
                raise SolverError(f"Fokker–Planck solve failed at t={pb.t[n + 1]:.6g} ({ksp_reason(reason, 'fp_')})")
            self.linear_iterations += self.ksp.getIterationNumber()
            self.solves += 1
            m_path[n + 1] = grid.owned(self._m)
            if self.loose:
                np.maximum(m_path[n + 1], 0.0, out=m_path[n + 1])
                m_path[n + 1] *= mass / max(grid.integrate(m_path[n + 1]), 1e-300)
        return m_path
