"""`mfgpde bench` runs end to end and reports ratios it measured (no timing asserted)."""
import io

import numpy as np
import pytest
from conftest import run_in_process

from mfgpde.bench.run import bench


@pytest.mark.slow
def test_bench_smallest_case_reports_every_figure():
    out = io.StringIO()
    records = bench(sizes=("small",), ranks=(1,), cases=["lq_1d"], stream=out)
    assert [r["solver"] for r in records] == ["mfgpde auto", "scipy+anderson", "scipy+spsolve"]
    strong = records[1]["wall"]
    for r in records:
        assert "error" not in r, r
        assert r["iterations"] >= 1 and r["linear_iterations"] >= r["iterations"] and r["peak_mb"] > 0
        assert r["bound"] > 0 and r["bound_solver"] and r["floor_mb"] > 0
        assert r["vs_strong"] == strong / r["wall"] and r["sweeps"] == r["wall"] / r["bound"]
        # the same discretisation: the same errors against the closed form
        assert np.isfinite(r["error_u0"]) and abs(r["error_u0"] - records[0]["error_u0"]) < 1e-6
        assert abs(r["error_mT"] - records[0]["error_mT"]) < 1e-6
    # the strong baseline is no straw man: the same coupling, no more sweeps than mfgpde's
    # (its level solves are tighter than mfgpde's inexact ones, so it may take fewer)
    assert records[1]["iterations"] <= records[0]["iterations"]
    assert out.getvalue().count("lq_1d") == 3


def test_repeat_reports_each_configurations_fastest_run(monkeypatch):
    """--repeat k: k rounds over all configurations, the fastest run of each is reported;
    a failed configuration is reported as failed and not run again."""
    import mfgpde.bench.run as run
    walls = iter([5.0, 3.0, 7.0, 9.0, 4.0, 6.0])  # auto 1, auto 2, newton 1; twice
    calls = []

    def fake(runfile, n, nt, coupling, ranks, work):
        calls.append((coupling, ranks))
        if (coupling, ranks) == ("newton", 2):
            return {"error": "boom"}
        w = next(walls)
        return {"wall": w, "iterations": 1, "linear_iterations": 1, "peak_mb": 1.0, "error_u0": 0.0, "error_mT": 0.0}
    monkeypatch.setattr(run, "petsc_run", fake)
    monkeypatch.setattr(run, "sweep_bound", lambda *a: (0.1, "gmres+ilu"))
    monkeypatch.setattr(run, "baseline_run", lambda *a: {"wall": 10.0, "iterations": 1, "linear_iterations": 1,
                                                         "peak_mb": 1.0, "error_u0": 0.0, "error_mT": 0.0})
    records = bench(sizes=("small",), ranks=(1, 2), cases=["lq_1d"], couplings=("auto", "newton"),
                    stream=io.StringIO(), repeat=2)
    assert calls == [("auto", 1), ("auto", 2), ("newton", 1), ("newton", 2), ("auto", 1), ("auto", 2), ("newton", 1)]
    best = {(r["solver"], r["ranks"]): r for r in records}
    assert best["mfgpde auto", 1]["wall"] == 5.0 and best["mfgpde auto", 2]["wall"] == 3.0  # 9.0 and 4.0 were slower
    assert best["mfgpde newton", 1]["wall"] == 6.0 and best["mfgpde newton", 1]["vs_strong"] == 10.0 / 6.0
    assert best["mfgpde newton", 2]["error"] == "boom" and "wall" not in best["mfgpde newton", 2]
    assert best["mfgpde auto", 1]["sweeps"] == 50.0


def test_repeat_below_one_refused():
    bad = run_in_process("bench", "--repeat", "0")
    assert bad.returncode == 2 and "bench --repeat 0" in bad.stderr, bad.stderr


def test_peer_without_mfgsolver_is_refused_in_one_line(tmp_path):
    import sys
    for python in (sys.executable, str(tmp_path / "no-python")):  # this one has no mfgsolver
        proc = run_in_process("bench", "--peer", python)
        assert proc.returncode == 2
        lines = [ln for ln in proc.stderr.splitlines() if ln.strip()]
        assert len(lines) == 1 and "--peer" in lines[0] and "mfgsolver" in lines[0], proc.stderr
