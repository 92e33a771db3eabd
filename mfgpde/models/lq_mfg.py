"""Linear–quadratic MFG with coupling through the mean m̄(t) = ∫ x m dx.

    L = ½|a|² + ½ q |x − κ m̄|²,  g = ½ s |x − κ m̄(T)|²,  dX = a dt + σ dW
    H(x, p; m) = ½|p|² − ½ q |x − κ m̄|²,   a* = −∇u
    m0 = Gaussian, mean mu0 (per axis), standard deviation s0, product over axes.
"""
import numpy as np

from ..closedforms import LQMFGClosedForm
from .base import MFGModel
from .registry import register


@register
class LQMFG(MFGModel):
    name = "lq_mfg"
    parameters = {"q": 1.0, "kappa": 0.5, "s": 1.0, "sigma": 0.5, "rho": 0.0,
                  "mu0": 0.5, "s0": 0.3}

    def validate(self):
        self.q = self._number("q", 0.0)
        self.s = self._number("s", 0.0)
        self.kappa = self._number("kappa")
        self.sigma = self._sigma()
        self.rho = self._number("rho", 0.0)
        self.s0 = self._number("s0", 0.0, strict=True)
        self.mu0 = self._per_axis("mu0")

    def _gap2(self, x, mean):
        return sum((xd - self.kappa * md) ** 2 for xd, md in zip(x, mean))

    def hamiltonian(self, t, x, p, density):
        return 0.5 * sum(pd ** 2 for pd in p) - 0.5 * self.q * self._gap2(x, density.mean)

    def dH_dp(self, t, x, p, density):
        return list(p)

    def terminal(self, x, density):
        return 0.5 * self.s * self._gap2(x, density.mean)

    def initial_density(self, x, population=0):
        return np.exp(-sum((xd - md) ** 2 for xd, md in zip(x, self.mu0)) / (2 * self.s0 ** 2))

    couples_through_mean = True
    couples_locally = False

    def d2H_dp2(self, t, x, p, density):
        return [[1.0 if d == e else 0.0 for e in range(self.dim)] for d in range(self.dim)]

    def dH_dmean(self, t, x, p, density):
        return [self.q * self.kappa * (xd - self.kappa * md) for xd, md in zip(x, density.mean)]

    def dg_dmean(self, x, density):
        return [-self.s * self.kappa * (xd - self.kappa * md) for xd, md in zip(x, density.mean)]

    def closed_form(self, T):
        return LQMFGClosedForm(q=self.q, kappa=self.kappa, s=self.s, sigma=self.sigma,
                               mu0=list(self.mu0), s0=self.s0, rho=self.rho, T=T)
