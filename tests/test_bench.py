"""`mfgpde bench` runs end to end and reports ratios it measured (no timing asserted)."""
import io

from conftest import mfgpde

from mfgpde.bench.run import bench


def test_bench_smallest_case_reports_every_figure():
    out = io.StringIO()
    records = bench(sizes=("small",), ranks=(1,), cases=["lq_1d"], stream=out)
    assert [r["coupling"] for r in records] == ["picard", "newton"]
    for r in records:
        assert "error" not in r, r
        assert r["iterations"] >= 1 and r["linear_iterations"] >= r["iterations"]
        assert r["grid_solves"] > 0 and r["bound"] > 0 and r["peak_mb"] > 0
        assert r["vs_baseline"] == r["baseline_wall"] / r["wall"]
    assert out.getvalue().count("lq_1d") == 2


def test_repeat_reports_each_configurations_fastest_run(monkeypatch):
    """--repeat k: k rounds over all configurations, the fastest run of each is reported;
    a failed configuration is reported as failed and not run again."""
    import mfgpde.bench.run as run
    walls = iter([5.0, 3.0, 7.0, 9.0, 4.0, 6.0])  # picard 1, picard 2, newton 1; twice
    calls = []

    def fake(runfile, n, nt, coupling, ranks, work):
        calls.append((coupling, ranks))
        if (coupling, ranks) == ("newton", 2):
            return {"error": "boom"}
        w = next(walls)
        return {"wall": w, "iterations": 1, "linear_iterations": 1, "grid_solves": 1, "per_iteration": w,
                "peak_mb": 1.0}
    monkeypatch.setattr(run, "petsc_run", fake)
    monkeypatch.setattr(run, "laplacian_solve_time", lambda *a: 0.1)
    monkeypatch.setattr(run, "baseline_run", lambda *a: {"wall": 10.0, "iterations": 1, "per_iteration": 10.0,
                                                         "estimated": False})
    records = bench(sizes=("small",), ranks=(1, 2), cases=["lq_1d"], stream=io.StringIO(), repeat=2)
    assert calls == [("picard", 1), ("picard", 2), ("newton", 1), ("newton", 2),
                     ("picard", 1), ("picard", 2), ("newton", 1)]
    best = {(r["coupling"], r["ranks"]): r for r in records}
    assert best["picard", 1]["wall"] == 5.0 and best["picard", 2]["wall"] == 3.0  # 9.0 and 4.0 were slower
    assert best["newton", 1]["wall"] == 6.0 and best["newton", 1]["vs_baseline"] == 10.0 / 6.0
    assert best["newton", 2]["error"] == "boom" and "wall" not in best["newton", 2]


def test_repeat_below_one_refused():
    bad = mfgpde("bench", "--repeat", "0")
    assert bad.returncode == 2 and "bench --repeat 0" in bad.stderr, bad.stderr
