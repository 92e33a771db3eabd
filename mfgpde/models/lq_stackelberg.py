"""Linear–quadratic mean field Stackelberg game (Huang & Yang 2020), scalar states:

    f0 = A0 x0 + B0 u0 + F0 z,                    L0 = Q0 (x0 − Γ0 z)² + R0 u0²,
    f  = A x1 + B u1 + D u0 + F z + G x0,         L  = Q (x1 − Γ1 x0 − Γ2 z)² + R u1² + R1 u0² + 2 R2 u0 u1,

noise σ0 (leader), σ (follower), discount ρ; R, R0 > 0, and the Riccati solution must
exist on [0, T] (checked when the horizon is set: a negative Q can make it blow up).  Defaults: Huang & Yang's parameters (they give
no noise; σ0 = σ = 0.3 here).  Closed form: the Riccati system of
`mfgpde.closedforms.stackelberg_lq`.
"""
from ..closedforms.stackelberg_lq import DEFAULTS, StackelbergLQ
from .base import ModelError
from .leader_follower import LeaderFollowerModel
from .registry import register

PARAMETERS = {k: v for k, v in DEFAULTS.items() if k != "T"}


@register
class LQStackelberg(LeaderFollowerModel):
    name = "stackelberg_lq"
    parameters = dict(PARAMETERS)

    def validate(self):
        for key in self.parameters:
            self._number(key)
        for key in ("R", "R0"):
            self._positive(key)
        self._noise()

    def leader_drift(self, x0, z, u0):
        return self.A0 * x0 + self.B0 * u0 + self.F0 * z

    def follower_drift(self, x0, x1, z, u0, u1):
        return self.A * x1 + self.B * u1 + self.D * u0 + self.F * z + self.G * x0

    def leader_state_cost(self, x0, z):
        return self.Q0 * (x0 - self.Gamma0 * z) ** 2

    def leader_cost(self, x0, z, u0):
        return self.leader_state_cost(x0, z) + self.R0 * u0 ** 2

    def follower_cost(self, x0, x1, z, u0, u1):
        return (self.Q * (x1 - self.Gamma1 * x0 - self.Gamma2 * z) ** 2 + self.R * u1 ** 2
                + self.R1 * u0 ** 2 + 2 * self.R2 * u0 * u1)

    def leader_control(self, x0, z, s):
        return -s / (2 * self.R0)

    def follower_control(self, x0, x1, z, u0, s):
        return -(s + 2 * self.R2 * u0) / (2 * self.R)

    def closed_form(self, T):
        return self.lq_reference(T)

    def lq_reference(self, T):
        """The Riccati solution of the LQ game with these parameters (for this model, its
        closed form; for a nonlinear variant, the LQ game it departs from)."""
        try:
            return StackelbergLQ(T=T, **{k: self.params[k] for k in PARAMETERS})
        except ValueError as e:
            raise ModelError(f"time.T: {e}") from None
