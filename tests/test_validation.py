"""`mfgpde validate`: first-order convergence to the LQ closed form, 1-D and 2-D."""
import pytest

from conftest import run_in_process
from mfgpde.validation import cases, convergence_study


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
