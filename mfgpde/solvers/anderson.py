"""Anderson-accelerated Picard coupling (PETSc SNESANDERSON) of the HJB and Fokker–Planck
solves, the default:

    x = Φ(x),   Φ(x) = the density path m̃ = FP(u; x), u = HJB(x),

solved as F(x) = x − Φ(x) = 0 by Anderson mixing of depth `depth` (`-anderson_snes_anderson_m`).
The unknown x is what the model reads of the density: the mean path μ^1..μ^nt (nt·dim
numbers on rank 0) for a model that reads it only through its mean, otherwise the density
path m^1..m^nt.  Every evaluation is one exact HJB + Fokker–Planck sweep, so u and m̃ of
the last evaluation are a Picard iterate: m̃ conserves mass and stays non-negative.
Stopped when the relative sup-changes of u and m̃ between evaluations and the relative
residual |x − Φ(x)| are all below `tol`.  Options prefix `anderson_`.
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

CONVERGED = PETSc.SNES.ConvergedReason.CONVERGED_FNORM_ABS
# Inexact sweeps: evaluation k solves its HJB steps and Fokker–Planck steps to the relative
# accuracy eta = FORCING · (the changes of evaluation k − 1), within [FLOOR · tol, LOOSEST].
FORCING, FLOOR, LOOSEST = 1e-4, 1e-1, 1e-4


class AndersonSolver:
    def __init__(self, problem, tol=1e-8, max_iterations=200, depth=5, monitors=(), on_state=None, fallback=None):
        """on_state(k, u, m) after every evaluation k (u and m̃, the state a restart needs).
        fallback: a function giving the solver (damped Picard) that starts afresh where a
        sweep fails or the iterations end without reducing the residual |dm|."""
        self.problem, self.tol, self.monitors, self.on_state = problem, tol, list(monitors), on_state
        self.fallback = fallback
        grid, model = problem.grid, problem.model
        self.through_mean = bool(model.couples_through_mean and not model.couples_locally)
        self.hjb = HJBSolver(problem, linear_rtol=1e-6)
        self.fp = FPSolver(problem)
        local = (problem.nt * grid.dim if grid.rank == 0 else 0) if self.through_mean else \
            problem.nt * int(np.prod(grid.owned_shape))
        comm = grid.da.getComm()
        self._X = PETSc.Vec().createMPI((local, PETSc.DECIDE), comm=comm)
        self._F = self._X.duplicate()
        self.snes = snes = PETSc.SNES().create(comm=comm)
        snes.setOptionsPrefix("anderson_")
        snes.setType(PETSc.SNES.Type.ANDERSON)
        snes.setTolerances(max_it=max_iterations - 1)  # the first evaluation is iteration 1
        snes.setFunction(self._evaluate, self._F)
        snes.setConvergenceTest(self._converged)
        opts = PETSc.Options()
        if not opts.hasName("anderson_snes_anderson_m"):
            opts.setValue("anderson_snes_anderson_m", depth)
        snes.setFromOptions()

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
            m = np.maximum(x.reshape((pb.nt,) + grid.owned_shape), 0.0)  # mixing may undershoot 0
            return [None] + [pb.density(m[n - 1], n) for n in range(1, pb.nt + 1)]
        mu = grid.comm.bcast(np.array(x).reshape(pb.nt, grid.dim) if grid.rank == 0 else None, root=0)
        mass = grid.integrate(self.m)
        return [None] + [Density(m=self.m[n], mass=mass[n], mean=mu[n - 1], means=mu[n - 1][None])
                         for n in range(1, pb.nt + 1)]

    # -- SNES callbacks -------------------------------------------------------------
    def _evaluate(self, snes, X, F):
        grid = self.problem.grid
        x = X.getArray(readonly=True)
        densities = self._densities(x)
        self.u_prev[:], self.m_prev[:] = self.u, self.m
        first = self.k == self.first
        previous = LOOSEST / FORCING if first else max(self.du, self.dm)
        eta = min(LOOSEST, max(FORCING * previous, FLOOR * self.tol))
        self.hjb.set_accuracy(eta)
        self.fp.set_accuracy(eta)
        self.hjb.solve(None, self.u, warm=not first or self.warm, densities=densities)
        self.m[0] = self.m0
        self.fp.solve(self.u, None, self.m, guess=None if first else self.m_prev, densities=densities)
        phi = self._unknown(self.m)
        f = F.getArray()
        f[:] = x - phi
        sup = lambda a: grid.comm.allreduce(float(np.max(np.abs(a), initial=0.0)), op=MPI.MAX)  # noqa: E731
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

    def _converged(self, snes, it, norms):
        return CONVERGED if self.done else 0

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
        self._X.getArray()[:] = self._unknown(self.m)
        self.start = time.perf_counter()
        try:
            self.snes.solve(None, self._X)
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
