"""`mfgpde check`: does a model keep the contract the solvers rely on?

Evaluated at random points of the run's grid, vectorised as the solvers call the model
(x a tuple of arrays, p a list of arrays, one per axis), numpy only: it runs before the
solve, on every rank identically (the sample is drawn from a fixed seed).

MFG models (`MFGModel`), with a random `Density` (positive m at the points, a mean inside
the box; with one population means = mean[None], as Newton passes it):

- dH_dp, dH_dm, dH_dmean: against central differences of the Hamiltonian in p_d, in m
  (pointwise) and in m̄_d; dg_dm, dg_dmean likewise of the terminal cost;
- d2H_dp2 (the whole d×d matrix: Newton needs the off-diagonal entries to be 0) and
  d2H_dpdm: against central differences of dH_dp in p_e and in m (dH_dp is checked
  against H itself, so the chain reaches H);
- Engquist-Osher: what the monotone split needs.  It evaluates H at p_b, whose entries
  are >= 0 on a convex axis and <= 0 on a concave one, and at p_f = −p_b's orthant; it is
  monotone iff, inside these two orthants, H grows along every convex axis and falls
  along every concave axis as |p_d| grows away from 0 (the extremum at p_d = 0);
- m0: finite, non-negative, with a positive total on the grid (every population).

dH_dmean, dg_dmean only where `couples_through_mean`; dH_dm, d2H_dpdm, dg_dm always (the
defaults return 0, so a model that reads m and forgot them fails; where
`couples_locally` is False the differences in m must vanish too).

Leader-follower models: drifts affine in the controls (leader_drift in u0, follower_drift
in u1 and in u0, the mean drift ż(u0) the leader's equation uses), the follower's response
affine in x1 and u0, and the two minimisers minimising over the admissible controls.
Discrete games: the leader's actions, transition rows non-negative and summing to 1, the
rewards finite and of the right shapes.

Tolerances.  A central difference with step h = 1e-6 max(1, |v|) has truncation error
h² |F'''| / 6 (about 1e-12 relative for the smooth models here) and rounding error about
eps |F| / h; a derivative passes where its error is at most

    1e-6 (1 + max |difference|) + 100 eps |F| / h,

the first term relative to the derivative's scale (a 1 % error, a sign flip or a missing
term of any size above 1e-6 of the scale fails), the second a generous bound of the
rounding, so a large constant in H (a deep potential) cannot make a correct derivative
fail.  Affinity is an identity up to rounding: 1e-9 relative.  A minimiser passes where no
perturbation (±(1 + |u*|)·10^-k, k = 0..4, kept within the bounds) lowers the objective by
more than 1e-12 (1 + |L(u*)| + |s u*|), about 1e4 ulps of the objective.  Transition rows:
entries >= −1e-12, sums within 1e-10 of 1.
"""
import math
from dataclasses import dataclass

import numpy as np

from .base import Density, MFGModel
from .discrete import DiscreteGameModel
from .leader_follower import LeaderFollowerModel
from .registry import user_error

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


def check_model(model, cfg, points=200, seed=0, cheap=False):
    """The checks of `model` (an MFGModel, LeaderFollowerModel or discrete game) on the
    grid of the resolved configuration `cfg` of its family: a list of Check, one per
    property.  cheap=True: only the structural ones (m0, Engquist-Osher, affine drifts,
    leader actions, transition rows, rewards).  An exception a model raises is a failing
    Check; an MFG model without a horizon gets cfg's time.T (its ModelError, a horizon the
    game refuses, is raised)."""
    rng = np.random.default_rng(seed)
    cfg = cfg or {}
    points = max(int(points), 1)
    if isinstance(model, DiscreteGameModel):
        return _discrete_checks(model, cfg, points, rng, cheap)
    if isinstance(model, LeaderFollowerModel):
        return _leader_follower_checks(model, cfg, points, rng, cheap)
    if isinstance(model, MFGModel):
        return _mfg_checks(model, cfg, points, rng, cheap)
    raise TypeError(f"check_model: not a model: {type(model).__name__}")


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


def _mfg_checks(model, cfg, points, rng, cheap):
    dim = model.dim
    lower, upper, n, T = _box(cfg, dim)
    if getattr(model, "T", None) is None:
        model.set_horizon(T)  # the terminal cost may read the horizon (a ModelError says why not)
    populations = int(getattr(model, "populations", 1) or 1)
    batches = 8  # a few times and means per population
    per = max(1, -(-points // batches))
    samples = [_Sample(rng, lower, upper, n, T, per, populations, k)
               for k in range(populations) for _ in range(batches)]
    out = [_guard("m0", _m0_check, model, lower, upper, n, populations),
           _guard("Engquist-Osher", _eo_check, model, samples, rng)]
    if cheap:
        return out
    out.append(_guard("dH_dp", _dH_dp_check, model, samples))
    out.append(_guard("d2H_dp2", _d2H_dp2_check, model, samples))
    out.append(_guard("dH_dm", _m_check, model, samples, "dH_dm"))
    out.append(_guard("d2H_dpdm", _m_check, model, samples, "d2H_dpdm"))
    out.append(_guard("dg_dm", _m_check, model, samples, "dg_dm"))
    if model.couples_through_mean:
        out.append(_guard("dH_dmean", _mean_check, model, samples, "dH_dmean"))
        out.append(_guard("dg_dmean", _mean_check, model, samples, "dg_dmean"))
    if not out[2].ok:  # the second derivatives are differences of dH_dp, what Newton differentiates
        for c in out:
            if c.name in ("d2H_dp2", "d2H_dpdm") and not c.ok:
                c.detail += "; dH_dp, which it is compared with, fails too"
    return out


def _m0_check(model, lower, upper, n, populations):
    h = (upper - lower) / n
    stride = np.ones(len(n), dtype=int)
    while np.prod(-(-n // stride)) > MAX_GRID:
        stride[np.argmax(-(-n // stride))] *= 2
    axes = [lower[d] + (np.arange(0, n[d], stride[d]) + 0.5) * h[d] for d in range(len(n))]
    shape = tuple(len(a) for a in axes)
    rows = max(1, (1 << 20) // max(1, int(np.prod(shape[1:]))))
    lows, masses = [], []
    for k in range(populations):
        total, low, low_at = 0.0, np.inf, None
        for start in range(0, shape[0], rows):
            block = [axes[0][start:start + rows]] + axes[1:]
            x = tuple(np.meshgrid(*block, indexing="ij", sparse=True))
            m0 = np.broadcast_to(np.asarray(model.initial_density(x, k), dtype=float), tuple(len(b) for b in block))
            bad = ~np.isfinite(m0)
            who = f" of population {k}" if populations > 1 else ""
            if bad.any():
                i = np.unravel_index(int(np.argmax(bad)), m0.shape)
                at = _vec([b[j] for b, j in zip(block, i)])
                return Check("m0", False, f"the initial density m0{who} is not finite ({_g(m0[i])}) at x={at}")
            i = np.unravel_index(int(np.argmin(m0)), m0.shape)
            if m0[i] < low:
                low, low_at = float(m0[i]), [b[j] for b, j in zip(block, i)]
            total += float(np.sum(m0))
        mass = total * float(np.prod(h * stride))
        if low < 0:
            return Check("m0", False, f"the initial density m0{who} is negative ({_g(low)}) at x={_vec(low_at)}")
        if not (mass > 0 and np.isfinite(mass)):
            return Check("m0", False, f"the initial density m0{who} has total {_g(mass)} on the grid: it cannot be "
                                      "normalised")
        lows.append(low)
        masses.append(mass)
    sub = "" if np.all(stride == 1) else f" (on a subgrid, strides {tuple(int(s) for s in stride)})"
    return Check("m0", True, f"finite, min {_g(min(lows))}, total {', '.join(_g(v) for v in masses)} on the grid{sub}")


def _eo_check(model, samples, rng):
    """Inside the orthants of p_b and p_f, H moves away from H(p_d = 0) monotonically as
    |p_d| grows: up along a convex axis, down along a concave one."""
    dim = model.dim
    concave = [bool(c) for c in model.concave_axes()]
    if len(concave) != dim:
        return Check("Engquist-Osher", False, f"concave_axes() gives {len(concave)} entries for {dim} axes")
    orient = np.where(concave, -1.0, 1.0)  # direction of p_b's entries, and of H's growth
    tally = _Tally("Engquist-Osher", "decrease")
    for s in samples:
        N = s.N
        for side in (1.0, -1.0):  # p_b's orthant, p_f's
            base = [side * orient[e] * np.abs(s.p[e]) for e in range(dim)]
            density = s.density()
            for d in range(dim):
                a = side * orient[d] * 10.0 ** rng.uniform(-4.0, 0.5, N)
                r = rng.uniform(0.0, 1.0, N)
                H = []
                for v in (np.zeros(N), r * a, a):
                    p = list(base)
                    p[d] = v
                    H.append(_arr(model.hamiltonian(s.t, s.x, p, density), N))
                # growth away from 0: κ (H(a) − H(ra)) ≥ 0 and κ (H(ra) − H(0)) ≥ 0
                fall = np.stack([orient[d] * (H[1] - H[2]), orient[d] * (H[0] - H[1])])
                tol = EO_RTOL * (1.0 + np.abs(H[0]) + np.abs(H[1]) + np.abs(H[2]))

                def where(c, i, d=d, a=a, r=r, base=base, H=H, s=s):
                    kind = "concave" if concave[d] else "convex"
                    lo, hi = (r[i] * a[i], a[i]) if c == 0 else (0.0, r[i] * a[i])
                    Hlo, Hhi = (H[1][i], H[2][i]) if c == 0 else (H[0][i], H[1][i])
                    other = [base[e][i] for e in range(dim)]
                    other[d] = hi
                    return (f"axis {d} (declared {kind}): H(p_{d}={_g(hi)}) = {_g(Hhi)} vs H(p_{d}={_g(lo)}) = "
                            f"{_g(Hlo)}, at t={_g(s.t)}, x={_vec([xd[i] for xd in s.x])}, p={_vec(other)}")
                tally.add(np.maximum(fall, 0.0), np.stack([tol, tol]), where, count=0)
    tally.count = sum(s.N for s in samples)
    axes = ", ".join(str(i) for i, c in enumerate(concave) if c) or "none"
    return tally.check(f"H grows away from p_d = 0 along every convex axis, falls along the concave ones ({axes}), "
                       f"in the orthants of p_b and p_f, at {tally.count} points x {dim} axes")


def _dH_dp_check(model, samples):
    dim, tally = model.dim, _Tally("dH_dp", against="H in p")
    for s in samples:
        density = s.density()
        analytic = model.dH_dp(s.t, s.x, s.p, density)
        if len(analytic) != dim:
            return Check("dH_dp", False, f"returns {len(analytic)} arrays for {dim} axes")
        errs, tols, scales = [], [], []
        for d in range(dim):
            def H(v, d=d):
                p = list(s.p)
                p[d] = v
                return _arr(model.hamiltonian(s.t, s.x, p, density), s.N)
            fd, noise = _difference(H, s.p[d], _step(s.p[d]))
            e, t, sc = _compare(_arr(analytic[d], s.N), fd, noise)
            errs.append(e), tols.append(t), scales.append(sc)
        tally.add(np.stack(errs), np.stack(tols), lambda c, i, s=s: f"axis {c}, {s.where(i)}", scales)
    return tally.check()


def _d2H_dp2_check(model, samples):
    dim, tally = model.dim, _Tally("d2H_dp2", against="dH_dp in p")
    for s in samples:
        density = s.density()
        try:
            analytic = model.d2H_dp2(s.t, s.x, s.p, density)
        except NotImplementedError:
            return Check("d2H_dp2", True, NOT_IMPLEMENTED)
        if len(analytic) != dim or any(len(row) != dim for row in analytic):
            return Check("d2H_dp2", False, f"is not a {dim}x{dim} nested list")
        errs, tols, scales, labels = [], [], [], []
        for e in range(dim):
            def dH(v, e=e):
                p = list(s.p)
                p[e] = v
                return np.stack([_arr(g, s.N) for g in model.dH_dp(s.t, s.x, p, density)])
            fd, noise = _difference(dH, s.p[e], _step(s.p[e]))
            for d in range(dim):
                err, tol, sc = _compare(_arr(analytic[d][e], s.N), fd[d], noise[d])
                errs.append(err), tols.append(tol), scales.append(sc), labels.append((d, e))
        tally.add(np.stack(errs), np.stack(tols),
                  lambda c, i, s=s: f"entry {labels[c]} (difference of dH_dp), {s.where(i)}", scales)
    return tally.check()


def _m_check(model, samples, name):
    """dH_dm, d2H_dpdm, dg_dm against differences in m at every point (mass and mean held:
    the unknowns Newton linearises in)."""
    against = {"dH_dm": "H in m", "d2H_dpdm": "dH_dp in m", "dg_dm": "g in m"}[name]
    dim, tally = model.dim, _Tally(name, against=against)
    local = bool(model.couples_locally)
    if not local:
        tally.note = "couples_locally is False, so it must not depend on m"
    for s in samples:
        density = s.density()
        try:
            if name == "dH_dm":
                analytic = [model.dH_dm(s.t, s.x, s.p, density)]
            elif name == "d2H_dpdm":
                analytic = list(model.d2H_dpdm(s.t, s.x, s.p, density))
            else:
                analytic = [model.dg_dm(s.x, density)]
        except NotImplementedError:
            return Check(name, True, NOT_IMPLEMENTED)
        if len(analytic) != (dim if name == "d2H_dpdm" else 1):
            return Check(name, False, f"returns {len(analytic)} entries, expected {dim}")

        def f(m):
            d = s.density(m=m)
            if name == "dH_dm":
                return _arr(model.hamiltonian(s.t, s.x, s.p, d), s.N)[None]
            if name == "d2H_dpdm":
                return np.stack([_arr(v, s.N) for v in model.dH_dp(s.t, s.x, s.p, d)])
            return _arr(model.terminal(s.x, d), s.N)[None]
        fd, noise = _difference(f, s.m, _step(s.m))
        errs, tols, scales = [], [], []
        for c, a in enumerate(analytic):
            err, tol, sc = _compare(_arr(a, s.N), fd[c], noise[c])
            if not local:
                err = np.maximum(err, np.abs(fd[c]))
            errs.append(err), tols.append(tol), scales.append(sc)
        hjb = name != "dg_dm"
        label = (lambda c: f"axis {c}, ") if name == "d2H_dpdm" else (lambda c: "")
        tally.add(np.stack(errs), np.stack(tols),
                  lambda c, i, s=s: label(c) + s.where(i, p=hjb, t=hjb), scales)
    return tally.check()


def _mean_check(model, samples, name):
    """dH_dmean, dg_dmean against differences in m̄_d (the population's row of means moves
    with it)."""
    dim, tally = model.dim, _Tally(name, against="H in the mean" if name == "dH_dmean" else "g in the mean")
    for s in samples:
        hjb = name == "dH_dmean"
        try:
            analytic = list(model.dH_dmean(s.t, s.x, s.p, s.density()) if hjb else model.dg_dmean(s.x, s.density()))
        except NotImplementedError:
            return Check(name, True, NOT_IMPLEMENTED)
        if len(analytic) != dim:
            return Check(name, False, f"returns {len(analytic)} entries for {dim} axes")
        errs, tols, scales = [], [], []
        for d in range(dim):
            h = float(_step(s.mean[d]))

            def f(v, d=d):
                mean = s.mean.copy()
                mean[d] = v
                dens = s.density(mean=mean)
                return _arr(model.hamiltonian(s.t, s.x, s.p, dens) if hjb else model.terminal(s.x, dens), s.N)
            fd, noise = _difference(f, s.mean[d], h)
            err, tol, sc = _compare(_arr(analytic[d], s.N), fd, noise)
            errs.append(err), tols.append(tol), scales.append(sc)
        tally.add(np.stack(errs), np.stack(tols),
                  lambda c, i, s=s: f"axis {c}, " + s.where(i, p=hjb, t=hjb, mean=True), scales)
    return tally.check()


# -- leader-follower games ----------------------------------------------------------------
def _interval(cfg, key):
    v = cfg.get("grid", {}).get(key, [-3.0, 3.0])
    try:
        lo, hi = float(v[0]), float(v[1])
    except (TypeError, ValueError, IndexError):
        lo, hi = -3.0, 3.0
    return (lo, hi) if lo < hi else (-3.0, 3.0)


def _finite_range(low, high, width=5.0):
    lo = low if np.isfinite(low) else (high - 2 * width if np.isfinite(high) else -width)
    hi = high if np.isfinite(high) else lo + 2 * width
    return lo, hi


def _leader_follower_checks(model, cfg, points, rng, cheap):
    N = points
    x0 = rng.uniform(*_interval(cfg, "x0"), N)
    zlo, zhi = _interval(cfg, "z")
    z, x1 = rng.uniform(zlo, zhi, N), rng.uniform(zlo, zhi, N)
    low, high = (float(v) for v in model.leader_bounds())
    u0 = rng.uniform(*_finite_range(low, high), N)
    u1 = rng.uniform(-5.0, 5.0, N)
    s = rng.uniform(-10.0, 10.0, N)
    pts = dict(x0=x0, x1=x1, z=z, u0=u0, u1=u1, s=s)

    def where(i, *keys):
        return ", ".join(f"{k}={_g(pts[k][i])}" for k in keys)

    out = [_guard("drift affine", _drift_affine, model, pts, where),
           _guard("response affine", _response_affine, model, pts, where, (zlo, zhi))]
    if cheap:
        return out
    out.append(_guard("leader_control", _minimiser, "leader_control", model, pts, where, low, high))
    out.append(_guard("follower_control", _minimiser, "follower_control", model, pts, where, -np.inf, np.inf))
    return out


def _affine(f, u, n):
    """|f(u) − f(0) − u (f(1) − f(0))| and its tolerance, f a function of the control."""
    f0, f1, fu = (_arr(f(v), n) for v in (0.0, 1.0, u))
    slope = f1 - f0
    tol = AFFINE_RTOL * (1.0 + np.max(np.abs(f0)) + np.max(np.abs(u * slope)))
    return np.abs(fu - f0 - u * slope), np.full(n, tol)


def _drift_affine(model, pts, where):
    x0, x1, z, u0, u1, s = (pts[k] for k in ("x0", "x1", "z", "u0", "u1", "s"))
    N = len(x0)
    parts = [("leader_drift in u0", _affine(lambda u: model.leader_drift(x0, z, u), u0, N), ("x0", "z", "u0")),
             ("follower_drift in u1", _affine(lambda u: model.follower_drift(x0, x1, z, u0, u), u1, N),
              ("x0", "x1", "z", "u0", "u1")),
             ("follower_drift in u0", _affine(lambda u: model.follower_drift(x0, x1, z, u, u1), u0, N),
              ("x0", "x1", "z", "u0", "u1")),
             ("mean drift zdot in u0", _affine(lambda u: model.follower_drift(
                 x0, z, z, u, model.follower_control(x0, z, z, u, s)), u0, N), ("x0", "z", "u0", "s"))]
    tally = _Tally("drift affine", "deviation")
    tally.add(np.stack([p[1][0] for p in parts]), np.stack([p[1][1] for p in parts]),
              lambda c, i: f"{parts[c][0]}, {where(i, *parts[c][2])}")
    return tally.check(f"leader_drift in u0, follower_drift in u1 and u0, zdot in u0: max deviation {tally.emax:.2g} "
                       f"(tolerance {tally.tol_at:.2g}) at {tally.count} points")


def _response_affine(model, pts, where, zbounds):
    """The follower's response û1 affine in x1 (between the ends of the axis) and in u0."""
    x0, x1, z, u0, s = (pts[k] for k in ("x0", "x1", "z", "u0", "s"))
    N = len(x0)
    a, b = zbounds
    ua, ub = (_arr(model.follower_control(x0, v, z, u0, s), N) for v in (a, b))
    ux = _arr(model.follower_control(x0, x1, z, u0, s), N)
    lin = ua + (x1 - a) / (b - a) * (ub - ua)
    tol_x = np.full(N, AFFINE_RTOL * (1.0 + np.max(np.abs(ua)) + np.max(np.abs(ub))))
    err_u, tol_u = _affine(lambda u: model.follower_control(x0, x1, z, u, s), u0, N)
    tally = _Tally("response affine", "deviation")
    names = ("follower_control in x1", "follower_control in u0")
    tally.add(np.stack([np.abs(ux - lin), err_u]), np.stack([tol_x, tol_u]),
              lambda c, i: f"{names[c]}, {where(i, 'x0', 'x1', 'z', 'u0', 's')}")
    return tally.check(f"follower_control in x1 and u0: max deviation {tally.emax:.2g} (tolerance "
                       f"{tally.tol_at:.2g}) at {tally.count} points")


def _minimiser(name, model, pts, where, low, high):
    """u* = argmin J, J(u) = cost(u) + s u over [low, high]: within the bounds, and no
    perturbation within them lowers J by more than the tolerance."""
    x0, x1, z, u0, s = (pts[k] for k in ("x0", "x1", "z", "u0", "s"))
    N = len(x0)
    if name == "leader_control":
        star = _arr(model.leader_control(x0, z, s), N)
        J = lambda u: _arr(model.leader_cost(x0, z, u), N) + s * u  # noqa: E731
        keys, var, cost = ("x0", "z", "s"), "u0", "L0(x0, z, u0) + s u0"
    else:
        star = _arr(model.follower_control(x0, x1, z, u0, s), N)
        J = lambda u: _arr(model.follower_cost(x0, x1, z, u0, u), N) + s * u  # noqa: E731
        keys, var, cost = ("x0", "x1", "z", "u0", "s"), "u1", "L(x0, x1, z, u0, u1) + s u1"
    slack = 1e-12 * (1.0 + np.abs(star))
    outside = ~((star >= low - slack) & (star <= high + slack))
    if outside.any():
        i = int(np.argmax(outside))
        return Check(name, False, f"{var} = {_g(star[i])} outside the admissible [{_g(low)}, {_g(high)}] at "
                                  f"{where(i, *keys)}")
    j_star = J(star)
    tol = MINIMUM_RTOL * (1.0 + np.abs(j_star) + np.abs(s * star))
    tally = _Tally(name, "decrease")
    deltas = [sign * 10.0 ** -k for k in range(5) for sign in (1.0, -1.0)]
    drops, trials = [], []
    for delta in deltas:
        u = np.clip(star + delta * (1.0 + np.abs(star)), low, high)
        drops.append(j_star - J(u))
        trials.append(u)
    drops = np.stack(drops)
    trials = np.stack(trials)
    tally.add(np.where(np.isfinite(j_star), np.maximum(drops, 0.0), np.inf), np.broadcast_to(tol, drops.shape),
              lambda c, i: f"{where(i, *keys)}: {var}* = {_g(star[i])} but {var} = {_g(trials[c, i])} is lower",
              count=N)
    bounds = f" within [{_g(low)}, {_g(high)}]" if np.isfinite(low) or np.isfinite(high) else ""
    return tally.check(f"minimises {cost}{bounds}: no perturbation lowers it by more than the tolerance "
                       f"({_g(tally.tol_at)}; largest drop {_g(np.max(drops))}) at {N} points")


# -- discrete games ------------------------------------------------------------------------
def _simplex_sample(rng, S, n, k):
    """k points k/n of the simplex lattice (random compositions of n), then its vertices."""
    cuts = np.sort(rng.integers(0, n + 1, (k, S - 1)), axis=1)
    counts = np.diff(np.concatenate([np.zeros((k, 1), int), cuts, np.full((k, 1), n)], axis=1), axis=1)
    return np.concatenate([counts / n, np.eye(S)])


def _discrete_checks(model, cfg, points, rng, cheap):
    S, A = len(model.states), len(model.actions)
    n = cfg.get("grid", {}).get("n", 50)
    n = n if isinstance(n, int) and not isinstance(n, bool) and n >= 1 else 50
    z = _simplex_sample(rng, S, n, points)
    k = len(z)
    actions = _guard("leader actions", model.leader_actions)
    if isinstance(actions, Check):
        return [actions]
    ok, detail = _leader_actions_ok(actions)
    out = [Check("leader actions", ok, detail)]
    if not ok:
        return out
    if isinstance(actions, tuple):
        lo, hi = float(actions[0]), float(actions[1])
        scalars = [lo, 0.5 * (lo + hi), hi] + list(rng.uniform(lo, hi, 2))
        rows = rng.uniform(lo, hi, k)
    else:
        scalars = [float(a) for a in actions]
        rows = rng.choice(np.asarray(actions, dtype=float), k)
    out.append(_guard("transition rows", _transition_check, model, z, scalars, rows, S, A))
    out.append(_guard("rewards", _rewards_check, model, z, scalars, rows, S, A, rng))
    return out


def _leader_actions_ok(actions):
    if isinstance(actions, tuple):
        if len(actions) == 2 and all(np.isfinite(float(v)) for v in actions) and actions[0] < actions[1]:
            return True, f"the interval [{_g(actions[0])}, {_g(actions[1])}]"
        return False, f"an interval must be (low, high), finite, low < high; got {actions!r}"
    values = np.asarray(actions, dtype=float).ravel()
    if values.size and np.all(np.isfinite(values)):
        return True, f"{values.size} actions"
    return False, f"a list of finite actions, got {actions!r}"


def _transition_check(model, z, scalars, rows, S, A):
    k = len(z)
    bad = []
    count = 0
    for b in scalars + [rows]:
        Q = np.asarray(model.transition(z, b), dtype=float)
        if Q.shape != (k, S, A, S):
            return Check("transition rows", False, f"Q has shape {Q.shape}, expected {(k, S, A, S)}")
        count += 1
        sums = Q.sum(axis=3)
        finite = np.isfinite(Q).all(axis=3)
        low = Q.min(axis=3)
        gap = np.where(finite, np.abs(sums - 1.0), np.inf)
        viol = np.maximum(gap / ROW_SUM_TOL, np.where(finite, -low / ROW_MIN_TOL, np.inf))
        j = np.unravel_index(int(np.argmax(viol)), viol.shape)
        if viol[j] > 1.0:
            bv = b if np.ndim(b) == 0 else b[j[0]]
            what = ("is not finite" if not finite[j] else f"sums to {sums[j]:.6g}" if gap[j] > ROW_SUM_TOL
                    else f"has a negative entry {_g(low[j])}")
            bad.append((viol[j], f"Q[x={model.states[j[1]]}, a={model.actions[j[2]]}, ·] {what} at "
                                 f"z={_vec(z[j[0]])}, b={_g(bv)}"))
    if bad:
        return Check("transition rows", False, max(bad)[1])
    return Check("transition rows", True, f"non-negative, summing to 1 within {ROW_SUM_TOL:g}, at {k} population "
                                          f"states × {count} leader actions")


def _rewards_check(model, z, scalars, rows, S, A, rng):
    k = len(z)
    policies = [rng.dirichlet(np.ones(A), (k, S))]
    pure = np.zeros((k, S, A))
    pure[np.arange(k)[:, None], np.arange(S)[None], rng.integers(0, A, (k, S))] = 1.0
    policies.append(pure)
    for b in scalars + [rows]:
        Rf = np.asarray(model.follower_reward(z, b), dtype=float)
        if Rf.shape != (k, S, A):
            return Check("rewards", False, f"follower_reward has shape {Rf.shape}, expected {(k, S, A)}")
        if not np.isfinite(Rf).all():
            j = np.unravel_index(int(np.argmax(~np.isfinite(Rf))), Rf.shape)
            bv = b if np.ndim(b) == 0 else b[j[0]]
            return Check("rewards", False, f"follower_reward not finite at z={_vec(z[j[0]])}, b={_g(bv)}, "
                                           f"x={model.states[j[1]]}, a={model.actions[j[2]]}")
        for policy in policies:
            Rl = np.asarray(model.leader_reward(z, b, policy), dtype=float)
            if Rl.shape != (k,):
                return Check("rewards", False, f"leader_reward has shape {Rl.shape}, expected {(k,)}")
            if not np.isfinite(Rl).all():
                j = int(np.argmax(~np.isfinite(Rl)))
                bv = b if np.ndim(b) == 0 else b[j]
                return Check("rewards", False, f"leader_reward not finite at z={_vec(z[j])}, b={_g(bv)}")
    return Check("rewards", True, f"follower_reward and leader_reward finite, of shapes (k, S, A) and (k,), at {k} "
                                  f"population states × {len(scalars) + 1} leader actions")


def check_cheaply(model, cfg):
    """The cheap checks (structure, m0, transition rows), run before a solve: ModelError
    naming the first that fails."""
    failed = [c for c in check_model(model, cfg, cheap=True) if not c.ok]
    if failed:
        from .base import ModelError
        raise ModelError(f"model '{model.name}' breaks its contract: {failed[0].name}: {failed[0].detail} "
                         f"(`mfgpde check` lists every check)")
