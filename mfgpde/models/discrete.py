"""The interface of discrete-time Stackelberg mean field games (Vasal & Berry 2022,
Section V: a leader without private type), and their registry by name.

Followers have finitely many states x ∈ X and actions a ∈ A; the population state is
z ∈ P(X); the leader picks an action b, from a finite list or an interval.  A follower in
state x playing a moves to x' with probability Q(x' | z, x, a, b) and earns R^f(z, x, a, b);
the leader earns R^l(z, b, γ) given the followers' prescription γ(a | x).  The population
moves to z'(x') = Σ_x z(x) Σ_a γ(a|x) Q(x' | z, x, a, b).  Everything is vectorised over
a batch of population states z (rows).
"""
import numpy as np

from ..config import HUGE
from .base import MFGModel, ModelError

class DiscreteGameModel(MFGModel):
    """Subclasses set `name`, `parameters`, `states`, `actions` (labels) and implement
    transition, follower_reward, leader_reward; `leader_actions()` returns a list of
    values or a (low, high) tuple for an interval.  `delta` is the discount factor."""

    family = "discrete"
    required = ("leader_actions", "transition", "follower_reward", "leader_reward")
    states = ()
    actions = ()
    leader_action = "leader action"  # what the leader's action is, for plots and files

    def __init__(self, **params):
        super().__init__(len(self.states), **params)

    def leader_actions(self):
        raise NotImplementedError

    def transition(self, z, b):
        """Q[k, x, a, x'] for the population states z (k rows) and leader action b."""
        raise NotImplementedError

    def follower_reward(self, z, b):
        """R^f[k, x, a]."""
        raise NotImplementedError

    def leader_reward(self, z, b, policy):
        """R^l[k] for the prescriptions policy[k, x, a]."""
        raise NotImplementedError

    def _probability(self, key, strict=False):
        value = self._number(key, 0.0)
        if value > 1 or (strict and value in (0.0, 1.0)):
            raise ModelError(f"model.{key}: must lie in {'(0, 1)' if strict else '[0, 1]'}, got {value!r}")
        return value

    def _interval(self, key):
        value = self.params[key]
        if (not isinstance(value, list) or len(value) != 2
                or not all(isinstance(v, (int, float)) and not isinstance(v, bool) and abs(v) <= HUGE for v in value)
                or not value[0] < value[1]):
            raise ModelError(f"model.{key}: an interval [low, high] with low < high (magnitudes at most {HUGE:g}), "
                             f"got {value!r}")
        return float(value[0]), float(value[1])


class PrivateTypeModel(DiscreteGameModel):
    """A leader with a private type of two values (`leader_types`, labels), drawn from the
    prior and kept: follower_reward returns (k, 2, S, A) and leader_reward (k, 2), the
    rewards under each type.  Transitions depend on the leader's action, not on its type
    (the population state would reveal it)."""

    leader_types = ()
    pipeline = "private_type"  # families.py: the master equation over (belief, z)

    def follower_reward(self, z, b):
        """R^f[k, θ, x, a]."""
        raise NotImplementedError

    def leader_reward(self, z, b, policy):
        """R^l[k, θ] for the prescriptions policy[k, x, a]."""
        raise NotImplementedError


def population_update(z, policy, Q):
    """z'[k, x'] = Σ_x z[k, x] Σ_a policy[k, x, a] Q[k, x, a, x']."""
    return np.einsum("kx,kxa,kxay->ky", z, policy, Q)
