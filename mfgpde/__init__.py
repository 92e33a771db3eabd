"""mfgpde: finite-difference solvers for mean field games."""
__version__ = "0.1.0"

from .api import NotConverged, Result, solve  # noqa: E402
from .config import ConfigError  # noqa: E402
from .models import Density, DiscreteGameModel, LeaderFollowerModel, MFGModel, ModelError, register  # noqa: E402

__all__ = ["ConfigError", "Density", "DiscreteGameModel", "LeaderFollowerModel", "MFGModel", "ModelError",
           "NotConverged", "Result", "register", "solve"]
