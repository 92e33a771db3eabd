"""The interface of static incentive-design Stackelberg games (Sanjari, Bose & Başar
2022; the formulation is in mfgpde/closedforms/incentive.py): a leader charges a transfer
after observing the followers' types and actions, and the game has closed forms for every
number N of followers.  A model validates its parameters and builds the closed-form game
of N followers; the pipeline tabulates it over N and checks it numerically."""
from .base import MFGModel


class IncentiveModel(MFGModel):
    """Subclasses set `name`, `parameters` and implement `game(N)`: the closed-form game of
    N followers (N a whole number >= 1, or math.inf) with the model's parameters."""

    family = "incentive"
    required = ("game",)
    major = False  # True for a game with a major follower (its comparison over b and p)

    def __init__(self, **params):
        super().__init__(None, **params)

    def game(self, N):
        raise NotImplementedError
