"""Infection spread with a vaccination price (infection.py) set by a planner who knows how
severe the disease is: a private type, "mild" or "severe", drawn once and kept, the cost
per period of being infected `severity[θ]`, for the followers (who expect it under their
belief) and in the planner's welfare −severity[θ] z(infected) − λ r.  The price lies in
`price` (a floor above 0 limits what the price alone can induce), so that what the
followers believe matters to the planner (solvers/private_type.py)."""
import numpy as np

from .base import ModelError
from .discrete import PrivateTypeModel
from .infection import Infection
from .registry import register


@register
class InfectionPrivateSeverity(Infection, PrivateTypeModel):
    name = "infection_private_severity"
    leader_types = ("mild", "severe")
    parameters = {"severity": [0.1, 0.6], "q": 0.9, "lam": 0.3, "delta": 0.9, "price": [0.1, 0.3]}

    def validate(self):
        self.k = 0.0  # infection.py's cost of being infected: here per type, below
        self.q, self.lam, self.delta = self._probability("q"), self._number("lam", 0.0), self._probability("delta")
        self.price = self._interval("price")
        value = self.params["severity"]
        if (not isinstance(value, list) or len(value) != 2 or not all(
                isinstance(v, (int, float)) and not isinstance(v, bool) and 0 <= v < 1e6 for v in value)):
            raise ModelError(f"model.severity: costs ≥ 0 of being infected, one per type [mild, severe], got {value!r}")
        self.severity = np.array(value, float)

    def follower_reward(self, z, b):
        R = np.repeat(Infection.follower_reward(self, z, b)[:, None], 2, axis=1)
        R[:, :, 1, :] -= self.severity[None, :, None]
        return R

    def leader_reward(self, z, b, policy):
        repairs = np.einsum("kx,kx->k", z, policy[:, :, 1])
        return -self.severity[None, :] * z[:, 1:2] - self.lam * repairs[:, None]
