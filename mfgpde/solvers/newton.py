"""Newton (PETSc SNES) on the whole discrete MFG system, all time steps at once:

    HJB_n:  (u^n − u^{n+1})/dt + ρu^n − νΔ_h u^n + H(x, p̃(u^n); m^{n+1}) = 0,  u^{nt} = g(m^{nt})
    FP_n:   (m^{n+1} − m^n)/dt − νΔ_h m^{n+1} + L_{u^n}ᵀ m^{n+1} = 0,          m^0 = m0
    MEAN_n: μ^n − ∫ x m^n dx = 0      (only for models coupled through the mean)

n = 0..nt−1.  The Jacobian (HJB and FP blocks, both coupling blocks, the bordered mean
rows) is kept as grid matrices per level (matrix_free.py, the default "marching") or
assembled as one distributed AIJ matrix.  Rows are weighted by √(dt h^d), so the
SNES norm is a discrete L²(0,T; L²) norm.  Options prefix `newton_`.
"""
import atexit
import math
import time
import weakref

import numpy as np
from mpi4py import MPI
from petsc4py import PETSc

from ..models import Density
from ..stop import StopRequested, poll
from .matrix_free import BlockGaussSeidel, LevelJacobian
from .monitors import IterationInfo
from .problem import SolverError
from .spacetime import SpaceTimeLayout

ADD = PETSc.InsertMode.ADD_VALUES
_LIVE = weakref.WeakSet()


@atexit.register
def _close_all():
    """PETSc objects holding Python contexts must go while Python is alive: left to
    PetscFinalize, they would be destroyed after the interpreter and crash."""
    for solver in list(_LIVE):
        solver.close()
    PETSc.garbage_cleanup()


def _add(P, rows, cols, values):
    """P[rows[i], cols[i, j]] += values[i, j] (global indices)."""
    P.setValuesRCV(np.ascontiguousarray(rows, dtype=PETSc.IntType), np.ascontiguousarray(cols, dtype=PETSc.IntType),
                   np.ascontiguousarray(values, dtype=PETSc.ScalarType), ADD)


def _default_options(table):
    """Options for sub-solvers created later by PETSc, unless the user gave them."""
    opts = PETSc.Options()
    for key, value in table.items():
        if not opts.hasName(key):
            opts.setValue(key, value)


class NewtonSolver:
    def __init__(self, problem, tol=1e-10, max_iterations=30, monitors=(), linear="direct", on_state=None):
        """linear: "direct" (MUMPS on the whole Jacobian), "fieldsplit" (FGMRES with block
        Gauss–Seidel over the fields u, m, mean, each u and m block factored by MUMPS) or
        "marching" (the same block Gauss–Seidel, matrix-free: the Jacobian kept as grid
        matrices per level, each u and m block inverted by marching in time with one
        grid-sized solve per level; no space–time matrix, see matrix_free.py).
        on_state(offset + k, u, m) after every Newton iterate k (for checkpoints); `resumed`:
        the Newton iterations a restarted run has behind it (its iterate 0 is then not reported)."""
        self.problem, self.monitors, self.on_state, self.offset = problem, list(monitors), on_state, 0
        self.resumed = 0
        grid, model = problem.grid, problem.model
        self.layout = lay = SpaceTimeLayout(problem, model.couples_through_mean)
        self.m0 = problem.initial_density()
        self.weight = math.sqrt(problem.dt * grid.cell_volume)
        self.mean_weight = math.sqrt(problem.dt)
        self._vec = grid.create_vec()
        self._F, self._X = lay.create_vec(), lay.create_vec()
        self.levels = LevelJacobian(problem, lay, self.weight, self.mean_weight) if linear == "marching" else None
        if self.levels is not None:
            self._J = PETSc.Mat().createPython(((lay.local_size, lay.size),) * 2, self.levels, comm=grid.da.getComm())
            self._J.setUp()
        else:
            self._J = lay.create_matrix(self._preallocation())
        self.snes = snes = PETSc.SNES().create(comm=grid.da.getComm())
        snes.setOptionsPrefix("newton_")
        snes.setType(PETSc.SNES.Type.NEWTONLS)
        snes.setTolerances(rtol=1e-30, atol=tol, stol=1e-30, max_it=max_iterations)
        snes.setFunction(self.residual, self._F)
        snes.setJacobian(self.jacobian, self._J)
        snes.setMonitor(self._monitor)
        ksp = snes.getKSP()
        if linear in ("marching", "fieldsplit"):
            ksp.setType(PETSc.KSP.Type.FGMRES)
            ksp.setTolerances(rtol=1e-8, max_it=500)
        if linear == "marching":
            ksp.getPC().setType(PETSc.PC.Type.PYTHON)
            ksp.getPC().setPythonContext(BlockGaussSeidel(self.levels))
        elif linear == "fieldsplit":
            ksp.getPC().setType(PETSc.PC.Type.FIELDSPLIT)
            ksp.getPC().setFieldSplitType(PETSc.PC.CompositeType.MULTIPLICATIVE)
            _default_options({"newton_fieldsplit_u_pc_type": "lu", "newton_fieldsplit_m_pc_type": "lu",
                              "newton_fieldsplit_u_pc_factor_mat_solver_type": "mumps",
                              "newton_fieldsplit_m_pc_factor_mat_solver_type": "mumps",
                              "newton_fieldsplit_mean_pc_type": "jacobi"})
        else:
            ksp.setType(PETSc.KSP.Type.PREONLY)
            ksp.getPC().setType(PETSc.PC.Type.LU)
            # MUMPS orders the dense mean rows well; PETSc's own LU fills whole time slices
            ksp.getPC().setFactorSolverType("mumps")
        snes.setFromOptions()
        if ksp.getPC().getType() == PETSc.PC.Type.FIELDSPLIT:
            self._set_fields(ksp.getPC())
        _LIVE.add(self)

    def close(self):
        """Destroy the PETSc objects that hold Python contexts (collective)."""
        self.snes.destroy()
        self._J.destroy()

    def _set_fields(self, pc):
        """Fields `u`, `m` (and `mean`) of the space–time vector, for PCFIELDSPLIT."""
        lay = self.layout
        comm = self.problem.grid.da.getComm()
        blocks = np.arange(lay.nt)
        u = lay.rows(blocks).ravel()
        m = lay.rows(lay.nt + blocks).ravel()
        fields = [("u", PETSc.IS().createGeneral(u, comm=comm)), ("m", PETSc.IS().createGeneral(m, comm=comm))]
        if lay.n_means:
            means = np.arange(lay.mean_start, lay.mean_start + lay.n_means, dtype=PETSc.IntType)
            mine = means if self.problem.grid.rank == 0 else means[:0]
            fields.append(("mean", PETSc.IS().createGeneral(mine, comm=comm)))
        pc.setFieldSplitIS(*fields)

    def _preallocation(self):
        lay = self.layout
        w, d = 2 * lay.dim + 1, lay.dim
        diag = np.concatenate([np.full(lay.nt * lay.N, w + 2 + d), np.full(lay.nt * lay.N, 2 * w + 1)])
        off = np.concatenate([np.full(lay.nt * lay.N, 2 * d + d), np.full(lay.nt * lay.N, 4 * d)])
        if lay.n_means and lay.grid.rank == 0:
            total = int(np.prod(lay.grid.n))
            diag = np.concatenate([diag, np.full(lay.n_means, lay.N + 1)])
            off = np.concatenate([off, np.full(lay.n_means, total - lay.N)])
        return (np.minimum(diag, lay.local_size).astype(PETSc.IntType),
                np.minimum(off, lay.size - lay.local_size).astype(PETSc.IntType))

    # -- the state ---------------------------------------------------------------
    def _levels(self, X):
        """u^0..u^nt, m^0..m^nt and the Density seen by the model at every level."""
        pb, lay, grid = self.problem, self.layout, self.problem.grid
        u_blocks, m_blocks, means = lay.split(X.getArray(readonly=True))
        mu = grid.comm.bcast(None if means is None else np.array(means), root=0) if lay.n_means else None
        m = [self.m0] + list(m_blocks)
        dens = [None]
        for n in range(1, pb.nt + 1):
            d = pb.density(m[n], n)
            if mu is not None:
                d = Density(m=m[n], mass=d.mass, mean=mu[n - 1], means=mu[n - 1][None])
            dens.append(d)
        u = list(u_blocks) + [pb.terminal(dens[-1])]
        return u, m, dens

    def _padded(self, values):
        self.problem.grid.set_owned(self._vec, values)
        return self.problem.grid.padded(self._vec)

    # -- SNES callbacks ----------------------------------------------------------
    def residual(self, snes, X, F):
        pb, lay, grid = self.problem, self.layout, self.problem.grid
        u, m, dens = self._levels(X)
        Fu, Fm, Fmean = lay.split(F.getArray())
        for n in range(pb.nt):
            poll(grid.comm)
            padded = self._padded(u[n])
            up = pb.upwind(padded)
            Fu[n] = self.weight * pb.hjb_residual(pb.t[n], padded, u[n + 1], dens[n + 1], up=up)
            A = pb.fp_operator(pb.t[n], padded, dens[n + 1], up=up)
            pb.stencil.transpose_apply(A, m[n + 1], self._vec)
            Fm[n] = self.weight * (grid.owned(self._vec) - m[n] / pb.dt)
        if lay.n_means:
            mean = [grid.moments(m[n])[1] for n in range(1, pb.nt + 1)]
            if Fmean is not None:
                Fmean[:] = self.mean_weight * (np.array([dn.mean for dn in dens[1:]]) - np.array(mean))
        self._check_finite(snes, Fu, Fm)

    def _check_finite(self, snes, Fu, Fm):
        """SolverError naming the first level and field where the residual is NaN or Inf
        (collective: SNES would stop with reason -4 and keep the non-finite iterate)."""
        pb = self.problem
        bad = ~np.stack([np.isfinite(F).reshape(pb.nt, -1).all(axis=1) for F in (Fu, Fm)], axis=1).ravel()
        first = pb.grid.comm.allreduce(int(np.argmax(bad)) if bad.any() else bad.size, op=MPI.MIN)
        if first < bad.size:
            n, fp = divmod(first, 2)
            field = "Fokker-Planck residual (m)" if fp else "HJB residual (u)"
            raise SolverError(f"Newton after {snes.getIterationNumber()} iterations: the {field} is not finite (NaN or Inf) "
                              f"at time level {n + fp} (t = {pb.t[n + fp]:.6g})")

    def _linearised_levels(self, u, m, dens):
        """Per level n, the pieces of the rows HJB_n and FP_n (all weighted by w): stencil
        coefficients D (∂/∂u^n) and A (FP_n in m^{n+1} is Aᵀ), the diagonals ∂_m H and
        ∂_μ H (terminal coupling folded in at the last level), and the coefficients C of
        the FP–u coupling ∂(L_uᵀ m)/∂u = Σ_d Σ_± D±_dᵀ diag(m ∂²H/∂p_d²(p_±) 1_±) D±_d
        (H separable in p)."""
        pb, lay, model = self.problem, self.layout, self.problem.model
        w, shape = self.weight, pb.grid.owned_shape
        flat = lambda a: np.ascontiguousarray(np.broadcast_to(a, shape).ravel(order="F"))  # noqa: E731
        for n in range(pb.nt):
            poll(pb.grid.comm)
            t, padded, d_next = pb.t[n], self._padded(u[n]), dens[n + 1]
            up = pb.upwind(padded)
            D = pb.hjb_jacobian(t, padded, d_next, up=up)
            A = pb.fp_operator(t, padded, d_next, m=m[n + 1], up=up)
            dHdm = flat(pb.eo(lambda p: model.dH_dm(t, pb.x, p, d_next), up))
            dHdmean = [flat(v) for v in pb.eo(lambda p: list(model.dH_dmean(t, pb.x, p, d_next)), up)]
            if n + 1 == pb.nt:  # u^{nt} = g(m^{nt}) enters through −u^{nt}/dt
                dHdm = dHdm - flat(model.dg_dm(pb.x, d_next)) / pb.dt
                dHdmean = [a - flat(b) / pb.dt for a, b in zip(dHdmean, model.dg_dmean(pb.x, d_next))]
            gram = np.zeros((2 * lay.dim,) + shape)
            for p, masks, side in ((up.backward, up.masks_backward, 0), (up.forward, up.masks_forward, 1)):
                hess = model.d2H_dp2(t, pb.x, p, d_next)
                for d in range(lay.dim):
                    if any(np.any(hess[d][e] != 0) for e in range(lay.dim) if e != d):
                        raise SolverError("Newton coupling needs ∂²H/∂p_d∂p_e = 0 for d ≠ e (a separable H)")
                    gram[2 * d + side] = (w / pb.grid.h[d] ** 2) * m[n + 1] * hess[d][d] * masks[d]
            yield (n, w * D, w * A, w * dHdm, [w * a for a in dHdmean[: lay.n_means and lay.dim]],
                   pb.stencil.difference_gram(gram))

    def jacobian(self, snes, X, J, P):
        u, m, dens = self._levels(X)
        if self.levels is not None:
            for level in self._linearised_levels(u, m, dens):
                self.levels.set_level(*level)
            return
        pb, lay = self.problem, self.layout
        P.zeroEntries()
        for n, D, A, dHdm, dHdmean, C in self._linearised_levels(u, m, dens):
            ru, rm = lay.rows([lay.u_block(n)])[0], lay.rows([lay.m_block(n + 1)])[0]
            cu, cm = lay.columns([lay.u_block(n)])[0], lay.columns([lay.m_block(n + 1)])[0]
            # HJB rows: ∂/∂u^n, ∂/∂u^{n+1}, ∂/∂m^{n+1} (local and through the mean)
            _add(P, ru[:, None], cu, pb.stencil.flat(D))
            if n + 1 < pb.nt:
                self._diagonal(P, ru, lay.rows([lay.u_block(n + 1)])[0], np.full(lay.N, -self.weight / pb.dt))
            self._diagonal(P, ru, rm, dHdm)
            for k, values in enumerate(dHdmean):
                col = np.full(lay.N, lay.mean_index(n + 1, k))
                _add(P, ru[:, None], col[:, None], values[:, None])
            # FP rows: ∂/∂m^{n+1} (Aᵀ), ∂/∂m^n, ∂/∂u^n (C)
            _add(P, rm[:, None], cm, pb.stencil.flat(pb.stencil.transposed(A)))
            if n > 0:
                self._diagonal(P, rm, lay.rows([lay.m_block(n)])[0], np.full(lay.N, -self.weight / pb.dt))
            _add(P, rm[:, None], cu, pb.stencil.flat(C))
        if lay.n_means:
            self._mean_rows(P, m)
        P.assemble()
        if J != P:
            J.assemble()

    @staticmethod
    def _diagonal(P, rows, cols, values):
        _add(P, rows[:, None], cols[:, None], values[:, None])

    def _mean_rows(self, P, m):
        """Rows μ^n_d − ∫ x_d m^n dx."""
        pb, lay, grid = self.problem, self.layout, self.problem.grid
        x = [np.broadcast_to(xd, grid.owned_shape).ravel(order="F") for xd in pb.x]
        for n in range(1, pb.nt + 1):
            cols = lay.rows([lay.m_block(n)])[0]
            for d in range(lay.dim):
                row = np.array([[lay.mean_index(n, d)]], dtype=PETSc.IntType)
                P.setValues(row[0], cols, -self.mean_weight * grid.cell_volume * x[d], ADD)
                if grid.rank == 0:
                    P.setValues(row[0], row[0], [self.mean_weight], ADD)

    # -- driving the solve --------------------------------------------------------
    def _monitor(self, snes, its, fnorm):
        if its == 0 and self.resumed:  # the saved iterate a restart starts from: already in the history
            return
        grid, lay = self.problem.grid, self.layout
        Fu, Fm, _ = lay.split(snes.getFunction()[0].getArray(readonly=True))
        norm = lambda a: math.sqrt(grid.comm.allreduce(float(np.sum(a * a))))  # noqa: E731
        info = IterationInfo(self.resumed + its, norm(Fu), norm(Fm), float("nan"), float("nan"),
                             time.perf_counter() - self._start, bool(np.isfinite(fnorm)),
                             kind="newton", linear_iterations=snes.getLinearSolveIterations())
        for monitor in self.monitors:
            monitor(info)
        if its > 0 and self.on_state is not None:
            u, m, _ = self._levels(snes.getSolution())
            self.on_state(self.offset + its, np.array(u), np.array(m))

    def solve(self, u_guess, m_guess):
        """Newton from the paths u_guess, m_guess (nt+1, *owned); returns (u, m, converged, its)."""
        pb, lay = self.problem, self.layout
        u_blocks, m_blocks, means = lay.split(self._X.getArray())
        u_blocks[:] = u_guess[:-1]
        m_blocks[:] = m_guess[1:]
        moments = [pb.grid.moments(mn)[1] for mn in m_guess[1:]] if lay.n_means else None
        if means is not None:
            means[:] = np.array(moments)
        self._start = time.perf_counter()
        try:
            self.snes.solve(None, self._X)
        except StopRequested as stop:  # the line search had not replaced X yet: X is the last iterate
            its = self.snes.getIterationNumber()
            if its > 0:
                u, m, _ = self._levels(self._X)
                stop.state = (self.offset + its, np.array(u), np.array(m))
            raise
        reason = self.snes.getConvergedReason()
        u, m, _ = self._levels(self._X)
        return np.array(u), np.array(m), reason > 0, self.snes.getIterationNumber(), reason
