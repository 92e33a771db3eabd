"""A nonlinear mean field Stackelberg game: the LQ game of `lq_stackelberg` with the
leader's control saturated, |u0| ≤ u0_max, and a quartic term in its tracking cost,

    L0 = Q0 e² + κ e⁴ + R0 u0²,   e = x0 − Γ0 z.

The follower's problem stays linear–quadratic, so its response is affine in x1 and the
reduction to the population mean stays exact; there is no closed form.
"""
import numpy as np

from .registry import register
from .lq_stackelberg import PARAMETERS, LQStackelberg


@register
class SaturatedStackelberg(LQStackelberg):
    name = "stackelberg_saturated"
    parameters = {**PARAMETERS, "u0_max": 1.0, "kappa": 1.0}

    def validate(self):
        super().validate()
        self._positive("u0_max")
        self._number("kappa", 0.0)

    def leader_state_cost(self, x0, z):
        e = x0 - self.Gamma0 * z
        return self.Q0 * e ** 2 + self.kappa * e ** 4

    def leader_bounds(self):
        return -self.u0_max, self.u0_max

    def leader_control(self, x0, z, s):
        return np.clip(super().leader_control(x0, z, s), -self.u0_max, self.u0_max)

    def closed_form(self, T):
        return None
