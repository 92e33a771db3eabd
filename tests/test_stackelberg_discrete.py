"""The discrete-time LQ mean field Stackelberg game (Huang & Yang's slides): its
time-consistent recursion converges at first order to the continuous Riccati solution (and
not to the printed system), its values are the costs of its closed loop (moment
recursion), its leader cannot gain by deviating while the followers answer, a Nash leader
can, and with R2 = 0 the leader still leads, by O(h)."""
import numpy as np
import pytest

from mfgpde.closedforms.stackelberg_discrete import DiscreteStackelbergLQ, euler_game, expected_costs
from mfgpde.closedforms.stackelberg_lq import DEFAULTS, StackelbergLQ
from test_stackelberg_closed_form import OTHER, Misprinted

CASES = {"printed": dict(DEFAULTS, T=3.0), "other": OTHER}
S0 = np.array([1.0, 0.5, 0.8])  # (x0, x1, xb)


def matrices(cf, t=0.0):
    """The continuous values as the recursion's matrices on s = (x0, x1, xb)."""
    c = cf.coefficients(t)
    M1 = np.array([[c["P0"], c["P01"], c["P02"]], [c["P01"], c["P1"], c["P12"]], [c["P02"], c["P12"], c["P2"]]])
    M0 = np.array([[c["P00"], 0, c["P010"]], [0, 0, 0], [c["P010"], 0, c["P10"]]])
    return M0, M1, c["r0"], c["r1"]


def gap(cf, n, ref=None):
    d = DiscreteStackelbergLQ(n, **euler_game(cf, n))
    M0, M1, r0, r1 = matrices(ref or cf)
    return max(np.abs(d.M0[0] - M0).max(), np.abs(d.M1[0] - M1).max(), abs(d.r0[0] - r0), abs(d.r1[0] - r1))


@pytest.mark.parametrize("case", list(CASES))
def test_recursion_converges_to_the_riccati_solution_at_first_order(case):
    cf = StackelbergLQ(**CASES[case])
    errors = [gap(cf, n) for n in (100, 200, 400)]
    orders = np.log2(np.array(errors[:-1]) / errors[1:])
    assert np.all((orders > 0.9) & (orders < 1.1)), (errors, orders)
    assert errors[-1] < 2e-2
    # the printed system is not the limit: its distance stays where the grid's error falls
    wrong = [gap(cf, n, ref=Misprinted(**CASES[case])) for n in (100, 400)]
    assert wrong[1] > 0.9 * wrong[0] and wrong[1] > 5 * errors[-1], (wrong, errors)


@pytest.mark.parametrize("case", list(CASES))
def test_values_are_the_closed_loop_costs(case):
    g = DiscreteStackelbergLQ(60, **euler_game(StackelbergLQ(**CASES[case]), 60))
    J0, J1 = expected_costs(g, S0)
    assert abs(J0 - g.V0(0, S0[0], S0[2])) < 1e-12 * J0
    assert abs(J1 - g.V1(0, *S0)) < 1e-12 * J1


@pytest.mark.parametrize("case", list(CASES))
def test_leader_optimal_and_a_nash_leader_is_not(case):
    """The leader's gain moved along x0 or xb at every step, the followers answering the
    u0 they see: J0 grows for the Stackelberg leader, with no first-order term; some
    deviation lowers the Nash leader's J0."""
    cf = StackelbergLQ(**CASES[case])
    for leader in ("stackelberg", "nash"):
        g = DiscreteStackelbergLQ(200, leader=leader, **euler_game(cf, 200))
        base = expected_costs(g, S0)[0]
        change = {(i, e): expected_costs(g, S0, e * np.eye(3)[i])[0] - base
                  for i in (0, 2) for e in (0.02, -0.02, 1e-3, -1e-3)}
        slope = max(abs(change[(i, 1e-3)] - change[(i, -1e-3)]) / 2e-3 for i in (0, 2))
        if leader == "stackelberg":
            assert min(change.values()) > 0 and slope < 1e-4, (change, slope)
        else:
            assert min(change.values()) < -1e-6 and slope > 1e-2, (change, slope)


@pytest.mark.parametrize("case", list(CASES))
def test_discrete_leader_leads_without_R2(case):
    """R2 = 0: in continuous time the two leaders coincide; in discrete time they differ,
    by O(h) (the followers answer u0 through the next values)."""
    p = dict(CASES[case], R2=0.0)
    cf = StackelbergLQ(**p)
    assert np.allclose(cf.gains(0.0)["K00"], StackelbergLQ(leader="nash", **p).gains(0.0)["K00"], rtol=1e-12)
    diffs = []
    for n in (50, 100, 200):
        a = DiscreteStackelbergLQ(n, **euler_game(cf, n))
        b = DiscreteStackelbergLQ(n, leader="nash", **euler_game(cf, n))
        diffs.append(np.abs(a.gains[0][0] - b.gains[0][0]).max())
    assert diffs[0] > 1e-4 and all(0.4 < y / x < 0.6 for x, y in zip(diffs, diffs[1:])), diffs


def test_bad_parameters():
    with pytest.raises(ValueError, match="parameters: need exactly"):
        DiscreteStackelbergLQ(3, A0=1.0)
    with pytest.raises(ValueError, match="leader must be"):
        DiscreteStackelbergLQ(3, leader="greedy", **euler_game(StackelbergLQ(), 3))
