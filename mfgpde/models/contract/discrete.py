"""The contract checks of discrete games (see the package docstring)."""

import numpy as np

from ..discrete import PrivateTypeModel
from .common import ROW_MIN_TOL, ROW_SUM_TOL, Check, _g, _guard, _vec


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
    types = (2,) if isinstance(model, PrivateTypeModel) else ()  # one reward per leader type
    for b in scalars + [rows]:
        Rf = np.asarray(model.follower_reward(z, b), dtype=float)
        if Rf.shape != (k, *types, S, A):
            return Check("rewards", False, f"follower_reward has shape {Rf.shape}, expected {(k, *types, S, A)}")
        if not np.isfinite(Rf).all():
            j = np.unravel_index(int(np.argmax(~np.isfinite(Rf))), Rf.shape)
            bv = b if np.ndim(b) == 0 else b[j[0]]
            return Check("rewards", False, f"follower_reward not finite at z={_vec(z[j[0]])}, b={_g(bv)}, "
                                           f"x={model.states[j[-2]]}, a={model.actions[j[-1]]}")
        for policy in policies:
            Rl = np.asarray(model.leader_reward(z, b, policy), dtype=float)
            if Rl.shape != (k, *types):
                return Check("rewards", False, f"leader_reward has shape {Rl.shape}, expected {(k, *types)}")
            if not np.isfinite(Rl).all():
                j = np.unravel_index(int(np.argmax(~np.isfinite(Rl))), Rl.shape)[0]
                bv = b if np.ndim(b) == 0 else b[j]
                return Check("rewards", False, f"leader_reward not finite at z={_vec(z[j])}, b={_g(bv)}")
    shapes = "(k, 2, S, A) and (k, 2)" if types else "(k, S, A) and (k,)"
    return Check("rewards", True, f"follower_reward and leader_reward finite, of shapes {shapes}, at {k} "
                                  f"population states × {len(scalars) + 1} leader actions")

