"""Small monitors called once per coupling iteration with an `IterationInfo`.
A monitor prints, records, or raises SolverError to stop a run that went wrong."""
import sys
from dataclasses import dataclass

import numpy as np

from .problem import SolverError


@dataclass
class IterationInfo:
    """Picard and Anderson: residual_u/m are the relative sup-changes of u and m.  Newton:
    the L² norms of the HJB and Fokker–Planck residuals."""
    iteration: int
    residual_u: float
    residual_m: float
    mass_error: float     # max_n |∫ m^n − 1| (NaN where not meaningful)
    min_m: float
    wall_time: float
    finite: bool
    kind: str = "picard"
    linear_iterations: int = 0


class ProgressMonitor:
    """One line per iteration on rank 0."""

    def __init__(self, comm, stream=None):
        self.rank, self.stream = comm.Get_rank(), stream or sys.stdout

    def __call__(self, info):
        if self.rank != 0:
            return
        if info.kind == "newton":
            line = (f"newton {info.iteration:4d}  |F_hjb| {info.residual_u:.3e}  |F_fp| {info.residual_m:.3e}"
                    f"  linear its {info.linear_iterations:5d}")
        else:
            line = (f"{info.kind} {info.iteration:4d}  |du| {info.residual_u:.3e}  |dm| {info.residual_m:.3e}"
                    f"  mass err {info.mass_error:.1e}")
        print(f"{line}  {info.wall_time:8.2f} s", file=self.stream, flush=True)


def check_finite(info):
    if not info.finite:
        raise SolverError(f"iteration {info.iteration}: u or m is not finite (NaN or Inf)")


class MassMonitor:
    """Mass of m conserved to `tol` (absolute, unit initial mass) and m ≥ −tol."""

    def __init__(self, tol=1e-12):
        self.tol = tol

    def __call__(self, info):
        if info.kind == "newton":  # Newton iterates conserve mass only once converged
            return
        if info.mass_error > self.tol:
            raise SolverError(f"iteration {info.iteration}: mass drifted by {info.mass_error:.2e} > {self.tol:.0e}")
        if info.min_m < -self.tol:
            raise SolverError(f"iteration {info.iteration}: density became negative ({info.min_m:.2e})")


class HistoryMonitor:
    """Keeps every iteration's numbers for /history."""

    def __init__(self, earlier=None):
        """earlier: the arrays of a run this one continues (a restart)."""
        self.rows, self.earlier = [], earlier or {}

    def __call__(self, info):
        self.rows.append(info)

    def arrays(self):
        names = ("iteration", "residual_u", "residual_m", "mass_error", "wall_time", "linear_iterations")
        out = {k: np.array([getattr(r, k) for r in self.rows], dtype=float) for k in names}
        out["newton"] = np.array([r.kind == "newton" for r in self.rows], dtype=float)
        return {k: np.concatenate([self.earlier.get(k, []), v]) for k, v in out.items()}
