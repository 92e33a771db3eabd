"""The abstract model interface that solvers see, and the registry of models by name.

A mean field game on a box, ν = σ²/2, discount ρ ≥ 0:

    −∂t u + ρ u − ν Δu + H(t, x, ∇u; m) = 0,    u(T) = g(x; m(T))
     ∂t m − ν Δm − div(m ∂pH(t, x, ∇u; m)) = 0,  m(0) = m0

H must be separable in the sense the Engquist–Osher upwinding relies on: along each
axis d convex in p_d with its minimum at p_d = 0 (the drift −∂pH points against the
gradient), or concave with its maximum there (an axis listed by `concave_axes`, where an
adversary dominates an Isaacs Hamiltonian).

A model may describe several populations (`populations` > 1): each has its own u and m,
and H, g read the others through `Density.means`.
"""
from dataclasses import dataclass

import numpy as np

from ..config import HUGE, TINY


class ModelError(ValueError):
    """A model parameter is missing, unknown or invalid; the message names it."""


@dataclass
class Density:
    """What a model may read of the population at one time: the owned values of m,
    its total mass and its mean vector ∫ x m dx (global, on every rank); with several
    populations, which one this is and the means of all of them (populations × dim)."""
    m: np.ndarray
    mass: float
    mean: np.ndarray
    means: np.ndarray = None
    population: int = 0


class MFGModel:
    """Base class: subclasses set `name`, `parameters` (name -> default, None if required)
    and implement the methods below on owned blocks (x: tuple of broadcastable arrays,
    p: list of arrays, one per axis)."""

    name = None
    parameters = {}
    family = "mfg"
    required = ("hamiltonian", "dH_dp", "terminal", "initial_density")

    def __init__(self, dim, **params):
        unknown = sorted(set(params) - set(self.parameters))
        if unknown:
            raise ModelError(f"model.{unknown[0]}: unknown parameter for model '{self.name}' "
                             f"(known: {', '.join(sorted(self.parameters))})")
        missing = [k for k, v in self.parameters.items() if v is None and k not in params]
        if missing:
            raise ModelError(f"model.{missing[0]}: required by model '{self.name}'")
        self.dim = dim
        self.params = {**self.parameters, **params}
        for key, value in self.params.items():
            setattr(self, key, value)
        self.validate()

    def validate(self):
        """Raise ModelError naming the parameter when a value is out of range."""

    # helpers for validate()
    def _number(self, key, minimum=None, strict=False):
        value = self.params[key]
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not np.isfinite(value):
            raise ModelError(f"model.{key}: must be a finite number, got {value!r}")
        if minimum is not None and (value < minimum or (strict and value == minimum)):
            raise ModelError(f"model.{key}: must be {'>' if strict else '>='} {minimum}, got {value!r}")
        if abs(value) > HUGE or (strict and minimum == 0 and value < TINY):
            raise ModelError(f"model.{key}: too {'large' if abs(value) > HUGE else 'small'} to compute with "
                             f"(magnitude in [{TINY:g}, {HUGE:g}]), got {value!r}")
        return float(value)

    def _per_axis(self, key):
        value = self.params[key]
        values = list(value) if isinstance(value, (list, tuple)) else [value] * self.dim
        if len(values) != self.dim:
            raise ModelError(f"model.{key}: needs one entry per axis ({self.dim}), got {value!r}")
        for v in values:
            if isinstance(v, bool) or not isinstance(v, (int, float)) or not np.isfinite(v):
                raise ModelError(f"model.{key}: must be finite numbers, got {value!r}")
            if abs(v) > HUGE:
                raise ModelError(f"model.{key}: too large to compute with (magnitude at most {HUGE:g}), got {value!r}")
        return np.array(values, dtype=float)

    @property
    def nu(self):
        """ν = σ²/2."""
        return 0.5 * self.sigma ** 2

    def _sigma(self):
        """σ ≥ 0 with a finite ν (the common check of every model)."""
        sigma = self._number("sigma", 0.0)
        if not np.isfinite(0.5 * sigma ** 2 if sigma < 1e150 else np.inf):
            raise ModelError(f"model.sigma: too large, got {sigma!r}")
        return sigma

    rho = 0.0
    populations = 1

    def concave_axes(self):
        """Per axis, True where H is concave in p_d (maximum at 0) rather than convex."""
        return [False] * self.dim

    T = None

    def set_horizon(self, T):
        """Called once with the horizon before solving; raise ModelError (naming time.T)
        when the game is ill-posed on [0, T]."""
        self.T = float(T)

    def notes(self):
        """Lines worth telling the user about this model on [0, T] (printed, and stored)."""
        return []

    def feedbacks(self, grad_u):
        """Named fields derived from ∇u (one array per axis) to write beside u and m."""
        return {}

    def hamiltonian(self, t, x, p, density):
        raise NotImplementedError

    def dH_dp(self, t, x, p, density):
        """∂H/∂p_d, one array per axis."""
        raise NotImplementedError

    def terminal(self, x, density):
        """g(x; m(T))."""
        raise NotImplementedError

    def initial_density(self, x, population=0):
        """m0 up to normalisation (the solver scales it to mass 1)."""
        raise NotImplementedError

    def closed_form(self, T):
        """An object with u(t, *x), m(t, *x), mean(t), var(t) where the model has one."""
        return None

    # -- derivatives for Newton on the whole system ----------------------------------
    # Arrays or scalars broadcastable to the owned block; 0.0 means "does not depend".
    couples_through_mean = False  # True when H or g read density.mean
    couples_locally = True  # False when H and g read the density only through density.mean

    def d2H_dp2(self, t, x, p, density):
        """∂²H/∂p_d∂p_e as a d×d nested list."""
        raise NotImplementedError(f"model '{self.name}' has no d2H_dp2: Newton coupling needs it")

    def dH_dm(self, t, x, p, density):
        """∂H/∂m for a local coupling (H depends on m(t, x) at the same point)."""
        return 0.0

    def d2H_dpdm(self, t, x, p, density):
        """∂²H/∂p_d∂m per axis, where ∂pH depends on the local density."""
        return [0.0] * self.dim

    def dH_dmean(self, t, x, p, density):
        """∂H/∂m̄_d per axis (used when couples_through_mean)."""
        return [0.0] * self.dim

    def dg_dm(self, x, density):
        """∂g/∂m for a local terminal coupling."""
        return 0.0

    def dg_dmean(self, x, density):
        """∂g/∂m̄_d per axis (used when couples_through_mean)."""
        return [0.0] * self.dim
