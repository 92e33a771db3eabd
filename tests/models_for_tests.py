"""Models written outside the package, for the tests: conftest.py's fixtures register them
(crowd_aversion, nan_model, asymmetric_model, poisoned_lq).  Not a test file: no test
file imports another one."""
import numpy as np

from mfgpde.models import MFGModel, create, parameters
from mfgpde.models.contract import check_cheaply
from mfgpde.models.lq_mfg import LQMFG


class CrowdAversion(MFGModel):
    """A model written outside the package: H = ½|p|² − m (local congestion cost f(m) = m)."""
    name = "test_crowd_aversion"
    parameters = {"sigma": 0.4, "mu0": 0.0, "s0": 0.2}

    def validate(self):
        self.sigma = self._number("sigma", 0.0)
        self.mu0 = self._per_axis("mu0")

    def hamiltonian(self, t, x, p, density):
        return 0.5 * sum(pd ** 2 for pd in p) - density.m

    def dH_dp(self, t, x, p, density):
        return list(p)

    def d2H_dp2(self, t, x, p, density):
        return [[float(d == e) for e in range(self.dim)] for d in range(self.dim)]

    def dH_dm(self, t, x, p, density):
        return -1.0

    def terminal(self, x, density):
        return np.zeros_like(density.m)

    def initial_density(self, x, population=0):
        return np.exp(-sum((xd - md) ** 2 for xd, md in zip(x, self.mu0)) / (2 * self.s0 ** 2))


class NaNModel(CrowdAversion):
    name = "test_nan"

    def hamiltonian(self, t, x, p, density):
        return np.full_like(density.m, np.nan)


class Asymmetric(CrowdAversion):
    """H = ½p² for p > 0 and 2p² for p < 0: convex, minimum at 0, not even."""
    name = "test_asymmetric"

    def hamiltonian(self, t, x, p, density):
        return sum(np.where(pd > 0, 0.5, 2.0) * pd ** 2 for pd in p)


class PoisonedLQ(LQMFG):
    """The LQ model whose Hamiltonian turns NaN after `calls` evaluations."""
    name = "test_poisoned_lq"
    parameters = {**LQMFG.parameters, "calls": 10 ** 9}
    seen = 0
    poison = np.nan

    @classmethod
    def arm(cls, cfg):
        """Count from the solve's first call: the cheap contract check that precedes the
        solve evaluates H too, a number of times it is free to change."""
        model = create(cfg["model"]["name"], len(cfg["grid"]["n"]), **parameters(cfg["model"]))
        model.set_horizon(cfg["time"]["T"])
        cls.seen = 0
        check_cheaply(model, cfg)
        cls.seen = -cls.seen

    def hamiltonian(self, t, x, p, density):
        PoisonedLQ.seen += 1
        H = super().hamiltonian(t, x, p, density)
        return H + self.poison if PoisonedLQ.seen > self.calls else H


class InfPoisonedLQ(PoisonedLQ):
    """The same, turning +inf."""
    name = "test_inf_poisoned_lq"
    poison = np.inf
