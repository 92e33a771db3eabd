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
rewards finite and of the right shapes.  Incentive games: the closed forms finite at N = 1, 10 and
inf (cheap), and the numerical best responses of validation/incentive_check.py at N = 3
within 1e-8 of them.

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
import numpy as np

from ..base import MFGModel
from ..discrete import DiscreteGameModel
from ..incentive import IncentiveModel
from ..leader_follower import LeaderFollowerModel
from .common import NOT_IMPLEMENTED, Check  # noqa: F401  (the public names)
from .discrete import _discrete_checks
from .incentive import _incentive_checks
from .leader_follower import _leader_follower_checks
from .mfg import _mfg_checks


def check_model(model, cfg, points=200, seed=0, cheap=False):
    """The checks of `model` (an MFGModel, LeaderFollowerModel, discrete or incentive game) on the
    grid of the resolved configuration `cfg` of its family: a list of Check, one per
    property.  cheap=True: only the structural ones (m0, Engquist-Osher, affine drifts,
    leader actions, transition rows, rewards).  An exception a model raises is a failing
    Check; an MFG model without a horizon gets cfg's time.T (its ModelError, a horizon the
    game refuses, is raised)."""
    rng = np.random.default_rng(seed)
    cfg = cfg or {}
    points = max(int(points), 1)
    if isinstance(model, IncentiveModel):
        return _incentive_checks(model, cfg, points, rng, cheap)
    if isinstance(model, DiscreteGameModel):
        return _discrete_checks(model, cfg, points, rng, cheap)
    if isinstance(model, LeaderFollowerModel):
        return _leader_follower_checks(model, cfg, points, rng, cheap)
    if isinstance(model, MFGModel):
        return _mfg_checks(model, cfg, points, rng, cheap)
    raise TypeError(f"check_model: not a model: {type(model).__name__}")



def check_cheaply(model, cfg):
    """The cheap checks (structure, m0, transition rows), run before a solve: ModelError
    naming the first that fails."""
    failed = [c for c in check_model(model, cfg, cheap=True) if not c.ok]
    if failed:
        from ..base import ModelError
        raise ModelError(f"model '{model.name}' breaks its contract: {failed[0].name}: {failed[0].detail} "
                         f"(`mfgpde check` lists every check)")

