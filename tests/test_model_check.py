"""`mfgpde check` (mfgpde.models.contract): every built-in model keeps the contract, and
deliberately broken models fail the check that names what they broke."""
import pathlib
import tomllib

import numpy as np
import pytest

from mfgpde.models import MFGModel, ModelError
from mfgpde.models.congestion import Congestion
from mfgpde.models.contract import NOT_IMPLEMENTED, check_model
from mfgpde.models.infection import Infection
from mfgpde.models.lq_mfg import LQMFG
from mfgpde.models.lq_stackelberg import LQStackelberg
from mfgpde.models.robust_designer import RobustDesigner
from mfgpde.models.saturated_stackelberg import SaturatedStackelberg

RUNS = pathlib.Path(__file__).resolve().parents[1] / "runs"


# -- the registry ---------------------------------------------------------------------------
def registered():
    """{family: (names, create(name, dim, **params))} of every built-in model."""
    from mfgpde.models import create, lookup, models
    return {family: ([n for n in models(family) if lookup(n).__module__.startswith("mfgpde.models.")], create)
            for family in ("mfg", "discrete", "leader_follower", "incentive")}

def build(family, name, dim, params):
    return registered()[family][1](name, dim, **params)


def run_files():
    return {f.name: tomllib.loads(f.read_text()) for f in sorted(RUNS.glob("*.toml"))}


# Parameters a model needs beyond its defaults in a dimension no run file covers: a
# robust designer on a 2-D grid is no coalition space, so it takes a tall B (an
# indefinite M: axis 0 concave).
EXTRA = {("robust_designer", 2): {"B": [[1.0], [0.5]]}}
GENERIC = {"mfg": lambda dim: {"grid": {"lower": [-2.0] * dim, "upper": [2.0] * dim, "n": [40] * dim},
                               "time": {"T": 1.0}},
           "discrete": lambda dim: {"grid": {"n": 30}},
           "leader_follower": lambda dim: {"grid": {"x0": [-3.0, 3.0], "z": [-3.0, 3.0]}, "time": {"T": 1.0}},
           "incentive": lambda dim: {}}


def default_cases():
    """(family, name, dim, params, cfg): every registered model with its default parameters
    (MFG models in 1-D and 2-D)."""
    return [(family, name, dim, model_params(family, name, dim), GENERIC[family](dim))
            for family, (names, _) in registered().items() for name in names
            for dim in ((1, 2) if family == "mfg" else (None,))]


def model_params(family, name, dim):
    """EXTRA, and where a model still refuses (a required parameter) the parameters of
    its run file of that dimension."""
    params = dict(EXTRA.get((name, dim), {}))
    try:
        build(family, name, dim, params)
        return params
    except ModelError:
        run = next((r for r in run_files().values() if r["model"]["name"] == name
                    and (dim is None or len(r["grid"]["n"]) == dim)), None)
        if run is None:
            raise
        return {**{k: v for k, v in run["model"].items() if k != "name"}, **params}


def run_cases():
    """(family, name, dim, params, cfg) of every run file."""
    families = {name: family for family, (names, _) in registered().items() for name in names}
    out = []
    for fname, run in run_files().items():
        name = run["model"]["name"]
        family = families[name]
        dim = len(run["grid"]["n"]) if family == "mfg" else None
        out.append((fname, (family, name, dim, {k: v for k, v in run["model"].items() if k != "name"}, run)))
    return out


def failing(checks):
    return {c.name: c.detail for c in checks if not c.ok}


def by_name(checks):
    return {c.name: c for c in checks}


# -- every built-in model passes -----------------------------------------------------------
@pytest.mark.parametrize("family, name, dim, params, cfg", default_cases(),
                         ids=lambda v: None if isinstance(v, (dict, type(None))) else str(v))
def test_every_registered_model_passes_with_its_defaults(family, name, dim, params, cfg):
    checks = check_model(build(family, name, dim, params), cfg)
    assert checks and not failing(checks), failing(checks)
    expected = {"mfg": {"m0", "Engquist-Osher", "dH_dp", "d2H_dp2", "dH_dm", "d2H_dpdm", "dg_dm"},
                "discrete": {"leader actions", "transition rows", "rewards"},
                "leader_follower": {"drift affine", "response affine", "leader_control", "follower_control"},
                "incentive": {"closed forms", "best responses"}}[family]
    assert expected <= set(by_name(checks))


@pytest.mark.parametrize("case", [c for _, c in run_cases()], ids=[f for f, _ in run_cases()])
def test_every_run_file_passes(case):
    family, name, dim, params, cfg = case
    model = build(family, name, dim, params)
    checks = check_model(model, cfg)
    assert not failing(checks), failing(checks)
    if family == "mfg" and model.couples_through_mean:
        assert {"dH_dmean", "dg_dmean"} <= set(by_name(checks))


def test_the_robust_designers_concave_axis_is_checked_as_concave():
    tu2 = run_files()["robust_designer_tu2.toml"]
    model = build("mfg", "robust_designer", 3, {k: v for k, v in tu2["model"].items() if k != "name"})
    assert model.concave_axes() == [True, False, False]
    eo = by_name(check_model(model, tu2, cheap=True))["Engquist-Osher"]
    assert eo.ok and "concave ones (0)" in eo.detail

    class AllConvex(RobustDesigner):  # the same H declared convex along its concave axis
        def concave_axes(self):
            return [False] * self.dim
    wrong = AllConvex(3, **{k: v for k, v in tu2["model"].items() if k != "name"})
    eo = by_name(check_model(wrong, tu2, cheap=True))["Engquist-Osher"]
    assert not eo.ok and "axis 0 (declared convex)" in eo.detail


def test_cheap_runs_only_the_structural_checks():
    lq = check_model(LQMFG(1), GENERIC["mfg"](1), cheap=True)
    assert [c.name for c in lq] == ["m0", "Engquist-Osher"]
    lf = check_model(LQStackelberg(), GENERIC["leader_follower"](None), cheap=True)
    assert [c.name for c in lf] == ["drift affine", "response affine"]
    disc = check_model(Infection(), GENERIC["discrete"](None), cheap=True)
    assert [c.name for c in disc] == ["leader actions", "transition rows", "rewards"]


def test_the_same_seed_gives_the_same_report_on_every_rank():
    a, b = (check_model(Congestion(2), GENERIC["mfg"](2), seed=3) for _ in range(2))
    assert a == b


def test_an_empty_configuration_falls_back_to_sane_defaults():
    for model in (LQMFG(2), SaturatedStackelberg(), Infection()):
        assert not failing(check_model(model, {}))


# -- broken models fail the right check ------------------------------------------------------
MFG_CFG = GENERIC["mfg"]


class SteepDrift(LQMFG):
    def dH_dp(self, t, x, p, density):
        return [1.01 * pd for pd in p]


class FlippedDrift(LQMFG):
    def dH_dp(self, t, x, p, density):
        return [-pd for pd in p]


class WrongHessian(LQMFG):
    def d2H_dp2(self, t, x, p, density):
        return [[1.01 if d == e else 0.0 for e in range(self.dim)] for d in range(self.dim)]


class CrossTerm(LQMFG):
    """H gains ε p_0 p_1 that d2H_dp2 (diagonal) ignores; dH_dp is right."""

    def hamiltonian(self, t, x, p, density):
        return super().hamiltonian(t, x, p, density) + 0.1 * p[0] * p[1]

    def dH_dp(self, t, x, p, density):
        return [p[0] + 0.1 * p[1], p[1] + 0.1 * p[0]]


class ForgotMean(LQMFG):
    dH_dmean = MFGModel.dH_dmean  # reads the mean, returns the default 0


class ForgotTerminalMean(LQMFG):
    dg_dmean = MFGModel.dg_dmean


class ForgotLocal(Congestion):
    dH_dm = MFGModel.dH_dm


class NotLocal(Congestion):
    couples_locally = False  # but H reads m


class NoNewton(Congestion):
    d2H_dp2 = MFGModel.d2H_dp2


class NegativeM0(LQMFG):
    def initial_density(self, x, population=0):
        return super().initial_density(x, population) - 0.01 * (x[0] > 1.0)


class NanM0(LQMFG):
    def initial_density(self, x, population=0):
        return np.where(x[0] < -1.9, np.nan, super().initial_density(x, population))


class EmptyM0(LQMFG):
    def initial_density(self, x, population=0):
        return 0.0


class ConcaveCrowd(Congestion):
    def concave_axes(self):
        return [True] * self.dim


@pytest.mark.parametrize("cls, dim, name", [
    (SteepDrift, 2, "dH_dp"), (FlippedDrift, 1, "dH_dp"), (WrongHessian, 2, "d2H_dp2"), (CrossTerm, 2, "d2H_dp2"),
    (ForgotMean, 2, "dH_dmean"), (ForgotTerminalMean, 1, "dg_dmean"), (ForgotLocal, 1, "dH_dm"),
    (NotLocal, 2, "dH_dm"), (NegativeM0, 1, "m0"), (ConcaveCrowd, 2, "Engquist-Osher")])
def test_a_broken_mfg_model_fails_the_check_it_breaks(cls, dim, name):
    bad = failing(check_model(cls(dim), MFG_CFG(dim)))
    if name == "dH_dp":  # the second derivatives are compared with differences of dH_dp
        assert set(bad) == {"dH_dp", "d2H_dp2"} and bad["d2H_dp2"].endswith("fails too"), bad
    else:
        assert list(bad) == [name], bad
    assert "x=(" in bad[name]  # names the worst point
    assert ("t=" in bad[name]) == name.startswith(("dH", "d2H", "Engquist"))
    if name == "m0":
        assert "negative" in bad[name]


@pytest.mark.parametrize("cls, words", [(NanM0, "not finite"), (EmptyM0, "cannot be normalised")])
def test_an_initial_density_that_cannot_be_normalised_fails(cls, words):
    bad = failing(check_model(cls(2), MFG_CFG(2), cheap=True))
    assert list(bad) == ["m0"] and words in bad["m0"], bad


def test_a_steeper_drift_fails_with_the_worst_point_named():
    detail = failing(check_model(SteepDrift(2), MFG_CFG(2)))["dH_dp"]
    assert detail.startswith("error ") and "p=(" in detail and "m=" in detail


def test_a_missing_d2H_dp2_is_reported_as_not_implemented():
    d2 = by_name(check_model(NoNewton(1), MFG_CFG(1)))["d2H_dp2"]
    assert d2.ok and d2.detail == NOT_IMPLEMENTED


def test_the_mean_derivatives_are_checked_only_where_the_model_couples_through_the_mean():
    names = set(by_name(check_model(Congestion(1), MFG_CFG(1))))
    assert "dH_dmean" not in names and "dg_dmean" not in names


class LazyLeader(LQStackelberg):
    def leader_control(self, x0, z, s):
        return -s / self.R0  # twice the minimiser


class UnclippedLeader(SaturatedStackelberg):
    def leader_control(self, x0, z, s):
        return LQStackelberg.leader_control(self, x0, z, s)  # ignores |u0| <= u0_max


class LazyFollower(LQStackelberg):
    def follower_control(self, x0, x1, z, u0, s):
        return -s / (2 * self.R)  # forgets the cross term 2 R2 u0 u1


class CubicLeaderDrift(LQStackelberg):
    def leader_drift(self, x0, z, u0):
        return super().leader_drift(x0, z, u0) + 0.1 * u0 ** 3


@pytest.mark.parametrize("cls, name, words", [
    (LazyLeader, "leader_control", "is lower"), (UnclippedLeader, "leader_control", "outside the admissible"),
    (LazyFollower, "follower_control", "is lower"), (CubicLeaderDrift, "drift affine", "leader_drift in u0")])
def test_a_broken_leader_follower_model_fails_the_check_it_breaks(cls, name, words):
    bad = failing(check_model(cls(), GENERIC["leader_follower"](None)))
    assert list(bad) == [name], bad
    assert words in bad[name] and "x0=" in bad[name]


class LeakyInfection(Infection):
    def transition(self, z, b):
        return 0.9 * super().transition(z, b)


class NegativeInfection(Infection):
    def transition(self, z, b):
        Q = super().transition(z, b)
        Q[:, 1, 0, 0], Q[:, 1, 0, 1] = -0.1, 1.1
        return Q


class PricelessInfection(Infection):
    def follower_reward(self, z, b):
        R = super().follower_reward(z, b)
        R[:, 0, 1] = np.nan
        return R


@pytest.mark.parametrize("cls, name, words", [
    (LeakyInfection, "transition rows", "sums to 0.9"), (NegativeInfection, "transition rows", "negative entry"),
    (PricelessInfection, "rewards", "not finite")])
def test_a_broken_discrete_game_fails_the_check_it_breaks(cls, name, words):
    bad = failing(check_model(cls(), GENERIC["discrete"](None)))
    assert list(bad) == [name], bad
    assert words in bad[name] and "z=(" in bad[name]


def test_t_is_a_number_as_the_solvers_pass_it():
    """The robust designers tracking their internal model read t through math.exp."""
    internal = RobustDesigner(1, tracking="internal", theta=0.5, mu0=0.4)
    assert not failing(check_model(internal, MFG_CFG(1)))


def test_a_forgotten_second_derivative_in_m_fails():
    class Crowded(Congestion):  # mobility falls with m: H gains ¼ m p_0², d2H_dpdm forgotten
        def hamiltonian(self, t, x, p, density):
            return super().hamiltonian(t, x, p, density) + 0.25 * density.m * p[0] ** 2

        def dH_dp(self, t, x, p, density):
            return [(1 + 0.5 * density.m) * p[0]] + list(p[1:])

        def d2H_dp2(self, t, x, p, density):
            h = super().d2H_dp2(t, x, p, density)
            h[0][0] = 1 + 0.5 * density.m
            return h

        def dH_dm(self, t, x, p, density):
            return super().dH_dm(t, x, p, density) + 0.25 * p[0] ** 2
    bad = failing(check_model(Crowded(2), MFG_CFG(2)))
    assert list(bad) == ["d2H_dpdm"] and "axis 0" in bad["d2H_dpdm"], bad
