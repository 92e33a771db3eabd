"""Anderson-accelerated Picard coupling of the HJB and Fokker–Planck solves, the default:

    x = Φ(x),   Φ(x) = the density path m̃ = FP(u; x), u = HJB(x),

solved by Anderson mixing of depth `depth` (`-anderson_m`; type II) with mixing parameter β
(`-anderson_beta`):  with f_k = Φ(x_k) − x_k,

    γ = argmin |f_k − ΔF γ|_2,   x_{k+1} = Φ(x_k) − ΔG γ − (1 − β)(f_k − ΔF γ),

ΔF, ΔG the last `depth` differences of f and Φ.  The differences are kept in single
precision: they only steer the next iterate, which every evaluation checks exactly, and a
density path's history then costs half (PETSc's SNESANDERSON keeps 2·depth + 7 double
vectors, 1 GB of the 1.5 GB of a 257²×100 congestion run).

The unknown x is what the model reads of the density: the mean path μ^1..μ^nt (nt·dim
numbers on rank 0) for a model that reads it only through its mean, otherwise the density
path m^1..m^nt.  Every evaluation is one HJB + Fokker–Planck sweep, solved to a relative
accuracy set by the previous evaluation's changes (FORCING below), so u and m̃ of the last
evaluation are a Picard iterate to a tenth of `tol`: m̃ conserves mass and stays
non-negative.
Stopped when the relative sup-changes of u and m̃ between evaluations and the relative
residual |x − Φ(x)| are all below `tol`.  A mixed density path is cut at 0 before it is
evaluated.
"""
import time

import numpy as np
from mpi4py import MPI
from petsc4py import PETSc

from ..models import Density
from ..stop import StopRequested
from .fp import FPSolver
from .hjb import HJBSolver
from .picard import Solution, iteration_info, relative_change
from .problem import SolverError

# Inexact sweeps: evaluation k solves its HJB steps and Fokker–Planck steps to the relative
# accuracy eta = FORCING · (the changes of evaluation k − 1), within [FLOOR · tol, LOOSEST].
FORCING, FLOOR, LOOSEST = 1e-4, 1e-1, 1e-4
# Mixing parameter β of the density path: the 2-D congestion study takes 14 sweeps with
# β = 0.8 and 16 with β = 1 at 257²×100 (13 and 15 at 129²×50).  The mean path keeps
# β = 1: the 2-D LQ study takes 9 sweeps with β = 0.7 against 8 at 129²×50.
BETA_DENSITY = 0.8


class AndersonSolver:
    def __init__(self, problem, tol=1e-8, max_iterations=200, depth=5, monitors=(), on_state=None, fallback=None):
        """on_state(k, u, m) after every evaluation k (u and m̃, the state a restart needs).
        fallback: a function giving the solver (damped Picard) that starts afresh where a
        sweep fails or the iterations end without reducing the residual |dm|."""
        self.problem, self.tol, self.monitors, self.on_state = problem, tol, list(monitors), on_state
        self.fallback = fallback
        model = problem.model
        self.through_mean = bool(model.couples_through_mean and not model.couples_locally)
        self.hjb = HJBSolver(problem, linear_rtol=1e-6)
        self.fp = FPSolver(problem)
        self.max_iterations = max_iterations
        self.depth = PETSc.Options().getInt("anderson_m", depth)
        if self.depth < 1:
            raise ValueError("-anderson_m: the mixing depth must be at least 1")
        self.beta = PETSc.Options().getReal("anderson_beta", 1.0 if self.through_mean else BETA_DENSITY)
        if not 0.0 < self.beta <= 1.0:
            raise ValueError("-anderson_beta: the mixing parameter must lie in (0, 1]")

    # -- the unknown and the densities the model sees ---------------------------------
    def _means(self, m_path):
        """(nt+1, dim) means ∫ x m^n dx, on every rank."""
        return np.stack([self.problem.grid.integrate(m_path * xd) for xd in self.problem.x], axis=-1)

    def _unknown(self, m_path):
        """x for a density path (owned values, levels 0..nt)."""
        if self.through_mean:
            means = self._means(m_path)[1:].ravel()  # collective
            return means if self.problem.grid.rank == 0 else means[:0]
        return m_path[1:].ravel()

    def _densities(self, x):
        """Density seen at levels 0..nt for the unknown x (index 0 unused)."""
        pb, grid = self.problem, self.problem.grid
        if not self.through_mean:
            m = x.reshape((pb.nt,) + grid.owned_shape)
            return [None] + [pb.density(m[n - 1], n) for n in range(1, pb.nt + 1)]
        mu = grid.comm.bcast(np.array(x).reshape(pb.nt, grid.dim) if grid.rank == 0 else None, root=0)
        mass = grid.integrate(self.m)
        return [None] + [Density(m=self.m[n], mass=mass[n], mean=mu[n - 1], means=mu[n - 1][None])
                         for n in range(1, pb.nt + 1)]

    # -- one evaluation and the mixing ----------------------------------------------
    def _evaluate(self, x, f):
        """Φ(x) (a view of m̃'s levels 1..nt, or the means) after one sweep, and f ← Φ(x) − x
        (single precision); sets du, dm."""
        grid = self.problem.grid
        densities = self._densities(x)
        self.u_prev[:], self.m_prev[:] = self.u, self.m
        first = self.k == self.first
        previous = LOOSEST / FORCING if first else max(self.du, self.dm)
        eta = min(LOOSEST, max(FORCING * previous, FLOOR * self.tol))
        self.hjb.set_accuracy(eta)
        self.fp.set_accuracy(eta)
        self.hjb.solve(None, self.u, warm=not first or self.warm, densities=densities,
                       previous=None if first else self.u_prev)
        self.m[0] = self.m0
        self.fp.solve(self.u, None, self.m, guess=None if first else self.m_prev, densities=densities)
        phi = self._unknown(self.m)
        sup = lambda a: grid.comm.allreduce(float(np.max(np.abs(a), initial=0.0)), op=MPI.MAX)  # noqa: E731
        np.subtract(phi, x, out=f, casting="unsafe")
        residual = sup(f) / max(sup(phi), 1e-300)
        du = relative_change(grid, self.u, self.u_prev)
        dm = max(relative_change(grid, self.m, self.m_prev), residual)
        info = iteration_info(grid, self.k, du, dm, self.u, self.m, self.start, kind="anderson")
        for monitor in self.monitors:
            monitor(info)
        self.done = du < self.tol and dm < self.tol
        if self.on_state is not None and not self.done:
            self.on_state(self.k, self.u, self.m)
        self.du, self.dm = du, dm
        if self.k == self.first:
            self.first_dm = dm
        self.k += 1
        return phi

    def _mix(self, x):
        """Anderson's iteration from x until converged or out of iterations (x is reused)."""
        comm = self.problem.grid.comm
        dot = lambda a, b: np.einsum("i,i->", a, b, dtype=np.float64)  # noqa: E731  (no double copies)
        dF, dG = [], []  # the last `depth` differences, single precision
        f, f_prev, g_prev = np.empty(x.size, np.float32), None, None
        while True:
            if not self.through_mean:
                np.maximum(x, 0.0, out=x)  # mixing may undershoot 0
            g = self._evaluate(x, f)
            if self.done or self.k > self.max_iterations:
                return
            if f_prev is not None:  # Φ of the evaluation before is m_prev's levels (or kept means)
                g_prev = g_prev if self.through_mean else self._unknown(self.m_prev)
                dF.append(np.subtract(f, f_prev, out=f_prev))
                dG.append(np.subtract(g, g_prev, out=np.empty_like(f), casting="unsafe"))
                if len(dF) > self.depth:
                    del dF[0], dG[0]
            f_prev, f = f, np.empty_like(f)
            g_prev = g.copy() if self.through_mean else None
            x[:] = g
            if self.beta != 1.0:  # ΔX = ΔG − ΔF: the damped step needs no x history
                x -= (1.0 - self.beta) * f_prev
            if dF:
                local = np.array([[dot(a, b) for b in dF] + [dot(a, f_prev)] for a in dF])
                system = comm.allreduce(local)  # the normal equations ΔFᵀΔF γ = ΔFᵀ f, one reduction
                gamma = np.linalg.lstsq(system[:, :-1], system[:, -1], rcond=1e-13)[0]
                for c, d, e in zip(gamma, dG, dF):
                    x -= c * d
                    if self.beta != 1.0:
                        x += (1.0 - self.beta) * c * e

    def solve(self, state=None):
        """From m = m0 at every time, or from a saved state {iteration, u, m} (owned blocks)."""
        pb, grid = self.problem, self.problem.grid
        shape = (pb.nt + 1,) + grid.owned_shape
        self.m0 = pb.initial_density()
        self.m = np.broadcast_to(self.m0, shape).copy() if state is None else state["m"].reshape(shape).copy()
        self.u = np.zeros(shape) if state is None else state["u"].reshape(shape).copy()
        self.u_prev, self.m_prev = np.empty(shape), np.empty(shape)
        self.first = self.k = 1 if state is None else state["iteration"] + 1
        self.warm, self.done = state is not None, False
        self.du = self.dm = self.first_dm = float("nan")
        x = np.array(self._unknown(self.m))
        self.start = time.perf_counter()
        try:
            self._mix(x)
        except SolverError as e:
            if self.fallback is None:
                raise SolverError(f"Anderson iteration {self.k}: {e}") from None
            return self._fall_back(f"Anderson iteration {self.k}: {e}")
        except StopRequested as stop:  # u, m were being overwritten: u_prev, m_prev are evaluation k − 1's
            if self.k > 1:
                stop.state = (self.k - 1, self.u_prev, self.m_prev)
            raise
        k = self.k - 1
        converged = self.done
        if not converged and self.fallback is not None and not self.dm < self.first_dm:
            return self._fall_back(f"{k} Anderson iterations did not reduce |dm| (from {self.first_dm:.2e} "
                                   f"to {self.dm:.2e})")
        status = (f"converged in {k} Anderson iterations" if converged else
                  f"not converged: {k} Anderson iterations, |du| {self.du:.2e}, |dm| {self.dm:.2e} > tol {self.tol:.0e}")
        self.u_prev = self.m_prev = None  # the solution is what stays
        stats = {"hjb_newton_iterations": self.hjb.newton_iterations,
                 "hjb_linear_iterations": self.hjb.linear_iterations,
                 "fp_linear_iterations": self.fp.linear_iterations, "fp_solves": self.fp.solves,
                 "wall_time": time.perf_counter() - self.start}
        return Solution(pb, self.u, self.m, converged, k, status, stats)

    def _fall_back(self, why):
        if self.problem.grid.rank == 0:
            print(f"mfgpde: {why}; starting again with damped Picard", flush=True)
        solution = self.fallback().solve()
        solution.status += f" (after {why})"
        return solution
