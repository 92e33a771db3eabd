"""Technology adoption with stickiness and a price-setting firm (Vasal & Berry 2022,
Section VI-B).

States: preference −1 or +1 (indices 0, 1); actions: buy product −1 or +1.  A follower's
preference flips with probability p1 after buying its preferred product and p2 after the
other one (stickiness: p1 < p2 < ½).  Reward (44): x·a + (2 z(+1) − 1)·a minus the price
paid: c for product +1 (the leader's price), c₋₁ for product −1 (exogenous; the paper's
value is −1).  The leader's revenue (45) is c times the share buying product +1.  The
paper gives no values for p1, p2, δ or the price range: the defaults here are ours.
"""
import numpy as np

from .base import ModelError
from .discrete import DiscreteGameModel
from .registry import register


@register
class Technology(DiscreteGameModel):
    name = "technology"
    states = ("minus", "plus")
    actions = ("buy_minus", "buy_plus")
    leader_action = "price c of product +1"
    parameters = {"p1": 0.1, "p2": 0.3, "delta": 0.9, "competitor_price": -1.0, "price": [0.0, 5.0]}

    def validate(self):
        self.p1, self.p2 = self._probability("p1"), self._probability("p2")
        if not self.p1 < self.p2 < 0.5:
            raise ModelError(f"model.p2: stickiness needs p1 < p2 < 1/2, got p1 = {self.p1}, p2 = {self.p2}")
        self.delta = self._probability("delta")
        self.competitor_price = self._number("competitor_price")
        self.price = self._interval("price")

    def leader_actions(self):
        return self.price

    def transition(self, z, b):
        Q = np.zeros((len(z), 2, 2, 2))
        for x in (0, 1):
            for a in (0, 1):
                flip = self.p1 if a == x else self.p2
                Q[:, x, a, x], Q[:, x, a, 1 - x] = 1 - flip, flip
        return Q

    def follower_reward(self, z, b):
        c = np.broadcast_to(b, (len(z),))
        sign = np.array([-1.0, 1.0])
        network = 2 * z[:, 1] - 1
        R = sign[None, :, None] * sign[None, None, :] + network[:, None, None] * sign[None, None, :]
        R[:, :, 1] -= c[:, None]
        R[:, :, 0] -= self.competitor_price
        return R

    def leader_reward(self, z, b, policy):
        c = np.broadcast_to(b, (len(z),))
        return c * np.einsum("kx,kx->k", z, policy[:, :, 1])
