"""Models, one file each, registered by name with their game family.  Solvers see only
the family bases (`MFGModel`, `LeaderFollowerModel`, `DiscreteGameModel`,
`IncentiveModel`)."""
from . import lq_mfg  # noqa: F401  (registers)
from . import congestion  # noqa: F401
from . import robust_designer  # noqa: F401
from . import infection, infection_private, technology  # noqa: F401
from . import lq_stackelberg, saturated_stackelberg  # noqa: F401
from . import incentive_followers, incentive_major_minor  # noqa: F401
from .base import Density, MFGModel, ModelError
from .discrete import DiscreteGameModel, PrivateTypeModel
from .incentive import IncentiveModel
from .leader_follower import LeaderFollowerModel
from .registry import create, defaults, family, load_source, lookup, models, parameters, register

__all__ = ["Density", "DiscreteGameModel", "IncentiveModel", "LeaderFollowerModel", "MFGModel", "ModelError", "create",
           "defaults", "family", "load_source", "lookup", "models", "parameters", "register"]
