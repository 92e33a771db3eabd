"""Incentive design with a major follower and N minor ones: the minors imitate the major
(b) and congest (a), the major congests (e), the leader weighs the major's deviation (p);
the incentive on the major stays finite as N → ∞ (closedforms.incentive.MajorMinorGame)."""
from ..closedforms.incentive import MajorMinorGame
from .base import ModelError
from .incentive import IncentiveModel
from .registry import register


@register
class IncentiveMajorMinor(IncentiveModel):
    """A leader, a major follower and N minors: leader-optimal, leader-major-optimal and uncontrolled outcomes"""
    name = "incentive_major_minor"
    major = True
    parameters = {"a": 0.5, "b": 1.0, "e": 0.2, "q": 2.0, "p": 0.5, "rho": 1.0, "mu": 1.0, "s": 0.5,
                  "mu_M": 1.0, "s_M": 0.5}

    def validate(self):
        self.a, self.b, self.e, self.p = (self._number(k, 0.0) for k in ("a", "b", "e", "p"))
        self.q, self.rho, self.s, self.s_M = (self._number(k, 0.0, strict=True) for k in ("q", "rho", "s", "s_M"))
        self.mu, self.mu_M = self._number("mu"), self._number("mu_M")
        if self.p == 0 and self.b == 0:
            raise ModelError("model.p: p and b cannot both be 0 (the major's strategy would be undetermined)")

    def game(self, N, **change):
        """The game of N minors; `change` replaces parameters (b and p of the comparison)."""
        params = {k: getattr(self, k) for k in self.parameters}
        return MajorMinorGame(N=N, **{**params, **change})
