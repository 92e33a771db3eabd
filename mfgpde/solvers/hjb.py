"""Backward HJB solve, implicit Euler, one PETSc SNES (Newton) per time step:

    (u^n − u^{n+1})/dt + ρ u^n − ν Δ_h u^n + H_h(x, D u^n; m^{n+1}) = 0,   u^{nt} = g(m^{nt})

with the Engquist–Osher numerical Hamiltonian and an assembled sparse Jacobian.
PETSc options prefix: `hjb_` (or the one given).
"""
import numpy as np
from petsc4py import PETSc

from ..stop import poll
from .linear import configure_default, dominance
from .problem import SolverError, sweep_guess
from .reasons import snes_reason

STEP_ATOL = 1e-13


class HJBStep:
    """Context behind the SNES residual and Jacobian callbacks for one time step."""

    def __init__(self, problem):
        self.problem = problem
        self.u_next = None
        self.density = None
        self.t = 0.0
        self.forcing = None
        self.last = None

    def residual(self, snes, u, f):
        pb, grid = self.problem, self.problem.grid
        padded = grid.padded(u)
        self.last = (padded, pb.linearisation(self.t, padded, self.density))  # SNES asks for J where it last evaluated F
        grid.set_owned(f, pb.hjb_residual(self.t, padded, self.u_next, self.density, up=self.last[1]))

    def jacobian(self, snes, u, J, P):
        pb = self.problem
        padded = pb.grid.padded(u)
        up = self.last[1] if self.last is not None and np.array_equal(self.last[0], padded) else None
        if self.forcing is not None:  # one Newton step should reach the target |F| <= atol
            atol = snes.getTolerances()[1]
            snes.getKSP().setTolerances(rtol=float(np.clip(0.5 * atol / max(snes.getFunctionNorm(), 1e-300),
                                                           *self.forcing)))
        pb.stencil.assemble(P, pb.hjb_jacobian(self.t, padded, self.density, up=up))
        if J != P:
            J.assemble()


class HJBSolver:
    def __init__(self, problem, prefix="hjb_", linear_rtol=1e-12):
        """linear_rtol: the Newton steps' linear tolerance (where the solve is iterative)."""
        self.problem = problem
        grid = problem.grid
        self.ctx = HJBStep(problem)
        self.snes = PETSc.SNES().create(comm=grid.da.getComm())
        self.snes.setOptionsPrefix(prefix)
        self.snes.setType(PETSc.SNES.Type.NEWTONLS)
        self.snes.setTolerances(rtol=1e-10, atol=1e-11, stol=1e-14, max_it=50)
        self._f = grid.create_vec()
        self._J = problem.stencil.matrix()
        self.snes.setFunction(self.ctx.residual, self._f)
        self.snes.setJacobian(self.ctx.jacobian, self._J)
        configure_default(self.snes.getKSP(), grid, linear_rtol, dominance(grid, problem.nu, problem.dt))
        self.snes.setFromOptions()
        # warm starts (a previous iterate) begin with a small residual, so rtol alone would
        # over-solve them: also stop at |F|_2 <= step_tol·|u^{n+1}|_∞/dt, with step_tol
        # STEP_ATOL·√N, a relative change of u far below any coupling tolerance, unless
        # set_accuracy loosens it (or -hjb_snes_atol is given)
        self.scaled_atol = not PETSc.Options().hasName(prefix + "snes_atol")
        self.step_tol = STEP_ATOL * float(np.sqrt(np.prod(grid.n)))
        self._u = grid.create_vec()
        self.newton_iterations = 0
        self.linear_iterations = 0

    def set_accuracy(self, step_tol, forcing=(1e-6, 1e-1)):
        """Inexact steps: Newton stops at |F|_2 <= step_tol·|u^{n+1}|_∞/dt, which bounds the
        step's sup error by about step_tol·|u^{n+1}|_∞ (the level matrix is at least I/dt),
        and each linear solve aims at that target (rtol within `forcing`), unless
        -hjb_snes_atol or -hjb_ksp_rtol is given."""
        opts, prefix = PETSc.Options(), self.snes.getOptionsPrefix()
        self.step_tol = step_tol
        self.ctx.forcing = None if opts.hasName(prefix + "ksp_rtol") or not self.scaled_atol else forcing

    def step(self, t, u_next, density, guess, name="HJB"):
        """u^n from u^{n+1} = u_next at time t, Newton started from `guess` (owned blocks)."""
        self.ctx.t, self.ctx.u_next, self.ctx.density = t, u_next, density
        grid = self.problem.grid
        if self.scaled_atol:
            scale = max(grid.max_abs(u_next), 1e-300) / self.problem.dt
            self.snes.setTolerances(atol=max(self.step_tol * scale, 1e-11))
        grid.set_owned(self._u, guess)
        self.snes.solve(None, self._u)
        reason = self.snes.getConvergedReason()
        if reason <= 0:
            raise SolverError(f"{name} Newton did not converge at t={t:.6g} ({snes_reason(reason, self.snes.getOptionsPrefix())})")
        self.newton_iterations += self.snes.getIterationNumber()
        self.linear_iterations += self.snes.getLinearSolveIterations()
        return self.problem.grid.owned(self._u).copy()

    def solve(self, m_path, u_path, warm=False, densities=None, previous=None):
        """Fill u_path (nt+1, *owned) backward in time for the densities m_path (or the
        Density of every level given).  Newton starts from u^{n+1}, with warm=True from the
        u_path[n] given (a previous iterate), or from `previous` (the sweep before, its
        change extrapolated: sweep_guess)."""
        pb = self.problem
        density = densities.__getitem__ if densities is not None else lambda n: pb.density(m_path[n], n)  # noqa: E731
        u_path[-1] = pb.terminal(density(pb.nt))
        for n in range(pb.nt - 1, -1, -1):
            poll(pb.grid.comm)
            if previous is not None:
                guess = sweep_guess(previous, u_path, n, -1)
            else:
                guess = u_path[n] if warm else u_path[n + 1]
            u_path[n] = self.step(pb.t[n], u_path[n + 1], density(n + 1), guess)
        return u_path
