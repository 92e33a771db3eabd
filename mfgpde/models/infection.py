"""Infection spread with a vaccination price (Vasal & Berry 2022, Section VI-A).

States: healthy (0), infected (1); actions: nothing (0), repair (1).  A healthy node that
does nothing is infected with probability q·z(infected); a repair makes the node healthy;
an infected node stays infected unless it repairs.  The follower pays k per period while
infected and the price c per repair: R^f = −k x − c a.  The leader (the planner) sets
c ∈ [0, λ] (`price`, "auto") and pays the subsidy λ − c per repair, so its reward is the social welfare
−k z(1) − c r plus (c − λ) r = −k z(1) − λ r, r the repair rate (the paper's (39) has an
undefined constant in place of λ).
"""
import numpy as np

from .discrete import DiscreteGameModel
from .registry import register


@register
class Infection(DiscreteGameModel):
    name = "infection"
    states = ("healthy", "infected")
    actions = ("nothing", "repair")
    leader_action = "repair price c"
    parameters = {"k": 0.2, "q": 0.9, "lam": 0.2, "delta": 0.9, "price": "auto"}

    def validate(self):
        self.k = self._number("k", 0.0)
        self.q = self._probability("q")
        self.lam = self._number("lam", 0.0)
        self.delta = self._probability("delta")
        self.price = (0.0, self.lam) if self.params["price"] == "auto" else self._interval("price")

    def leader_actions(self):
        return self.price

    def transition(self, z, b):
        infect = self.q * z[:, 1]
        Q = np.zeros((len(z), 2, 2, 2))
        Q[:, 0, 0, 0], Q[:, 0, 0, 1] = 1 - infect, infect
        Q[:, 0, 1, 0] = 1.0
        Q[:, 1, 0, 1] = 1.0
        Q[:, 1, 1, 0] = 1.0
        return Q

    def follower_reward(self, z, b):
        c = np.broadcast_to(b, (len(z),))
        R = np.zeros((len(z), 2, 2))
        R[:, 1, :] -= self.k
        R[:, :, 1] -= c[:, None]
        return R

    def leader_reward(self, z, b, policy):
        repairs = np.einsum("kx,kx->k", z, policy[:, :, 1])
        return -self.k * z[:, 1] - self.lam * repairs
