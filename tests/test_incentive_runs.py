"""The incentive-design family through `mfgpde run`: both run files as they are (tables
over N, numerical checks up to N = 100, plots), their fields and attributes against the
closed forms computed here from closedforms/incentive.py; `mfgpde info` and `plot` on
the output; bad input (one line, exit 2, nothing written); a failed check (exit 3, the
unconverged sibling only); 1 and 2 MPI ranks writing the same numbers."""
import math
import tomllib

import h5py
import numpy as np
import pytest

from conftest import RUNS, mfgpde, run_in_process
from mfgpde.closedforms.incentive import FollowersGame, MajorMinorGame, comparison, mean_field_errors

FOLLOWERS, MAJOR = RUNS / "incentive_followers.toml", RUNS / "incentive_major_minor.toml"
PNG = b"\x89PNG\r\n\x1a\n"
TOL = 1e-8  # the checks' tolerance, as docs/family-incentive.md states it
NODES = np.linspace(-4, 4, 17)  # the types of the numerical best responses, in units of s around mu


def _params(runfile):
    return {k: v for k, v in tomllib.loads(runfile.read_text())["model"].items() if k != "name"}


def _read(path):
    with h5py.File(path, "r") as f:
        return ({k: v[0] for k, v in f["solution"].items()}, f["grid/N"][()],
                {k: v.decode() if isinstance(v, bytes) else v for k, v in f.attrs.items()},
                {g: {k: v[()] for k, v in f[g].items()} for g in ("checks", "comparison") if g in f})


def _slope(N, y):
    return np.polyfit(np.log(N), np.log(y), 1)[0]


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """Both run files as they are, with plots; {stem: (output, CompletedProcess)}."""
    out = {}
    for runfile in (FOLLOWERS, MAJOR):
        path = tmp_path_factory.mktemp(runfile.stem) / f"{runfile.stem}.h5"
        out[runfile.stem] = path, run_in_process("run", runfile, "-o", path)
    return out


@pytest.mark.slow
def test_followers_run_file_against_the_closed_forms(runs):
    path, proc = runs["incentive_followers"]
    assert proc.returncode == 0 and proc.stderr == "", proc.stderr
    assert "log-log slope" in proc.stdout and f"wrote {path}" in proc.stdout
    fields, N, attrs, groups = _read(path)
    params = _params(FOLLOWERS)
    assert list(N) == [1, 2, 5, 10, 20, 50, 100, 200, 500, 1000]
    games = [FollowersGame(N=n, **params) for n in N]
    norms = [math.hypot(k1 * g.mu + k0, k1 * g.s) for g in games for k1, k0 in [g.gain()]]
    assert np.allclose(fields["gain"], norms, rtol=1e-12, atol=0)
    assert np.allclose(fields["leader_optimal_g"], [g.team()[0] for g in games], rtol=1e-12)
    assert np.allclose(fields["nash_h"], [g.nash()[1] for g in games], rtol=1e-12)
    assert np.allclose(fields["leader_optimal_J0"], [g.leader_cost(*g.team()) for g in games], rtol=1e-12)
    assert np.allclose(fields["nash_J0"], [g.leader_cost(*g.nash()) for g in games], rtol=1e-12)
    assert np.all(fields["leader_optimal_J0"] < fields["nash_J0"])
    assert abs(attrs["gain_slope"] - _slope(N, norms)) < 1e-12 and abs(attrs["gain_tail_slope"] - 1) < 1e-3
    # the checks ran at N <= 100, within the tolerance; the uncontrolled answer departs from
    # the leader-optimal one by max |k(x)| / (N + 2a) at the nodes, as it must
    checks = groups["checks"]
    assert list(checks["N"]) == [1, 2, 5, 10, 20, 50, 100] and attrs["converged"] == 1
    for key in ("incentive_answer", "uncontrolled_answer", "leader_vertex", "leader_cost"):
        assert np.all(checks[key] <= TOL) and attrs[f"check_{key}"] == checks[key].max(), key
    gaps = [np.max(np.abs(k1 * (g.mu + g.s * NODES) + k0)) / (g.N + 2 * g.a)
            for g in games[:7] for k1, k0 in [g.gain()]]
    assert np.allclose(checks["uncontrolled_gap"], gaps, rtol=1e-8) and min(gaps) > 0.4
    assert (path.parent / "incentive_followers_gain.png").read_bytes()[:8] == PNG


@pytest.mark.slow
def test_major_minor_run_file_against_the_closed_forms(runs):
    path, proc = runs["incentive_major_minor"]
    assert proc.returncode == 0 and proc.stderr == "", proc.stderr
    fields, N, attrs, groups = _read(path)
    params = _params(MAJOR)
    best = [MajorMinorGame(N=n, **params).leader_major() for n in N]
    for key in ("h_M", "k_M", "g", "h", "m", "J0"):
        assert np.allclose(fields[f"leader_major_{key}"], [d[key] for d in best], rtol=1e-12, atol=1e-15), key
    assert np.allclose(fields["nash_J0"], [MajorMinorGame(N=n, **params).nash()["J0"] for n in N], rtol=1e-12)
    assert np.all(fields["leader_optimal_J0"] < fields["leader_major_J0"])
    assert np.all(fields["leader_major_J0"] < fields["nash_J0"])
    errors = mean_field_errors(MajorMinorGame(**params), N)
    for key in ("loss", "cost_error", "major_error", "minor_error"):
        assert np.allclose(fields[f"mean_field_{key}"], errors[key], rtol=1e-10, atol=0), key
        assert abs(attrs[f"mean_field_slope_{key}"] - _slope(N, errors[key])) < 1e-9, key
    assert abs(attrs["mean_field_tail_slope_loss"] + 2) < 0.01
    assert abs(attrs["mean_field_tail_slope_major_error"] + 1) < 0.01
    limit = MajorMinorGame(N=math.inf, **params).leader_major()
    assert abs(attrs["limit_k_M"] - limit["k_M"]) < 1e-14 and abs(attrs["limit_J0"] - limit["J0"]) < 1e-14
    table, expected = groups["comparison"], comparison(MajorMinorGame(N=math.inf, **params), np.arange(0, 4.5, 0.5),
                                                       [0.1, 0.5, 2.0])
    for key in ("b", "p", "leader_optimal", "leader_major", "nash"):
        assert np.allclose(table[key], expected[key], rtol=1e-12), key
    checks = groups["checks"]
    assert list(checks["N"]) == [1, 2, 5, 10, 20, 50, 100]
    for key in ("minors_nash", "major_answer", "uncontrolled_answer", "leader_vertex", "leader_cost"):
        assert np.all(checks[key] <= TOL), key
    assert np.allclose(checks["uncontrolled_gap"], [abs(d["k_M"]) for d in best[:7]], rtol=1e-8)
    for what in ("costs", "mean_field"):
        assert (path.parent / f"incentive_major_minor_{what}.png").read_bytes()[:8] == PNG


@pytest.mark.slow
def test_info_and_plot_read_the_output(runs, tmp_path):
    path, _ = runs["incentive_major_minor"]
    info = run_in_process("info", path)
    assert info.returncode == 0 and "static game (one stage)" in info.stdout and "mean_field_loss" in info.stdout
    plot = run_in_process("plot", path, "--outdir", tmp_path, "--format", "png", "svg")
    assert plot.returncode == 0, plot.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        f"incentive_major_minor_{w}.{f}" for w in ("costs", "mean_field") for f in ("png", "svg"))


# --- bad input: one line, exit 2, nothing written or overwritten ------------------------------

BAD = {"unknown-key": (FOLLOWERS, ["--set", "study.NN=[1, 2]"], "study.NN: unknown key"),
       "N-with-zero": (FOLLOWERS, ["--set", "study.N=[0, 10]"], "study.N:"),
       "negative-a": (MAJOR, ["--set", "model.a=-0.5"], "model.a: must be >= 0"),
       "b-for-followers": (FOLLOWERS, ["--set", "study.b=[1.0]"], "study.b: only a game with a major follower"),
       "restart": (FOLLOWERS, ["--restart", "x.ckpt.h5"], "nothing to restart")}


@pytest.mark.parametrize("case", sorted(BAD))
def test_bad_input(case, tmp_path):
    runfile, args, words = BAD[case]
    out = tmp_path / "x.h5"
    out.write_bytes(b"previous output")
    before = sorted(tmp_path.iterdir())
    proc = run_in_process("run", runfile, *args, "-o", out, cwd=tmp_path)
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert proc.returncode == 2 and len(lines) == 1 and "Traceback" not in proc.stdout + proc.stderr, proc.stderr
    assert lines[0].startswith("mfgpde: error: ") and words in lines[0], lines[0]
    assert sorted(tmp_path.iterdir()) == before and out.read_bytes() == b"previous output"


def test_a_failed_check_is_not_a_solution(tmp_path, monkeypatch):
    """With a tolerance no check can meet: exit 3, the unconverged sibling written with its
    status and discrepancies, the output left alone."""
    from mfgpde.pipelines import incentive
    monkeypatch.setattr(incentive, "TOLERANCE", 0.0)
    out = tmp_path / "x.h5"
    proc = run_in_process("run", MAJOR, "--set", "check.max_N=2", "--set", "check.samples=20", "-o", out)
    assert proc.returncode == 3 and not out.exists(), proc.stderr
    assert "numerical checks failed" in proc.stderr and len(proc.stderr.strip().splitlines()) == 1
    with h5py.File(tmp_path / "x.unconverged.h5", "r") as f:
        assert f.attrs["converged"] == 0 and "minors_nash" in f.attrs["status"]
        assert list(f["checks/N"][()]) == [1, 2]


@pytest.mark.mpi
def test_one_and_two_ranks_write_the_same_numbers(tmp_path):
    files = {}
    for nproc in (None, 2):
        files[nproc] = tmp_path / f"x{nproc or 1}.h5"
        proc = mfgpde("run", MAJOR, "--set", "check.max_N=20", "--set", "output.plots=false", "-o", files[nproc],
                      nproc=nproc)
        assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    with h5py.File(files[None], "r") as one, h5py.File(files[2], "r") as two:
        assert (one.attrs["mpi_ranks"], two.attrs["mpi_ranks"]) == (1, 2)
        for group in ("solution", "checks", "comparison"):
            assert set(one[group]) == set(two[group])
            for key in one[group]:
                assert np.array_equal(one[group][key][()], two[group][key][()]), (group, key)


def test_the_wall_time_budget_stops_the_checks(tmp_path):
    """The ranks poll the stop request after each batch of N: a budget reached stops the
    run with 124 and one line, and nothing is written (there is nothing to continue from)."""
    out = tmp_path / "x.h5"
    proc = run_in_process("run", FOLLOWERS, "--max-time", "0.001", "--set", "check.samples=20", "-o", out)
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert proc.returncode == 124 and len(lines) == 1 and "nothing to continue from" in lines[0], proc.stderr
    assert list(tmp_path.iterdir()) == []


def test_output_over_the_run_file_is_refused(tmp_path):
    runfile = tmp_path / "study.toml"
    runfile.write_text(FOLLOWERS.read_text())
    proc = run_in_process("run", runfile, "-o", runfile)
    assert proc.returncode == 2 and "output.file" in proc.stderr and runfile.read_text() == FOLLOWERS.read_text()


def test_the_python_api(tmp_path, monkeypatch):
    """mfgpde.solve runs the same pipeline: the fields, and NotConverged on a failed check."""
    import mfgpde
    from mfgpde.pipelines import incentive
    sets = {"check.max_N": 2, "check.samples": 20}
    result = mfgpde.solve(MAJOR, sets)
    assert result.converged and list(result.grid["N"]) == [1, 2, 5, 10, 20, 50, 100, 200, 500, 1000]
    expected = [MajorMinorGame(N=n, **_params(MAJOR)).nash()["J0"] for n in result.grid["N"]]
    assert np.allclose(result.nash_J0[0], expected, rtol=1e-12)
    monkeypatch.setattr(incentive, "TOLERANCE", 0.0)
    with pytest.raises(mfgpde.NotConverged, match="numerical checks failed"):
        mfgpde.solve(MAJOR, sets)
