"""Crowd aversion: an attractive potential gathers the crowd, a local congestion cost spreads it.
No closed form.

    L = ½|a|² + V(x) + f(m(t, x)),  g = ½ s_T |x − target|²,  dX = a dt + σ dW
    H(x, p; m) = ½|p|² − V(x) − f(m),   a* = −∇u
    V(x) = −v0 Σ_k exp(−|x − c_k|² / (2 w²))        (c_k: the `attractors`)
    f(m) = c_m m^alpha          (coupling = "power", alpha > 0)
    f(m) = c_m log(m + eps)     (coupling = "log", eps > 0 keeps f finite where m = 0)
    m0 = Gaussian, mean mu0 (per axis), standard deviation s0, product over axes.

`attractors` is a list of points, one list of `dim` coordinates per point (in 1-D a bare
number is a point too); by default one attractor at (0.5, 0, …).  f reads max(m, 0), so
round-off negatives of m do no harm.  With the power coupling and alpha < 1, f'(0) is
infinite and dH_dm is −inf where m = 0: Newton on the whole system wants alpha ≥ 1 or "log".
"""
import numpy as np

from .base import MFGModel, ModelError
from .registry import register

COUPLINGS = ("power", "log")
_ONE_ON_THE_RIGHT = ((0.5,),)  # default `attractors`, padded with zeros to the dimension


@register
class Congestion(MFGModel):
    name = "congestion"
    parameters = {"coupling": "power", "c_m": 1.0, "alpha": 1.0, "eps": 1e-3,
                  "attractors": _ONE_ON_THE_RIGHT, "v0": 1.0, "w": 0.5,
                  "s_T": 0.0, "target": 0.0, "sigma": 0.4, "rho": 0.0,
                  "mu0": -0.5, "s0": 0.3}

    def validate(self):
        if self.coupling not in COUPLINGS:
            raise ModelError(f"model.coupling: one of {', '.join(repr(c) for c in COUPLINGS)}, "
                             f"got {self.coupling!r}")
        self.c_m = self._number("c_m", 0)
        self.alpha = self._number("alpha", 0, strict=True)
        self.eps = self._number("eps", 0, strict=True)
        self.v0 = self._number("v0", 0)
        self.w = self._number("w", 0, strict=True)
        self.s_T = self._number("s_T", 0)
        self.target = self._per_axis("target")
        self.sigma = self._sigma()
        self.rho = self._number("rho", 0)
        self.s0 = self._number("s0", 0, strict=True)
        self.mu0 = self._per_axis("mu0")
        self.attractors = self._points("attractors")

    def _points(self, key):
        value = self.params[key]
        if value is _ONE_ON_THE_RIGHT:
            return np.array([[0.5] + [0.0] * (self.dim - 1)])
        if not isinstance(value, (list, tuple)) or not value:
            raise ModelError(f"model.{key}: must be a non-empty list of points, got {value!r}")
        points = []
        for point in value:
            coords = [point] if self.dim == 1 and not isinstance(point, (list, tuple)) else point
            if not isinstance(coords, (list, tuple)) or len(coords) != self.dim:
                raise ModelError(f"model.{key}: each point needs {self.dim} coordinate(s), got {point!r}")
            if not all(isinstance(c, (int, float)) and not isinstance(c, bool) and np.isfinite(c)
                       for c in coords):
                raise ModelError(f"model.{key}: coordinates must be finite numbers, got {point!r}")
            points.append([float(c) for c in coords])
        return np.array(points)

    # -- the pieces ---------------------------------------------------------------------
    def potential(self, x):
        """V(x) ≤ 0, deepest at the attractors."""
        return -self.v0 * sum(np.exp(-sum((xd - cd) ** 2 for xd, cd in zip(x, c)) / (2 * self.w ** 2))
                              for c in self.attractors)

    def f(self, m):
        m = np.maximum(m, 0)
        if self.coupling == "power":
            return self.c_m * m ** self.alpha
        return self.c_m * np.log(m + self.eps)

    def df(self, m):
        m = np.maximum(m, 0)
        if self.coupling == "power":
            if self.alpha == 1.0:
                return np.full_like(np.asarray(m, dtype=float), self.c_m)
            with np.errstate(divide="ignore"):
                return self.c_m * self.alpha * m ** (self.alpha - 1.0)
        return self.c_m / (m + self.eps)

    # -- the interface ------------------------------------------------------------------
    def hamiltonian(self, t, x, p, density):
        return 0.5 * sum(pd ** 2 for pd in p) - self.potential(x) - self.f(density.m)

    def dH_dp(self, t, x, p, density):
        return list(p)

    def terminal(self, x, density):
        return 0.5 * self.s_T * sum((xd - td) ** 2 for xd, td in zip(x, self.target))

    def initial_density(self, x, population=0):
        return np.exp(-sum((xd - md) ** 2 for xd, md in zip(x, self.mu0)) / (2 * self.s0 ** 2))

    def d2H_dp2(self, t, x, p, density):
        return [[1.0 if d == e else 0.0 for e in range(self.dim)] for d in range(self.dim)]

    def dH_dm(self, t, x, p, density):
        return -self.df(density.m)
