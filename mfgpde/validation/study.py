"""Grid solutions against closed forms at several resolutions, with observed orders.

Errors are sup-norms on the window where m0 carries its mass (the smallest box holding
every cell with m0 ≥ 1e-2 max m0): u(0,·), m(T,·), over all t the mean and the per-axis
variance of m(t,·), and where the closed form gives feedbacks, the largest feedback error
at t = 0 (feedbacks from centred differences of u).  With several populations, the
largest error over them.  Observed order between resolutions k and k+1:
log(e_k / e_{k+1}) / log(h_k / h_{k+1}).
"""
import math

import numpy as np
from mpi4py import MPI

QUANTITIES = ("u0", "mT", "mean", "var")


def window_mask(grid, m0):
    """Owned-block mask of the box around the cells where m0 ≥ 1e-2 max m0."""
    peak = grid.max_abs(m0)
    x = grid.local_coordinates()
    mask = np.ones(grid.owned_shape, dtype=bool)
    for d, xd in enumerate(x):
        inside = np.broadcast_to(xd, grid.owned_shape)[m0 >= 1e-2 * peak]
        lo = grid.comm.allreduce(float(inside.min(initial=np.inf)), op=MPI.MIN)
        hi = grid.comm.allreduce(float(inside.max(initial=-np.inf)), op=MPI.MAX)
        mask &= (xd >= lo) & (xd <= hi)
    return mask


def moments_path(grid, m_path):
    """Mean (nt+1, d) and per-axis variance (nt+1, d) of every time level."""
    x = grid.local_coordinates()
    mass = grid.integrate(m_path)
    mean = np.stack([grid.integrate(m_path * xd) / mass for xd in x], axis=1)
    var = np.stack([grid.integrate(m_path * xd ** 2) / mass - mean[:, d] ** 2
                    for d, xd in enumerate(x)], axis=1)
    return mean, var


def closed_form_errors(solution, closed_form):
    """Sup-norm errors of a solution against an object with u, m, mean, var (and feedbacks)."""
    pb, grid = solution.problem, solution.problem.grid
    x, t, P = pb.x, pb.t, pb.model.populations
    us, ms = (solution.u, solution.m) if P > 1 else (solution.u[None], solution.m[None])
    errors = {}
    for k in range(P):
        kw = {"population": k} if P > 1 else {}
        mask = window_mask(grid, ms[k][0])
        mean, var = moments_path(grid, ms[k])
        exact_var = np.asarray(closed_form.var(t, **kw))
        found = {
            "u0": grid.max_abs(np.where(mask, us[k][0] - closed_form.u(0.0, *x, **kw), 0.0)),
            "mT": grid.max_abs(np.where(mask, ms[k][-1] - closed_form.m(pb.T, *x, **kw), 0.0)),
            "mean": float(np.max(np.abs(mean - np.asarray(closed_form.mean(t, **kw)).reshape(grid.dim, -1).T))),
            "var": float(np.max(np.abs(var - (exact_var[:, None] if exact_var.ndim == 1 else exact_var.T)))),
        }
        if hasattr(closed_form, "feedbacks"):
            found["feedback"] = _feedback_error(pb, us[k][0], mask, closed_form.feedbacks(0.0, *x, **kw))
        errors = {q: max(errors.get(q, 0.0), e) for q, e in found.items()}
    return errors


def _feedback_error(pb, u0, mask, exact):
    """Largest sup error over the model's feedback fields at t = 0, on the window."""
    grid = pb.grid
    full, inside = grid.gather(u0), grid.gather(mask.astype(float))
    exact = {name: grid.gather(np.broadcast_to(v, grid.owned_shape)) for name, v in exact.items()}
    error = None
    if grid.rank == 0:
        grad = [np.gradient(full, h, axis=d) for d, h in enumerate(grid.h)]
        found = pb.model.feedbacks(grad)
        error = max(float(np.max(np.abs(found[name] - exact[name])[inside > 0])) for name in exact)
    return grid.comm.bcast(error, root=0)


def observed_orders(h, errors):
    """Orders between consecutive resolutions (NaN where an error vanished)."""
    out = []
    for k in range(len(h) - 1):
        e0, e1 = errors[k], errors[k + 1]
        out.append(math.log(e0 / e1) / math.log(h[k] / h[k + 1]) if e0 > 0 and e1 > 0 else math.nan)
    return out
