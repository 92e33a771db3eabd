"""Models, one file each, registered by name.  Solvers see only `MFGModel`."""
from . import lq_mfg  # noqa: F401  (registers)
from . import congestion  # noqa: F401
from . import robust_designer  # noqa: F401
from . import infection, technology  # noqa: F401
from . import lq_stackelberg, saturated_stackelberg  # noqa: F401
from .base import Density, MFGModel, ModelError, available_models, create_model, model_defaults, register

__all__ = ["Density", "MFGModel", "ModelError", "available_models", "create_model", "model_defaults", "register"]
