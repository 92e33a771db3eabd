"""Damped Picard (fixed-point) coupling of the HJB and Fokker–Planck solves:

    u^{k+1} = HJB(m^k),  m̃ = FP(u^{k+1}; m^k),  m^{k+1} = (1 − θ) m^k + θ m̃,

stopped when the relative sup-changes of u and m are both below `tol`.  A model of several
populations gets one problem each; every iteration sweeps all of them against the means
of the previous iterate, and u, m carry a leading population axis.
"""
import time
from dataclasses import dataclass, field

import numpy as np
from mpi4py import MPI

from ..stop import StopRequested
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
    """max|new − old| / max|new| over whole paths (level by level: no path-sized temporaries)."""
    change = max((float(np.max(np.abs(a - b), initial=0.0)) for a, b in zip(new, old)), default=0.0)
    size = max((float(np.max(np.abs(a), initial=0.0)) for a in new), default=0.0)
    both = np.array([change, size])
    grid.comm.Allreduce(MPI.IN_PLACE, both, op=MPI.MAX)
    return both[0] / max(both[1], 1e-300)


def iteration_info(grid, k, du, dm, u, m_new, start, kind="picard"):
    """IterationInfo of a sweep that gave u and the density m_new (mass error, min m)."""
    masses = grid.integrate(m_new)
    finite = grid.comm.allreduce(bool(np.isfinite(m_new).all() and np.isfinite(u).all()), op=MPI.LAND)
    min_m = grid.comm.allreduce(min(float(np.min(m_new, initial=0.0)), 0.0), op=MPI.MIN)
    return IterationInfo(k, du, dm, float(np.max(np.abs(masses - masses[..., :1]))),
                         min_m, time.perf_counter() - start, finite, kind)


class PicardSolver:
    def __init__(self, problem, damping=0.5, tol=1e-8, max_iterations=200, monitors=(), on_state=None,
                 handover=False):
        """problem: an MFGProblem, or a list of them (one per population, one grid).
        on_state(k, u, m): called after every iteration with the state a restart needs
        (u of iteration k and the damped density the next iteration starts from; with
        `handover`, after the last iteration the undamped density the solution returns,
        which is where Newton goes on from)."""
        if not 0 < damping <= 1:
            raise ValueError("solver.damping: must be in (0, 1]")
        self.problems = list(problem) if isinstance(problem, (list, tuple)) else [problem]
        self.problem = self.problems[0]
        self.damping, self.tol, self.max_iterations, self.handover = damping, tol, max_iterations, handover
        self.monitors, self.on_state = list(monitors), on_state
        # inexact per-step Newton: the SNES tolerances set u's accuracy, the linear ones need
        # not (docs/benchmarks.md has the timings)
        self.hjbs = [HJBSolver(pb, linear_rtol=1e-6) for pb in self.problems]
        self.fps = [FPSolver(pb) for pb in self.problems]
        self.hjb, self.fp = self.hjbs[0], self.fps[0]

    def _share_means(self, m):
        """Tell every population's problem the means of all populations at every level."""
        if len(self.problems) > 1:
            grid = self.problem.grid
            means = np.stack([grid.integrate(m * xd) for xd in self.problem.x], axis=-1).swapaxes(0, 1)
            for pb in self.problems:
                pb.means = means

    def solve(self, state=None):
        """From m = m0 at every time, or from a saved state {iteration, u, m} (owned blocks)."""
        pb, grid, P = self.problem, self.problem.grid, len(self.problems)
        shape = (P, pb.nt + 1) + grid.owned_shape
        m0 = np.stack([p.initial_density() for p in self.problems])
        m = np.broadcast_to(m0[:, None], shape).copy() if state is None else state["m"].reshape(shape).copy()
        u = np.zeros(shape) if state is None else state["u"].reshape(shape).copy()
        first = 1 if state is None else state["iteration"] + 1
        u_old, m_new = np.zeros(shape), m.copy()
        start, converged, k = time.perf_counter(), False, first - 1
        du = dm = float("nan")
        squeeze = (lambda a: a[0]) if P == 1 else (lambda a: a)  # noqa: E731
        self.last = None if state is None else (state["iteration"], squeeze(u), squeeze(m))
        for k in range(first, self.max_iterations + 1):
            u_old[:] = u
            self._share_means(m)
            try:
                for i, (hjb, fp) in enumerate(zip(self.hjbs, self.fps)):
                    hjb.solve(m[i], u[i], warm=k > 1, previous=u_old[i] if k > 1 else None)
                    m_new[i, 0] = m0[i]
                    fp.solve(u[i], m[i], m_new[i])
            except SolverError as e:
                where = f", population {i + 1}" if P > 1 else ""
                raise SolverError(f"Picard iteration {k}{where}: {e}") from None
            except StopRequested as stop:  # u was being overwritten: u_old is iteration k − 1's
                if k > 1 or state is not None:
                    stop.state = (k - 1, squeeze(u_old), squeeze(m))
                raise
            du, dm = relative_change(grid, u, u_old), relative_change(grid, m_new, m)
            info = iteration_info(grid, k, du, dm, u, m_new, start)
            m = (1 - self.damping) * m + self.damping * m_new
            for monitor in self.monitors:
                monitor(info)
            if du < self.tol and dm < self.tol:
                converged = True
                break
            saved = m_new if self.handover and k == self.max_iterations else m
            self.last = (k, squeeze(u), squeeze(saved))
            if self.on_state is not None:
                self.on_state(*self.last)
        status = (f"converged in {k} Picard iterations" if converged else
                  f"not converged: {k} Picard iterations, |du| {du:.2e}, |dm| {dm:.2e} > tol {self.tol:.0e}")
        total = lambda solvers, name: sum(getattr(s, name) for s in solvers)  # noqa: E731
        stats = {"hjb_newton_iterations": total(self.hjbs, "newton_iterations"),
                 "hjb_linear_iterations": total(self.hjbs, "linear_iterations"),
                 "fp_linear_iterations": total(self.fps, "linear_iterations"),
                 "fp_solves": total(self.fps, "solves"),
                 "wall_time": time.perf_counter() - start}
        return Solution(pb, squeeze(u), squeeze(m_new), converged, k, status, stats)
