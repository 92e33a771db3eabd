"""`mfgpde bench` runs end to end and reports ratios it measured (no timing asserted)."""
import io

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
