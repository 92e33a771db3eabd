"""`mfgpde validate`: first-order convergence to the LQ closed form, 1-D and 2-D; the gate's
rule on synthetic rows."""
import pytest

from conftest import run_in_process
from mfgpde.validation import cases, convergence_study, observed_orders


@pytest.fixture(scope="module")
def studies():
    """convergence_study(case) computed once per case for this module's tests."""
    done = {}

    def study(case):
        if case not in done:
            done[case] = convergence_study(case)
        return done[case]
    return study


@pytest.mark.slow
@pytest.mark.parametrize("case", ["lq_mfg_1d", "lq_mfg_2d"])
def test_first_order_convergence(case, studies):
    rows, orders = studies(case)
    for quantity in ("u0", "mT", "mean", "var"):
        assert all(o >= 0.8 for o in orders[quantity]), (quantity, orders, rows)
    # errors are small in absolute terms, not only decreasing
    assert rows[-1]["u0"] < 0.05 and rows[-1]["mT"] < 0.1


@pytest.mark.slow
def test_validate_command_prints_table(studies, monkeypatch):
    """The command's table and verdict, from the same study as test_first_order_convergence
    (cases.convergence_study is what `mfgpde validate` calls)."""
    monkeypatch.setattr(cases, "convergence_study", studies)
    proc = run_in_process("validate", "--case", "lq_mfg_1d")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "lq_mfg_1d: PASS" in proc.stdout
    assert proc.stdout.count("e-0") >= 12  # three rows of four errors
    bad = run_in_process("validate", "--case", "nope")
    assert bad.returncode == 2 and "unknown case" in bad.stderr


def test_case_lists_are_read_whole():
    """`--case A B` and `--case A --case B` both name two cases: an unknown second one is
    refused by name (exit 2) before anything runs."""
    for args in (("--case", "lq_mfg_1d", "nope"), ("--case", "lq_mfg_1d", "--case", "nope")):
        bad = run_in_process("validate", *args)
        assert bad.returncode == 2 and "validate --case nope" in bad.stderr, bad.stderr
    bad = run_in_process("bench", "--case", "lq_1d", "nope")
    assert bad.returncode == 2 and "bench --case nope" in bad.stderr, bad.stderr


def _rows(h, **errors):
    """Synthetic rows of a study and their observed orders."""
    rows = [{"h": hk, **{q: e[k] for q, e in errors.items()}} for k, hk in enumerate(h)]
    return rows, {q: observed_orders(h, e) for q, e in errors.items()}


H = [0.04, 0.02, 0.01]
FIRST = [4e-2, 2e-2, 1e-2]  # order 1


def test_the_gate_asks_orders_of_u0_mT_and_the_feedbacks_and_a_tolerance_or_order_of_the_mean():
    tol = cases.MEAN_TOLERANCE
    assert tol == 100 * cases.SOLVER_TOLERANCE and cases.case_config("robust_scalar", 10, 5)["solver"]["tolerance"] \
        == cases.SOLVER_TOLERANCE

    def verdict(**errors):
        return cases.gate(*_rows(H, **errors))
    ok, text = verdict(u0=FIRST, mT=FIRST, mean=FIRST, feedback=FIRST)
    assert ok and text == f"PASS (observed orders of u0, mT, feedback >= 0.8; mean error <= {tol:g} or order >= 0.8)"
    assert verdict(u0=FIRST, mT=FIRST, mean=FIRST)[0]  # no feedbacks in the closed form: none asked
    # a constant exact mean met to round-off: its "orders" (−0.12, 0) are noise, not a failure
    assert verdict(u0=FIRST, mT=FIRST, mean=[4.08e-12, 4.43e-12, 4.43e-12], feedback=FIRST)[0]
    # at round-off from the second level on (orders 14.3, then −0.26)
    assert verdict(u0=FIRST, mT=FIRST, mean=[1e-3, 0.5 * tol, 0.6 * tol], feedback=FIRST)[0]
    # first order down to the tolerance, then at it
    assert verdict(u0=FIRST, mT=FIRST, mean=[4 * tol, 2 * tol, 0.9 * tol], feedback=FIRST)[0]
    assert verdict(u0=FIRST, mT=FIRST, mean=[1e-3, 1e-9, 0.0], feedback=FIRST)[0]  # an exact 0 (NaN order) is below
    # a feedback that does not converge fails the case, and says so
    ok, text = verdict(u0=FIRST, mT=FIRST, mean=FIRST, feedback=[0.21, 0.205, 0.2])
    assert not ok and text == "FAIL (feedback: orders 0.03, 0.04 (asked: >= 0.8))", text
    # a mean above the tolerance that stalls, or stalls after one good step, fails
    for mean in ([2e-3, 2e-3, 2e-3], [4e-3, 2e-3, 1.9e-3], [5 * tol, 4 * tol, 3 * tol], [0.0, 1e-3, 5e-4]):
        ok, text = verdict(u0=FIRST, mT=FIRST, mean=mean, feedback=FIRST)
        assert not ok and text.startswith("FAIL (mean: errors ") and \
            text.endswith(f"(asked at each refinement: the finer error <= {tol:g} or the order >= 0.8))"), (mean, text)
    # just at and just above the tolerance
    assert verdict(u0=FIRST, mT=FIRST, mean=[tol, tol, tol], feedback=FIRST)[0]
    assert not verdict(u0=FIRST, mT=FIRST, mean=[tol, tol, 1.01 * tol], feedback=FIRST)[0]
    # u(0) and m(T) as before; several failures are all named
    ok, text = verdict(u0=[1e-2, 9e-3, 8e-3], mT=[1e-2, 1.2e-2, 1.4e-2], mean=FIRST, feedback=FIRST)
    assert not ok and text == ("FAIL (u0: orders 0.15, 0.17 (asked: >= 0.8); "
                               "mT: orders -0.26, -0.22 (asked: >= 0.8))"), text
    # the leader-follower case: V0, V1, u0, u1 at t = 0 only
    lf = {q: FIRST for q in cases.LEADER_FOLLOWER_QUANTITIES}
    assert cases.gate(*_rows(H, **lf), leader_follower=True) == \
        (True, "PASS (observed orders of V0_t0, V1_t0, u0_t0, u1_t0 >= 0.8)")
    assert not cases.gate(*_rows(H, **{**lf, "u1_t0": [0.1, 0.1, 0.1]}), leader_follower=True)[0]
    assert cases.gate(*_rows(H, **{**lf, "u1_all": [0.1, 0.1, 0.1]}), leader_follower=True)[0]
