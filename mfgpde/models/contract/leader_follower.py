"""The contract checks of leader-follower models (see the package docstring)."""

import numpy as np

from .common import AFFINE_RTOL, MINIMUM_RTOL, Check, _arr, _g, _guard, _Tally


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

