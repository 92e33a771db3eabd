"""A crowd crossing a room to an exit, around an obstacle, averse to congestion.
A user's own model: this file lives outside the package; the run file loads it with
`[model] source = "obstacle.py"`.

    L = ½|a|² + V(x) + c_m m(t, x),   g = ½ s |x − exit|²,   dX = a dt + σ dW
    H(x, p; m) = ½|p|² − V(x) − c_m m,   a* = −∇u
    V(x) = v_obs exp(−|x − centre|² / (2 w²))   (the obstacle: a high running cost)
    m0 = Gaussian, mean mu0, standard deviation s0, product over axes.
"""
import numpy as np

from mfgpde import MFGModel, register


@register
class Obstacle(MFGModel):
    name = "obstacle"
    parameters = {"sigma": 0.3, "c_m": 1.0, "v_obs": 5.0, "centre": 0.0, "w": 0.3,
                  "exit": 1.5, "s": 2.0, "mu0": -1.5, "s0": 0.3}

    def validate(self):
        self.sigma = self._sigma()
        self.c_m = self._number("c_m", 0.0)
        self.v_obs = self._number("v_obs", 0.0)
        self.w = self._number("w", 0.0, strict=True)
        self.s = self._number("s", 0.0)
        self.s0 = self._number("s0", 0.0, strict=True)
        self.centre, self.exit, self.mu0 = (self._per_axis(k) for k in ("centre", "exit", "mu0"))

    def _V(self, x):
        r2 = sum((xd - cd) ** 2 for xd, cd in zip(x, self.centre))
        return self.v_obs * np.exp(-r2 / (2 * self.w ** 2))

    def hamiltonian(self, t, x, p, density):
        return 0.5 * sum(pd ** 2 for pd in p) - self._V(x) - self.c_m * density.m

    def dH_dp(self, t, x, p, density):
        return list(p)

    def d2H_dp2(self, t, x, p, density):
        return [[1.0 if d == e else 0.0 for e in range(self.dim)] for d in range(self.dim)]

    def dH_dm(self, t, x, p, density):
        return -self.c_m

    def terminal(self, x, density):
        return 0.5 * self.s * sum((xd - ed) ** 2 for xd, ed in zip(x, self.exit))

    def initial_density(self, x, population=0):
        return np.exp(-sum((xd - md) ** 2 for xd, md in zip(x, self.mu0)) / (2 * self.s0 ** 2))
