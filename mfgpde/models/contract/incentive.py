"""The contract checks of incentive-design games (see the package docstring)."""
import math

import numpy as np

from .common import Check, _g, _guard

def _closed_forms(model):
    """The closed forms at N = 1, 10 and inf: finite strategies and costs."""
    values = []
    for N in (1, 10, math.inf):
        game = model.game(N)
        if model.major:
            values += [v for d in (game.leader_major(), game.leader_optimal(), game.nash()) for v in d.values()]
        else:
            values += [*game.team(), *game.nash(), *(game.gain() if math.isfinite(N) else ())]
    ok = bool(np.all(np.isfinite(values)))
    return Check("closed forms", ok, f"{len(values)} strategies, gains and costs at N = 1, 10, inf "
                                     f"{'finite' if ok else 'not all finite'}")


def _numerical(model, points):
    """The numerical best responses of the game of 3 followers from `points` samples."""
    from ...validation.incentive_check import TOLERANCE, followers_checks, major_minor_checks
    checks = (major_minor_checks if model.major else followers_checks)(model.game(3), samples=points)
    checks.pop("uncontrolled_gap")
    worst = max(checks, key=checks.get)
    ok = checks[worst] <= TOLERANCE
    return Check("best responses", ok, f"largest discrepancy {_g(checks[worst])} ({worst}) at N = 3, tolerance "
                                       f"{TOLERANCE:g}")


def _incentive_checks(model, cfg, points, rng, cheap):
    out = [_guard("closed forms", _closed_forms, model)]
    if not cheap and out[0].ok:
        out.append(_guard("best responses", _numerical, model, max(points, 10)))
    return out
