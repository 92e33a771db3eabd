"""A baseline of the same discretisation solved with plain scipy.sparse direct solves, one
process: what a user would otherwise write.

`scipy_picard` mirrors `PicardSolver` step for step (damped Picard; HJB backward in time with
a Newton iteration per step, started from the previous Picard iterate with its change
extrapolated in time (sweep_guess); Fokker–Planck forward with the transposed operator),
but every linear solve is `scipy.sparse.linalg.spsolve` on a CSR matrix assembled from the
problem's own stencil coefficients, and the Newton loop is written out by hand.  Residuals
and coefficients come from the `MFGProblem`, so the discretisation is the one the PETSc
solvers use.
"""
import time

import numpy as np
import scipy.sparse as sp
from scipy.sparse.linalg import bicgstab, gmres, spsolve

from ..solvers.anderson import BETA_DENSITY
from ..solvers.picard import relative_change
from ..solvers.problem import sweep_guess

# The PETSc HJB solver's SNES tolerances (hjb.py): rtol, atol, stol, max_it.
NEWTON_RTOL, NEWTON_ATOL, NEWTON_STOL, NEWTON_MAX_IT = 1e-10, 1e-11, 1e-14, 50


class _Operators:
    """CSR assembly of the problem's star-stencil operators in the natural (global) ordering,
    and the problem's residual/coefficient callbacks on plain owned-shape arrays."""

    def __init__(self, problem):
        self.problem = problem
        grid = problem.grid
        self.shape = grid.owned_shape
        self.size = int(np.prod(self.shape))
        rows, cols = problem.stencil.rows_and_columns()
        lgmap = grid.da.getLGMap()
        rows = lgmap.apply(np.ascontiguousarray(np.broadcast_to(rows, cols.shape)).ravel())
        cols = lgmap.apply(np.ascontiguousarray(cols).ravel())
        self.rows, self.cols = np.asarray(rows, dtype=np.int64), np.asarray(cols, dtype=np.int64)
        self._vec = grid.create_vec()

    def padded(self, values):
        grid = self.problem.grid
        grid.set_owned(self._vec, values)
        return grid.padded(self._vec)

    def matrix(self, coefficients, transpose=False):
        """The operator with these stencil coefficients (or its transpose) as CSR;
        duplicate entries (reflecting walls) are summed, as PETSc's ADD_VALUES does."""
        vals = self.problem.stencil.flat(coefficients).ravel()
        rows, cols = (self.cols, self.rows) if transpose else (self.rows, self.cols)
        return sp.csr_matrix((vals, (rows, cols)), shape=(self.size, self.size))

    def flat(self, values):
        return np.asarray(values, dtype=float).ravel(order="F")

    def unflat(self, vector):
        return np.asarray(vector).reshape(self.shape, order="F")


def _newton_step(ops, t, u_start, u_next, density, counters):
    """Solve the implicit HJB step by Newton from u_start, with HJBSolver's stopping rule:
    |F| < atol (hjb.STEP_ATOL scaled), |F| <= rtol |F_0|, or |δu| < stol |u|; at most
    NEWTON_MAX_IT iterations."""
    from ..solvers.hjb import STEP_ATOL
    pb = ops.problem
    atol = max(STEP_ATOL * max(np.abs(u_next).max(), 1e-300) * np.sqrt(ops.size) / pb.dt, NEWTON_ATOL)
    u = ops.flat(u_start).copy()
    f = ops.flat(pb.hjb_residual(t, ops.padded(ops.unflat(u)), u_next, density))
    fnorm = fnorm0 = np.linalg.norm(f)
    if not np.isfinite(fnorm0):
        raise RuntimeError(f"HJB Newton: non-finite initial residual at t={t:.6g}")
    if fnorm0 < atol:
        return ops.unflat(u)
    for it in range(1, NEWTON_MAX_IT + 1):
        J = ops.matrix(pb.hjb_jacobian(t, ops.padded(ops.unflat(u)), density))
        step = spsolve(J, f)
        counters["linear_solves"] += 1
        counters["newton_iterations"] += 1
        u -= step
        f = ops.flat(pb.hjb_residual(t, ops.padded(ops.unflat(u)), u_next, density))
        fnorm = np.linalg.norm(f)
        if not np.isfinite(fnorm):
            raise RuntimeError(f"HJB Newton: non-finite residual at t={t:.6g} (iteration {it})")
        if (fnorm < atol or fnorm <= NEWTON_RTOL * fnorm0
                or np.linalg.norm(step) < NEWTON_STOL * np.linalg.norm(u)):
            return ops.unflat(u)
    raise RuntimeError(f"HJB Newton did not converge at t={t:.6g} in {NEWTON_MAX_IT} iterations "
                       f"(|F| {fnorm:.3e}, initial {fnorm0:.3e})")


def _hjb(ops, m_path, u_path, previous, counters):
    """Fill u_path backward in time for the densities m_path (as HJBSolver.solve): Newton
    from u^{n+1}, or from the sweep before with its change extrapolated (sweep_guess)."""
    pb = ops.problem
    u_path[-1] = pb.terminal(pb.density(m_path[-1]))
    for n in range(pb.nt - 1, -1, -1):
        start = u_path[n + 1] if previous is None else sweep_guess(previous, u_path, n, -1)
        u_path[n] = _newton_step(ops, pb.t[n], start, u_path[n + 1], pb.density(m_path[n + 1]), counters)
    return u_path


def _fp(ops, u_path, m_coupling, m_path, counters):
    """Fill m_path[1:] from m_path[0] (as FPSolver.solve): the transposed HJB-linearised operator."""
    pb = ops.problem
    for n in range(pb.nt):
        coeffs = pb.fp_operator(pb.t[n], ops.padded(u_path[n]), pb.density(m_coupling[n + 1]))
        A = ops.matrix(coeffs, transpose=True)
        m_next = spsolve(A, ops.flat(m_path[n] / pb.dt))
        counters["linear_solves"] += 1
        if not np.all(np.isfinite(m_next)):
            raise RuntimeError(f"Fokker–Planck solve failed at t={pb.t[n + 1]:.6g}")
        m_path[n + 1] = ops.unflat(m_next)
    return m_path


def scipy_picard(problem, damping=1.0, tol=1e-8, max_iterations=200):
    """Damped Picard iteration of `problem` with scipy.sparse direct solves, one process.

    Returns {"u", "m": (nt+1, *n) arrays, "iterations", "newton_iterations" (total HJB Newton
    iterations), "linear_solves" (spsolve calls), "wall_time" (seconds), "converged"}.
    The stopping rule is PicardSolver's: relative sup-changes of u and m both below `tol`;
    "m" is the last Fokker–Planck solution (undamped), as in PicardSolver's Solution.
    """
    grid = problem.grid
    if grid.comm.Get_size() > 1:
        raise ValueError("scipy_picard: the scipy baseline is serial; the problem's grid is split "
                         f"over {grid.comm.Get_size()} MPI ranks")
    if not 0 < damping <= 1:
        raise ValueError("damping: must be in (0, 1]")
    start = time.perf_counter()
    ops = _Operators(problem)
    shape = (problem.nt + 1,) + grid.owned_shape
    m0 = problem.initial_density()
    m = np.broadcast_to(m0, shape).copy()
    u, u_old, m_new = np.zeros(shape), np.zeros(shape), np.empty(shape)
    counters = {"newton_iterations": 0, "linear_solves": 0}
    converged, k = False, 0
    for k in range(1, max_iterations + 1):
        u_old[:] = u
        _hjb(ops, m, u, u_old if k > 1 else None, counters)
        m_new[0] = m0
        _fp(ops, u, m, m_new, counters)
        du, dm = relative_change(grid, u, u_old), relative_change(grid, m_new, m)
        m = (1 - damping) * m + damping * m_new
        if du < tol and dm < tol:
            converged = True
            break
    return {"u": u, "m": m_new, "iterations": k, "newton_iterations": counters["newton_iterations"],
            "linear_solves": counters["linear_solves"], "wall_time": time.perf_counter() - start,
            "converged": converged}


# -- the strong baseline: Krylov + Jacobi per step, Anderson-accelerated coupling --------
class _Pattern:
    """CSR of a star-stencil operator with a fixed pattern: the COO entries' positions in the
    CSR arrays computed once, so each assembly is one bincount (duplicates at walls summed)."""

    def __init__(self, ops, transpose):
        rows, cols = (ops.cols, ops.rows) if transpose else (ops.rows, ops.cols)
        keys, self.where = np.unique(rows * ops.size + cols, return_inverse=True)
        self.indices = (keys % ops.size).astype(np.int32)
        self.indptr = np.searchsorted(keys // ops.size, np.arange(ops.size + 1)).astype(np.int32)
        self.shape, self.nnz = (ops.size, ops.size), keys.size
        self.diagonal = np.flatnonzero(keys // ops.size == keys % ops.size)

    def matrix(self, ops, coefficients):
        data = np.bincount(self.where, weights=ops.problem.stencil.flat(coefficients).ravel(), minlength=self.nnz)
        return sp.csr_matrix((data, self.indices, self.indptr), shape=self.shape), data[self.diagonal]


def _krylov(A, diagonal, b, x0, rtol, counters):
    """BiCGSTAB with the Jacobi preconditioner (restarted GMRES where it breaks down)."""
    M = sp.diags(1.0 / diagonal)
    count = lambda xk: counters.__setitem__("linear_iterations", counters["linear_iterations"] + 1)  # noqa: E731
    x, info = bicgstab(A, b, x0=x0, tol=rtol, atol=0.0, maxiter=2000, M=M, callback=count)
    if info < 0:
        x, info = gmres(A, b, x0=x, tol=rtol, atol=0.0, restart=30, maxiter=200, M=M, callback=count,
                        callback_type="pr_norm")
    counters["linear_solves"] += 1
    if info != 0 or not np.all(np.isfinite(x)):
        raise RuntimeError(f"the Krylov solve failed (info {info})")
    return x


def _hjb_krylov(ops, hjb_pattern, m_density, u_path, previous, counters):
    """u_path backward in time, Newton per step with BiCGSTAB + Jacobi (rtol 1e-6), started
    from u^{n+1} or from the sweep before with its change extrapolated (sweep_guess);
    stopped as HJBSolver: |F| <= rtol |F_0| or |F| <= STEP_ATOL |u^{n+1}|_∞ √N / dt."""
    from ..solvers.hjb import STEP_ATOL
    pb = ops.problem
    u_path[-1] = pb.terminal(m_density(pb.nt))
    for n in range(pb.nt - 1, -1, -1):
        density, u_next = m_density(n + 1), u_path[n + 1]
        u = ops.flat(u_next if previous is None else sweep_guess(previous, u_path, n, -1)).copy()
        atol = max(STEP_ATOL * max(np.abs(u_next).max(), 1e-300) * np.sqrt(ops.size) / pb.dt, NEWTON_ATOL)
        f = ops.flat(pb.hjb_residual(pb.t[n], ops.padded(ops.unflat(u)), u_next, density))
        fnorm0 = fnorm = np.linalg.norm(f)
        it = 0
        while not (fnorm < atol or fnorm <= NEWTON_RTOL * fnorm0):
            it += 1
            if it > NEWTON_MAX_IT or not np.isfinite(fnorm):
                raise RuntimeError(f"HJB Newton did not converge at t={pb.t[n]:.6g}")
            J, diagonal = hjb_pattern.matrix(ops, pb.hjb_jacobian(pb.t[n], ops.padded(ops.unflat(u)), density))
            u -= _krylov(J, diagonal, f, None, 1e-6, counters)
            counters["newton_iterations"] += 1
            f = ops.flat(pb.hjb_residual(pb.t[n], ops.padded(ops.unflat(u)), u_next, density))
            fnorm = np.linalg.norm(f)
        u_path[n] = ops.unflat(u)


def _fp_krylov(ops, fp_pattern, m_density, u_path, m_path, guess, counters):
    """m_path[1:] forward, the transposed linearised HJB operator, BiCGSTAB + Jacobi to
    rtol 1e-13 (the mass conservation rests on it), started from m^n or from the previous
    iterate `guess` with its change extrapolated (sweep_guess)."""
    pb = ops.problem
    for n in range(pb.nt):
        A, diagonal = fp_pattern.matrix(ops, pb.fp_operator(pb.t[n], ops.padded(u_path[n]), m_density(n + 1)))
        x0 = ops.flat(m_path[n] if guess is None else sweep_guess(guess, m_path, n + 1, 1))
        m_path[n + 1] = ops.unflat(_krylov(A, diagonal, ops.flat(m_path[n]) / pb.dt, x0, 1e-13, counters))


def scipy_anderson(problem, tol=1e-8, max_iterations=200, depth=5):
    """The strong baseline, one process: the fixed point x = Φ(x) of AndersonSolver (x the
    mean path for a model that reads the density only through its mean, else the density
    path), Anderson(depth) mixing written in numpy (Walker & Ni, least squares on the last
    `depth` differences, AndersonSolver's mixing parameter β), each sweep with BiCGSTAB +
    Jacobi per linear solve; the same stopping rule as AndersonSolver.  Returns the dict of `scipy_picard`."""
    from ..models import Density
    grid = problem.grid
    if grid.comm.Get_size() > 1:
        raise ValueError("scipy_anderson: the scipy baseline is serial")
    start = time.perf_counter()
    ops = _Operators(problem)
    hjb_pattern, fp_pattern = _Pattern(ops, False), _Pattern(ops, True)
    model, nt = problem.model, problem.nt
    through_mean = model.couples_through_mean and not model.couples_locally
    beta = 1.0 if through_mean else BETA_DENSITY  # AndersonSolver's mixing parameter
    x_axes = [np.broadcast_to(xd, grid.owned_shape) for xd in problem.x]
    means = lambda m: np.stack([grid.integrate(m * xd) for xd in x_axes], axis=-1)  # noqa: E731
    shape = (nt + 1,) + grid.owned_shape
    m0 = problem.initial_density()
    m = np.broadcast_to(m0, shape).copy()
    u = np.zeros(shape)
    path = lambda m: means(m)[1:].ravel() if through_mean else m[1:].ravel().copy()  # noqa: E731
    x = path(m)
    counters = {"newton_iterations": 0, "linear_solves": 0, "linear_iterations": 0}
    G, F = [], []
    converged, k = False, 0
    for k in range(1, max_iterations + 1):
        if through_mean:
            mu, mass = x.reshape(nt, grid.dim), grid.integrate(m)
            dens = [None] + [Density(m=m[n], mass=mass[n], mean=mu[n - 1], means=mu[n - 1][None])
                             for n in range(1, nt + 1)]
        else:
            xm = np.maximum(x.reshape((nt,) + grid.owned_shape), 0.0)
            dens = [None] + [problem.density(xm[n - 1], n) for n in range(1, nt + 1)]
        u_old, m_old = u.copy(), m.copy()
        _hjb_krylov(ops, hjb_pattern, dens.__getitem__, u, u_old if k > 1 else None, counters)
        m[0] = m0
        _fp_krylov(ops, fp_pattern, dens.__getitem__, u, m, None if k == 1 else m_old, counters)
        g = path(m)
        f = g - x
        du = relative_change(grid, u, u_old)
        dm = max(relative_change(grid, m, m_old), np.abs(f).max() / max(np.abs(g).max(), 1e-300))
        if du < tol and dm < tol:
            converged = True
            break
        G.append(g), F.append(f)
        if len(G) > depth + 1:
            G.pop(0), F.pop(0)
        if len(G) > 1:
            dF = np.stack([F[i + 1] - F[i] for i in range(len(F) - 1)], axis=1)
            dG = np.stack([G[i + 1] - G[i] for i in range(len(G) - 1)], axis=1)
            gamma = np.linalg.lstsq(dF, f, rcond=None)[0]
            x = g - dG @ gamma - (1.0 - beta) * (f - dF @ gamma)
        else:
            x = g - (1.0 - beta) * f
    return {"u": u, "m": m, "iterations": k, "newton_iterations": counters["newton_iterations"],
            "linear_solves": counters["linear_solves"], "linear_iterations": counters["linear_iterations"],
            "wall_time": time.perf_counter() - start, "converged": converged}
