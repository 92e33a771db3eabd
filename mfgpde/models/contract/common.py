"""What every family's contract checks share: tolerances, the Check record, the
formatting of findings and the worst-point tally (see the package docstring)."""

import math
from dataclasses import dataclass

import numpy as np

from ..base import Density
from ..registry import user_error

RTOL = 1e-6  # derivative errors, relative to 1 + the derivative's scale
NOISE = 100.0  # rounding allowance of a central difference, in eps |F| / h
STEP = 1e-6  # central differences: h = STEP max(1, |v|)
AFFINE_RTOL = 1e-9
MINIMUM_RTOL = 1e-12
EO_RTOL = 1e-10
ROW_SUM_TOL, ROW_MIN_TOL = 1e-10, 1e-12
EPS = np.finfo(float).eps
NOT_IMPLEMENTED = "not implemented (Newton coupling unavailable)"
MAX_GRID = 1 << 24  # m0 on the whole grid up to this many points, else on a strided subgrid



@dataclass
class Check:
    name: str
    ok: bool
    detail: str



# -- formatting and the worst point ----------------------------------------------------------
def _g(v):
    return f"{float(v):.3g}"


def _vec(values):
    return "(" + ",".join(_g(v) for v in np.ravel(values)) + ")"


def _guard(name, fn, *args):
    """fn(*args), or a failing Check naming the exception."""
    try:
        return fn(*args)
    except Exception as e:  # noqa: BLE001  (any exception of a model is a finding)
        return Check(name, False, f"raised {user_error(e) or type(e).__name__ + (f': {e}' if str(e) else '')}")


class _Tally:
    """The worst (largest error / tolerance) over batches of (components × points)."""

    def __init__(self, name, what="error", against=""):
        self.name, self.what, self.against = name, what, against
        self.count, self.emax, self.scale = 0, 0.0, 0.0
        self.ratio, self.where, self.tol_at, self.err_at = -np.inf, "", 0.0, 0.0
        self.note = None

    def add(self, err, tol, where, scale=None, count=None):
        """err, tol: arrays (C, N); where(c, i) names component c at point i."""
        err = np.atleast_2d(np.asarray(err, dtype=float))
        tol = np.broadcast_to(np.atleast_2d(np.asarray(tol, dtype=float)), err.shape)
        err = np.where(np.isfinite(err), err, np.inf)
        ratio = np.where(np.isfinite(tol), err / np.where(tol > 0, tol, 1e-300), np.inf)
        c, i = np.unravel_index(int(np.argmax(ratio)), ratio.shape)
        self.count += err.shape[1] if count is None else count
        self.emax = max(self.emax, float(err.max()))
        if scale is not None:
            self.scale = max(self.scale, float(np.max(scale)))
        if ratio[c, i] > self.ratio:
            self.ratio, self.where, self.tol_at, self.err_at = float(ratio[c, i]), where(c, i), tol[c, i], err[c, i]

    def check(self, passing=None):
        if self.ratio <= 1.0:
            scale = f"scale {_g(self.scale)}, " if self.scale else ""
            against = f" against differences of {self.against}" if self.against else ""
            return Check(self.name, True, passing or f"max {self.what} {self.emax:.2g}{against} ({scale}tolerance "
                                                     f"{self.tol_at:.2g}) at {self.count} points")
        if not np.isfinite(self.err_at):
            return Check(self.name, False, f"not finite at {self.where}")
        note = f"; {self.note}" if self.note else ""
        return Check(self.name, False, f"{self.what} {self.err_at:.3g} > tolerance {self.tol_at:.2g} at "
                                       f"{self.where}{note}")


def _arr(value, n):
    """A model's scalar-or-array value as a float array of the n sample points."""
    return np.broadcast_to(np.asarray(value, dtype=float), (n,)).astype(float)


def _step(v):
    return STEP * np.maximum(1.0, np.abs(v))


def _difference(f, v, h):
    """(f(v + h) − f(v − h)) / 2h and the rounding allowance NOISE eps max|f±| / h."""
    fp, fm = f(v + h), f(v - h)
    return (fp - fm) / (2 * h), NOISE * EPS * np.maximum(np.abs(fp), np.abs(fm)) / h


def _compare(analytic, fd, noise):
    """Errors and tolerances of one component (arrays over the points) and its scale."""
    scale = 1.0 + float(np.max(np.abs(np.where(np.isfinite(fd), fd, 0.0))))
    return np.abs(analytic - fd), RTOL * scale + noise, scale


# -- mean field games -------------------------------------------------------------------
def _box(cfg, dim):
    g = cfg.get("grid", {})
    lower = np.broadcast_to(np.asarray(g.get("lower", -1.0), dtype=float), (dim,))
    upper = np.broadcast_to(np.asarray(g.get("upper", 1.0), dtype=float), (dim,))
    n = np.broadcast_to(np.asarray(g.get("n", 32), dtype=int), (dim,))
    T = cfg.get("time", {}).get("T", 1.0)
    T = float(T) if isinstance(T, (int, float)) and not isinstance(T, bool) and math.isfinite(T) and T > 0 else 1.0
    return lower, upper, n, T


class _Sample:
    """Points of the grid (cell centres), one time (the solvers pass t as a number), p (a
    fifth of the entries 0, where the upwind split often puts them) and a Density of one
    population."""

    def __init__(self, rng, lower, upper, n, T, N, populations, population):
        dim = len(lower)
        h = (upper - lower) / n
        self.N, self.dim, self.population, self.populations = N, dim, population, populations
        self.t = float(rng.uniform(0.0, T))
        self.x = tuple(lower[d] + (rng.integers(0, n[d], N) + 0.5) * h[d] for d in range(dim))
        self.p = [np.where(rng.random(N) < 0.2, 0.0, rng.uniform(-3.0, 3.0, N)) for _ in range(dim)]
        self.m = np.exp(rng.uniform(math.log(0.05), math.log(3.0), N))
        self.means = rng.uniform(lower, upper, (populations, dim))
        self.mean = self.means[population].copy()

    def density(self, m=None, mean=None):
        mean = self.mean if mean is None else mean
        means = self.means.copy()
        means[self.population] = mean
        return Density(m=self.m if m is None else m, mass=1.0, mean=np.array(mean, dtype=float), means=means,
                       population=self.population)

    def where(self, i, p=True, m=True, mean=False, t=True):
        parts = [f"t={_g(self.t)}"] if t else []
        parts.append(f"x={_vec([xd[i] for xd in self.x])}")
        if p:
            parts.append(f"p={_vec([pd[i] for pd in self.p])}")
        if m:
            parts.append(f"m={_g(self.m[i])}")
        if mean:
            parts.append(f"mean={_vec(self.mean)}")
        if self.populations > 1:
            parts.append(f"population {self.population}")
        return ", ".join(parts)

