"""Incentive design with N symmetric followers: J_i = E[½(u_i − x_i)² + a u_i ū + u0],
J0 = E[½ q ū² + ρ/(2N) Σ(u_i − x_i)²], types x_i ~ N(μ, s²); the incentive's gain grows
like N (closedforms.incentive.FollowersGame)."""
from ..closedforms.incentive import FollowersGame
from .incentive import IncentiveModel
from .registry import register


@register
class IncentiveFollowers(IncentiveModel):
    """A leader and N symmetric followers: the incentive that enforces the team optimum, its gain growing like N"""
    name = "incentive_followers"
    parameters = {"a": 0.5, "q": 2.0, "rho": 1.0, "mu": 1.0, "s": 0.5}

    def validate(self):
        self.a, self.mu = self._number("a", 0.0), self._number("mu")
        self.q, self.rho, self.s = (self._number(k, 0.0, strict=True) for k in ("q", "rho", "s"))

    def game(self, N):
        return FollowersGame(N=N, a=self.a, q=self.q, rho=self.rho, mu=self.mu, s=self.s)
