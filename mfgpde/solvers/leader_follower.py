"""The reduced master system of a mean field Stackelberg game (Huang & Yang 2020), backward in time
with zero terminal values:

    leader,   on (x0, z):      ρV0 = ∂tV0 + ½σ0² ∂²x0 V0 + min_u0 [L0 + f0 ∂x0V0 + ż(u0) ∂zV0]
    follower, on (x0, x1, z):  ρV1 = ∂tV1 + ½σ0² ∂²x0 V1 + ½σ² ∂²x1 V1
                                      + min_u1 [L(u0*, u1) + f(u0*, u1) ∂x1V1] + f0(u0*) ∂x0V1 + ż(u0*) ∂zV1

The measure derivatives became transport along z with the population's mean drift
ż(u0) = f(x0, z, z, u0, û1(u0)), û1 the followers' response at their mean, from ∂x1V1 on
the diagonal x1 = z (centred): the leader anticipates how the followers answer its
control (Stackelberg ordering); u0* is the leader's minimiser.  Each equation is one
ControlledHJB step solved by HJBSolver (PETSc SNES, prefixes `leader_` and `follower_`).
Both equations run backward, so their coupling closes within each time level n:

- "lagged" (default): one sweep, the leader reading ∂x1V1 of level n + 1, the follower
  reading u0* of level n: semi-implicit, first order in time like implicit Euler itself;
- "picard": sweeps leader → follower at level n until ∂x1V1 on the diagonal, the only
  thing the leader reads of the follower, changes by less than `tol` (relative): the
  fully implicit coupling.  Where the discrete leader's control jumps between two
  equally good controls the sweeps can cycle; that is reported, never returned;
- "newton": the fully implicit coupling by one PETSc SNES on both equations of the level
  (prefix `coupled_`), started from the lagged sweep: the Jacobian is applied matrix-free
  (differences of the residual), preconditioned by the two equations' own Jacobians.
"""
import time
from dataclasses import dataclass, field

import numpy as np
from petsc4py import PETSc

from ..grids.box import concatenated_indices
from ..models.leader_follower import control_slope
from ..stop import StopRequested, poll
from .controlled import ControlledDrift, ControlledHJB
from .hjb import HJBSolver
from .problem import SolverError
from .reasons import snes_reason

COUPLINGS = ("lagged", "picard", "newton")
COUNTS = ("sweeps", "leader_newton_iterations", "follower_newton_iterations", "linear_iterations",
          "coupled_newton_iterations")  # per level, saved in checkpoints


@dataclass
class LeaderFollowerSolution:
    """Owned blocks per time level: V0, u0, zdot on the leader grid; V1, u1 on the follower's."""
    V0: np.ndarray
    V1: np.ndarray
    u0: np.ndarray
    zdot: np.ndarray
    u1: np.ndarray
    converged: bool
    status: str
    stats: dict = field(default_factory=dict)


class LeaderFollowerSolver:
    def __init__(self, model, leader_grid, follower_grid, T, nt, coupling="lagged", tol=1e-9, max_iterations=50,
                 progress=None):
        """leader_grid: axes (x0, z); follower_grid: axes (x0, x1, z) with x1 the same axis as z."""
        if coupling not in COUPLINGS:
            raise ValueError(f"solver.coupling: one of {', '.join(COUPLINGS)} for a leader-follower game, "
                             f"got {coupling!r}")
        if follower_grid.n[1] != follower_grid.n[2] or follower_grid.lower[1:] != (leader_grid.lower[1],) * 2 \
                or follower_grid.upper[1:] != (leader_grid.upper[1],) * 2 or follower_grid.n[::2] != leader_grid.n:
            raise ValueError("grid: the follower's x1 axis must be the z axis, and x0, z shared with the leader")
        self.model, self.tol, self.max_iterations, self.progress = model, tol, max_iterations, progress
        self.coupling = coupling
        self.g0, self.g1 = leader_grid, follower_grid
        nu0, nu = 0.5 * model.sigma0 ** 2, 0.5 * model.sigma ** 2
        self.leader = ControlledHJB(leader_grid, model.rho, [nu0, 0.0], T, nt)
        self.follower = ControlledHJB(follower_grid, model.rho, [nu0, nu, 0.0], T, nt)
        self.leader_hjb = HJBSolver(self.leader, prefix="leader_")
        self.follower_hjb = HJBSolver(self.follower, prefix="follower_")
        self._v0, self._v1 = leader_grid.create_vec(), follower_grid.create_vec()
        self.joint = JointLevel(self) if coupling == "newton" else None

    def leader_drift(self, p1bar):
        """The leader's equation at one level, the followers' ∂x1V1 at their mean given."""
        m, (x0, z) = self.model, self.g0.local_coordinates()
        a_x0, c_x0 = control_slope(m.leader_drift, x0, z)
        s1 = control_slope(m.follower_drift, x0, z, z, 0.0)[1] * p1bar
        zdot = lambda u0: m.follower_drift(x0, z, z, u0, m.follower_control(x0, z, z, u0, s1))  # noqa: E731
        a_z = np.asarray(zdot(0.0), dtype=float)
        low, high = m.leader_bounds()
        return ControlledDrift([a_x0, a_z], [c_x0, zdot(1.0) - a_z], cost=lambda u: m.leader_cost(x0, z, u),
                               argmin=lambda s: m.leader_control(x0, z, s), low=low, high=high)

    def follower_drift(self, u0_full, zdot_full):
        """The follower's equation at one level, the leader's control and the mean drift given
        whole on (x0, z)."""
        m, g1 = self.model, self.g1
        x0, x1, z = g1.local_coordinates()
        u0, zdot = g1.restrict(u0_full, (0, 2)), g1.restrict(zdot_full, (0, 2))
        a_x1, c_x1 = control_slope(m.follower_drift, x0, x1, z, u0)
        return ControlledDrift([m.leader_drift(x0, z, u0), a_x1, zdot], [0.0, c_x1, 0.0],
                               cost=lambda u: m.follower_cost(x0, x1, z, u0, u),
                               argmin=lambda s: m.follower_control(x0, x1, z, u0, s))

    def mean_gradient(self, V1):
        """Centred ∂x1V1 on the diagonal x1 = z, as the leader grid's owned block."""
        self.g1.set_owned(self._v1, V1)
        padded = self.g1.padded(self._v1)
        grad = (padded[1:-1, 2:, 1:-1] - padded[1:-1, :-2, 1:-1]) / (2 * self.g1.h[1])
        return self.g0.restrict(self.g1.diagonal(grad, 1, 2), (0, 1))

    def _leader_policy(self, V0, d0):
        """u0* and ż(u0*) of V0 on the leader grid, and the follower's equation they make."""
        self.g0.set_owned(self._v0, V0)
        u0 = self.leader.policy(self.g0.padded(self._v0), d0)[0]
        zdot = np.broadcast_to(d0.a[1] + d0.c[1] * u0, self.g0.owned_shape)
        return u0, zdot, self.follower_drift(self.g0.allgather(u0), self.g0.allgather(zdot))

    def policies(self, V0, V1):
        """The feedbacks u0*, ż, u1* of the values (V0, V1) at one level."""
        u0, zdot, d1 = self._leader_policy(V0, self.leader_drift(self.mean_gradient(V1)))
        self.g1.set_owned(self._v1, V1)
        return u0, zdot, self.follower.policy(self.g1.padded(self._v1), d1)[0]

    def _level(self, n, V0_next, V1_next):
        """(V0^n, V1^n) from level n + 1 by the chosen coupling, and the number of sweeps."""
        t, p1bar = self.leader.t[n], self.mean_gradient(V1_next)
        V0, V1 = V0_next, V1_next
        for k in range(1, self.max_iterations + 1):
            if k > 1:
                poll(self.g0.comm)
            d0 = self.leader_drift(p1bar)
            V0 = self.leader_hjb.step(t, V0_next, d0, V0, name="leader HJB")
            d1 = self._leader_policy(V0, d0)[2]
            V1 = self.follower_hjb.step(t, V1_next, d1, V1, name="follower HJB")
            if self.coupling == "lagged":
                return V0, V1, k
            if self.coupling == "newton":
                return (*self.joint.solve(t, V0_next, V1_next, V0, V1), k)
            p1_new = self.mean_gradient(V1)
            change = self.g0.max_abs(p1_new - p1bar) / max(self.g0.max_abs(p1_new), 1.0)
            p1bar = p1_new
            if change < self.tol:
                return V0, V1, k
        raise SolverError(f"leader-follower Picard did not converge at t={t:.6g}: {self.max_iterations} sweeps, "
                          f"change {change:.2e} > tol {self.tol:.0e}")

    def _counters(self):
        return (self.leader_hjb.newton_iterations, self.follower_hjb.newton_iterations,
                self.leader_hjb.linear_iterations + self.follower_hjb.linear_iterations,
                self.joint.newton_iterations if self.joint else 0)

    def solve(self, state=None, on_level=None):
        """All levels backward from the terminal one, or with `state` (a checkpoint's: the
        completed levels `level`..nt as owned blocks V0, V1, the per-level `counts` of
        COUNTS and the `wall_time` so far) from the level before those.  After every level
        n, on_level(nt − n, n, V0[n:], V1[n:], counts[n:], wall time).  A stop request
        (polled between levels and sweeps) leaves with that state of the last completed level."""
        nt, start = self.leader.nt, time.perf_counter()
        V0, U0, ZD = (np.zeros((nt + 1,) + self.g0.owned_shape) for _ in range(3))
        V1, U1 = (np.zeros((nt + 1,) + self.g1.owned_shape) for _ in range(2))
        counts = {name: np.zeros(nt + 1, dtype=int) for name in COUNTS}
        first, before = nt, 0.0
        if state is not None:
            first, before = state["level"], state["wall_time"]
            V0[first:], V1[first:] = state["V0"], state["V1"]
            for name in COUNTS:
                counts[name][first:] = state["counts"][name]
        for n in range(first, nt + 1):
            U0[n], ZD[n], U1[n] = self.policies(V0[n], V1[n])
        elapsed = lambda: before + time.perf_counter() - start  # noqa: E731
        done = lambda n: (nt - n, n, V0[n:], V1[n:], {k: v[n:] for k, v in counts.items()}, elapsed())  # noqa: E731
        n = first - 1
        try:
            for n in range(first - 1, -1, -1):
                poll(self.g0.comm)
                c0 = self._counters()
                V0[n], V1[n], counts["sweeps"][n] = self._level(n, V0[n + 1], V1[n + 1])
                for name, a, b in zip(COUNTS[1:], c0, self._counters()):
                    counts[name][n] = b - a
                U0[n], ZD[n], U1[n] = self.policies(V0[n], V1[n])
                if self.progress is not None:
                    self.progress(n, self.leader.t[n], counts["sweeps"][n], time.perf_counter() - start)
                if on_level is not None:
                    on_level(*done(n))
        except StopRequested as stop:
            if n + 1 < nt:  # at least one level solved
                stop.state = done(n + 1)
            raise
        sweeps = counts["sweeps"]
        stats = {"sweeps": int(sweeps.sum()), "max_sweeps_per_level": int(sweeps.max()),
                 **{name: int(counts[name].sum()) for name in COUNTS[1:]}, "wall_time": elapsed()}
        what = {"lagged": "one sweep per level",
                "picard": f"{stats['sweeps']} sweeps, at most {stats['max_sweeps_per_level']} per level",
                "newton": f"{stats['coupled_newton_iterations']} Newton iterations"}[self.coupling]
        status = f"solved {nt} time levels backward ({self.coupling} coupling: {what})"
        return LeaderFollowerSolution(V0, V1, U0, ZD, U1, True, status, stats)


class JointLevel:
    """One SNES on both equations of a level: the unknown is W = [V0 | V1] (each rank's
    owned points of the leader's grid, then of the follower's), the residual
    [R0(V0; ∂x1V1 of V1) | R1(V1; u0*, ż of V0)]."""

    def __init__(self, solver):
        self.s, g0, g1 = solver, solver.g0, solver.g1
        self.n0, n1 = int(np.prod(g0.owned_shape)), int(np.prod(g1.owned_shape))
        comm = g0.da.getComm()
        self.W = PETSc.Vec().createMPI((self.n0 + n1, PETSc.DECIDE), comm=comm)
        self.F = self.W.duplicate()
        self.maps = concatenated_indices([g0, g1], self.W)
        sizes = (self.n0 + n1, self.W.getSize())
        self.P = PETSc.Mat().createAIJ((sizes, sizes), nnz=(2 * g1.dim + 1, 2 * g1.dim), comm=comm)
        self.P.setOption(PETSc.Mat.Option.NEW_NONZERO_ALLOCATION_ERR, False)
        self.snes = PETSc.SNES().create(comm=comm)
        self.snes.setOptionsPrefix("coupled_")
        self.snes.setType(PETSc.SNES.Type.NEWTONLS)
        self.snes.setTolerances(rtol=1e-10, atol=1e-10, stol=1e-14, max_it=50)
        self.snes.setFunction(self.residual, self.F)
        self.snes.setJacobian(self.jacobian, self.P)
        self.snes.setUseMF(True)
        ksp = self.snes.getKSP()
        ksp.setType(PETSc.KSP.Type.GMRES)
        ksp.getPC().setType(PETSc.PC.Type.BJACOBI)
        ksp.setTolerances(rtol=1e-8, max_it=500)
        self.snes.setFromOptions()
        self.newton_iterations = 0

    def _split(self, vec):
        a = vec.getArray(readonly=True)
        s = self.s
        return a[: self.n0].reshape(s.g0.owned_shape, order="F"), a[self.n0:].reshape(s.g1.owned_shape, order="F")

    def _equations(self, vec):
        """The values in `vec`, padded, and the two equations they make."""
        s = self.s
        V0, V1 = self._split(vec)
        d0 = s.leader_drift(s.mean_gradient(V1))
        d1 = s._leader_policy(V0, d0)[2]
        s.g0.set_owned(s._v0, V0)
        s.g1.set_owned(s._v1, V1)
        return (s.g0.padded(s._v0), d0), (s.g1.padded(s._v1), d1)

    def residual(self, snes, W, F):
        (p0, d0), (p1, d1) = self._equations(W)
        r0 = self.s.leader.hjb_residual(self.t, p0, self.next[0], d0)
        r1 = self.s.follower.hjb_residual(self.t, p1, self.next[1], d1)
        F.getArray()[:] = np.concatenate([r0.ravel(order="F"), r1.ravel(order="F")])

    def jacobian(self, snes, W, J, P):
        P.zeroEntries()
        for problem, (padded, drift), index in zip((self.s.leader, self.s.follower), self._equations(W), self.maps):
            rows, cols = problem.stencil.rows_and_columns()
            vals = problem.stencil.flat(problem.hjb_jacobian(self.t, padded, drift))
            P.setValuesRCV(index[rows].astype(PETSc.IntType), index[cols].astype(PETSc.IntType),
                           np.ascontiguousarray(vals, dtype=PETSc.ScalarType), addv=PETSc.InsertMode.ADD_VALUES)
        P.assemble()
        if J != P:
            J.assemble()

    def solve(self, t, V0_next, V1_next, V0, V1):
        """(V0^n, V1^n) solving both equations at once, Newton started from (V0, V1)."""
        self.t, self.next = t, (V0_next, V1_next)
        self.W.getArray()[:] = np.concatenate([V0.ravel(order="F"), V1.ravel(order="F")])
        self.snes.solve(None, self.W)
        reason = self.snes.getConvergedReason()
        if reason <= 0:
            raise SolverError(f"leader-follower Newton did not converge at t={t:.6g} ({snes_reason(reason, 'coupled_')})")
        self.newton_iterations += self.snes.getIterationNumber()
        return tuple(v.copy() for v in self._split(self.W))
