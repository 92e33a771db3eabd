"""Damped Picard (fixed-point) coupling of the HJB and Fokker–Planck solves:

    u^{k+1} = HJB(m^k),  m̃ = FP(u^{k+1}; m^k),  m^{k+1} = (1 − θ) m^k + θ m̃,

stopped when the relative sup-changes of u and m are both below `tol`.
"""
import time
from dataclasses import dataclass, field

import numpy as np
from mpi4py import MPI

from .fp import FPSolver
from .hjb import HJBSolver
from .monitors import IterationInfo
from .problem import SolverError


@dataclass
class Solution:
    """Owned blocks of u and m on every time level, and how the solve ended."""
    problem: object
    u: np.ndarray
    m: np.ndarray
    converged: bool
    iterations: int
    status: str
    stats: dict = field(default_factory=dict)


def relative_change(grid, new, old):
    return grid.max_abs(new - old) / max(grid.max_abs(new), 1e-300)


class PicardSolver:
    def __init__(self, problem, damping=0.5, tol=1e-8, max_iterations=200, monitors=(), on_state=None):
        """on_state(k, u, m): called after every iteration with the state a restart needs
        (u of iteration k and the damped density the next iteration starts from)."""
        if not 0 < damping <= 1:
            raise ValueError("solver.damping: must be in (0, 1]")
        self.problem, self.damping, self.tol, self.max_iterations = problem, damping, tol, max_iterations
        self.monitors, self.on_state = list(monitors), on_state
        self.hjb, self.fp = HJBSolver(problem), FPSolver(problem)

    def solve(self, state=None):
        """From m = m0 at every time, or from a saved state {iteration, u, m} (owned blocks)."""
        pb, grid = self.problem, self.problem.grid
        shape = (pb.nt + 1,) + grid.owned_shape
        m0 = pb.initial_density()
        m = np.broadcast_to(m0, shape).copy() if state is None else state["m"].copy()
        u = np.zeros(shape) if state is None else state["u"].copy()
        first = 1 if state is None else state["iteration"] + 1
        u_old, m_new = np.zeros(shape), m.copy()
        start, converged, k = time.perf_counter(), False, first - 1
        du = dm = float("nan")
        for k in range(first, self.max_iterations + 1):
            u_old[:] = u
            try:
                self.hjb.solve(m, u, warm=k > 1)
                m_new[0] = m0
                self.fp.solve(u, m, m_new)
            except SolverError as e:
                raise SolverError(f"Picard iteration {k}: {e}") from None
            du, dm = relative_change(grid, u, u_old), relative_change(grid, m_new, m)
            info = self._info(k, du, dm, u, m_new, start)
            m = (1 - self.damping) * m + self.damping * m_new
            for monitor in self.monitors:
                monitor(info)
            if du < self.tol and dm < self.tol:
                converged = True
                break
            if self.on_state is not None:
                self.on_state(k, u, m)
        status = (f"converged in {k} Picard iterations" if converged else
                  f"not converged: {k} Picard iterations, |du| {du:.2e}, |dm| {dm:.2e} > tol {self.tol:.0e}")
        stats = {"hjb_newton_iterations": self.hjb.newton_iterations,
                 "hjb_linear_iterations": self.hjb.linear_iterations,
                 "fp_linear_iterations": self.fp.linear_iterations,
                 "fp_solves": self.fp.solves,
                 "wall_time": time.perf_counter() - start}
        return Solution(pb, u, m_new, converged, k, status, stats)

    def _info(self, k, du, dm, u, m_new, start):
        grid = self.problem.grid
        masses = grid.integrate(m_new)
        finite = grid.comm.allreduce(bool(np.isfinite(m_new).all() and np.isfinite(u).all()), op=MPI.LAND)
        return IterationInfo(k, du, dm, float(np.max(np.abs(masses - masses[0]))),
                             -grid.max_abs(np.minimum(m_new, 0.0)), time.perf_counter() - start, finite)
