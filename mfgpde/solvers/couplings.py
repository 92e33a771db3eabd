"""Newton coupling behind the same interface as Picard: a few damped Picard iterations
hand over to Newton on the whole system; the converged u is followed by one Fokker–Planck
sweep, so m conserves mass to round-off and is exactly the density u drives."""
import time

import numpy as np
from petsc4py import PETSc

from ..models import MFGModel
from ..stop import StopRequested
from .newton import NewtonSolver
from .picard import PicardSolver, Solution
from .problem import SolverError
from .reasons import snes_reason


# Space–time unknowns up to which the default direct (MUMPS) Newton solve fits in ~24 GB:
# measured 1 GB at 1.3e5 unknowns in 2-D (fill grows like a 3-D problem), 0.13 GB at
# 1.6e5 in 1-D.
DIRECT_NEWTON_MAX = {1: 10_000_000, 2: 1_000_000, 3: 1_000_000}


def direct_newton_too_large(problem):
    """True when the space–time system is beyond what the default direct solve can factor."""
    unknowns = 2 * problem.nt * int(np.prod(problem.grid.n))
    return unknowns > DIRECT_NEWTON_MAX[problem.grid.dim], unknowns


class NewtonCoupling:
    def __init__(self, problem, damping=0.5, picard_iterations=1, tol=1e-10, max_iterations=30,
                 mass_tol=1e-12, monitors=(), on_state=None, linear="marching"):
        if type(problem.model).d2H_dp2 is MFGModel.d2H_dp2:
            raise ValueError(f"solver.coupling: model '{problem.model.name}' provides no d2H_dp2, "
                             "which Newton needs (use coupling = \"picard\")")
        too_large, unknowns = direct_newton_too_large(problem)
        user_solver = any(PETSc.Options().hasName(f"newton_{k}") for k in ("ksp_type", "pc_type"))
        if too_large and linear in ("direct", "fieldsplit") and not user_solver:
            raise ValueError(f"solver.coupling: Newton's space-time factorisations for {unknowns} unknowns would "
                             "not fit in memory; use newton_linear = \"marching\" or choose "
                             "-newton_ksp_type/-newton_pc_type")
        if linear == "marching" and PETSc.Options().hasName("newton_pc_type"):
            raise ValueError("solver.newton_linear: \"marching\" keeps no assembled Jacobian for "
                             "-newton_pc_type; use newton_linear = \"auto\" or \"direct\"")
        if picard_iterations < 1:
            raise ValueError("solver.picard_iterations: Newton starts after at least one Picard iteration")
        self.problem, self.mass_tol = problem, mass_tol
        self.picard = PicardSolver(problem, damping=damping, tol=0.0, max_iterations=picard_iterations, handover=True,
                                   monitors=monitors, on_state=on_state)
        self.newton = NewtonSolver(problem, tol=tol, max_iterations=max_iterations, monitors=monitors,
                                   linear=linear, on_state=on_state)

    @staticmethod
    def _resumed(state):
        """The Newton iterations behind a restart state: its iteration less the Picard rows
        of its history (Picard states have none)."""
        if state is None:
            return 0
        return state["iteration"] - int(np.sum(np.asarray(state["history"].get("newton", [])) == 0))

    def solve(self, state=None):
        """Newton after the Picard hand-over, or resumed from a saved state: a Picard one
        finishes the hand-over, a Newton one (iteration beyond picard_iterations) goes on
        with Newton from that iterate."""
        pb, grid = self.problem, self.problem.grid
        start = time.perf_counter()
        warm = self.picard.solve(state)  # a Newton state comes back unchanged
        resumed = self._resumed(state)
        self.newton.offset, self.newton.resumed = warm.iterations, resumed
        if resumed:  # newton_max_iterations counts the iterations before the restart too
            max_it = self.newton.snes.getTolerances()[3]
            self.newton.snes.setTolerances(max_it=max(max_it - resumed, 0))
        try:
            u, m_newton, converged, its, reason = self.newton.solve(warm.u, warm.m)
        except StopRequested as stop:
            stop.state = stop.state or self.picard.last  # no Newton step done: the hand-over's state
            raise
        its += resumed
        m = np.empty_like(m_newton)
        m[0] = m_newton[0]
        try:
            self.picard.fp.solve(u, m_newton, m, guess=m_newton)
        except StopRequested as stop:
            stop.state = (self.newton.offset + self.newton.snes.getIterationNumber(), u, m_newton)
            raise
        drift = float(np.max(np.abs(grid.integrate(m) - grid.integrate(m[0]))))
        if converged and drift > self.mass_tol:
            raise SolverError(f"mass drifted by {drift:.2e} after Newton")
        picard_its = warm.iterations - resumed
        status = (f"converged in {its} Newton iterations after {picard_its} Picard" if converged else
                  f"not converged: Newton stopped after {its} iterations ({snes_reason(reason, 'newton_')})")
        fp = self.picard.fp  # the final sweep's solves count too
        stats = {**warm.stats, "fp_linear_iterations": fp.linear_iterations, "fp_solves": fp.solves,
                 "newton_iterations": its,
                 "newton_linear_iterations": self.newton.snes.getLinearSolveIterations(),
                 "newton_grid_solves": sum(t.solves for t in self.newton.levels.marchings) if self.newton.levels else 0,
                 "wall_time": time.perf_counter() - start}
        return Solution(pb, u, m, converged, picard_its + its, status, stats)
