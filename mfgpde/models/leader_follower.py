"""The interface of continuous-time mean field Stackelberg games (Huang & Yang 2020)
whose values depend on the population through its mean z, and their registry by name.

Leader x0, representative follower x1 (scalar states and controls):

    dx0 = f0(x0, z, u0) dt + σ0 dW0,      dx1 = f(x0, x1, z, u0, u1) dt + σ dW1,
    running costs L0(x0, z, u0) and L(x0, x1, z, u0, u1), discount ρ, zero terminal values.

The population mean moves with the follower drift at x1 = z: ż = f(x0, z, z, u0, û1), û1
the followers' response at their mean.  Contract the reduction to z relies on: the drifts
are affine in the controls, the follower's response û1 is affine in x1 and in u0 (a
follower cost quadratic in (x1, u1)); the leader's drift and cost may be nonlinear in
(x0, z) and its control may be bounded.  Every method is vectorised over numpy arrays.
"""
import numpy as np

from .base import MFGModel

class LeaderFollowerModel(MFGModel):
    """Subclasses set `name`, `parameters` (with sigma0, sigma, rho) and implement the
    drifts, costs and the two pointwise minimisers below."""

    family = "leader_follower"
    required = ("leader_drift", "follower_drift", "leader_cost", "follower_cost", "leader_control",
                "follower_control")

    def __init__(self, **params):
        super().__init__(3, **params)

    def leader_drift(self, x0, z, u0):
        """f0."""
        raise NotImplementedError

    def follower_drift(self, x0, x1, z, u0, u1):
        """f."""
        raise NotImplementedError

    def leader_cost(self, x0, z, u0):
        """L0."""
        raise NotImplementedError

    def follower_cost(self, x0, x1, z, u0, u1):
        """L."""
        raise NotImplementedError

    def leader_control(self, x0, z, s):
        """argmin over admissible u0 of L0(x0, z, u0) + s u0 (L0 convex in u0)."""
        raise NotImplementedError

    def leader_bounds(self):
        """The admissible leader controls [low, high]."""
        return -np.inf, np.inf

    def follower_control(self, x0, x1, z, u0, s):
        """argmin over u1 of L(x0, x1, z, u0, u1) + s u1 (L convex in u1)."""
        raise NotImplementedError

    def closed_form(self, T):
        """The LQ closed form (Riccati solution) where the model has one, else None."""
        return None

    def lq_reference(self, T):
        """An LQ game's Riccati solution to compare the feedbacks with, or None."""
        return None

    def _positive(self, key):
        return self._number(key, 0.0, strict=True)

    def _noise(self):
        for key in ("sigma0", "sigma"):
            self._number(key, 0.0)
        self._number("rho", 0.0)


def control_slope(fn, *args):
    """∂fn/∂u for fn affine in its last argument u: fn(…, 1) − fn(…, 0), and fn(…, 0)."""
    zero = np.asarray(fn(*args, 0.0), dtype=float)
    return zero, np.asarray(fn(*args, 1.0), dtype=float) - zero
