"""Every run file in runs/ at a tiny size, as it is otherwise (plots, solver, model): `mfgpde
run` exits 0 and writes the fields of its family; and runs/stackelberg_finite_population.py
with a tiny population study.  In this process (conftest.run_in_process): a new run file
needs a line in TINY, or this test fails naming it."""
import importlib.util
import json

import h5py
import pytest

from conftest import RUNS, run_in_process

pytestmark = pytest.mark.slow  # a second or more each: most run files make plots
# --set overrides that make each study tiny; "family" the fields its output must hold
TINY = {
    "congestion_1d.toml": ("mfg", ["grid.n=[16]", "time.nt=4"]),
    "congestion_2d.toml": ("mfg", ["grid.n=[8, 8]", "time.nt=4"]),
    "infection_vaccination.toml": ("master", ["grid.n=6", "time.steps=2", "solver.leader_points=5",
                                              "solver.tolerance=1e-4"]),
    "infection_epsilon.toml": ("master", ["grid.n=6", "time.T=3", "solver.leader_points=5"]),
    "infection_private_severity.toml": ("private", ["grid.n=6", "time.T=3", "grid.beliefs=3",
                                                    "solver.leader_points=5"]),
    "infection_vaccination_021.toml": ("master", ["grid.n=6", "time.steps=2", "solver.leader_points=5",
                                                  "solver.tolerance=1e-4"]),
    "lq_mfg_1d.toml": ("mfg", ["grid.n=[16]", "time.nt=4"]),
    "lq_mfg_2d.toml": ("mfg", ["grid.n=[8, 8]", "time.nt=4"]),
    "lq_mfg_3d.toml": ("mfg", ["grid.n=[4, 4, 4]", "time.nt=4"]),
    "robust_designer_chain.toml": ("populations", ["grid.n=[16]", "time.nt=8", "solver.tolerance=1e-4"]),
    "robust_designer_scalar.toml": ("mfg", ["grid.n=[16]", "time.nt=4"]),
    "robust_designer_tu2.toml": ("mfg", ["grid.n=[6, 6, 6]", "time.nt=4"]),
    "stackelberg_lq.toml": ("leader_follower", ["grid.n=8", "time.nt=8"]),
    "stackelberg_saturated.toml": ("leader_follower", ["grid.n=8", "time.nt=8"]),
    "technology_adoption.toml": ("master", ["grid.n=6", "time.T=3", "solver.leader_points=5"]),
    "incentive_followers.toml": ("incentive_followers", ["check.max_N=5", "check.samples=50"]),
    "incentive_major_minor.toml": ("incentive_major_minor", ["check.max_N=5", "check.samples=50"]),
}
FIELDS = {"mfg": {"u", "m"}, "populations": {"u_pop1", "m_pop1"}, "leader_follower": {"V0", "V1", "u0", "u1"},
          "master": {"V_leader", "leader_action", "equilibria"},
          "private": {"V_leader_mild", "V_leader_severe", "leader_action_mild", "pooling"},
          "incentive_followers": {"gain", "leader_optimal_J0"},
          "incentive_major_minor": {"leader_major_J0", "mean_field_loss"}}


@pytest.mark.parametrize("runfile", sorted(RUNS.glob("*.toml")), ids=lambda p: p.stem)
def test_run_file_at_a_tiny_size(runfile, tmp_path):
    assert runfile.name in TINY, f"{runfile.name}: add its tiny overrides to TINY in {__file__}"
    family, sets = TINY[runfile.name]
    out = tmp_path / "x.h5"
    proc = run_in_process("run", runfile, *[a for s in sets for a in ("--set", s)], "-o", out)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    assert proc.stderr == "", proc.stderr
    with h5py.File(out, "r") as f:
        assert FIELDS[family] <= set(f["solution"]), sorted(f["solution"])
        assert f.attrs["converged"] == 1
        assert json.loads(f.attrs["config"])["output"]["file"] == str(out)


def test_finite_population_script_at_a_tiny_size(tmp_path, monkeypatch, capsys):
    """runs/stackelberg_finite_population.py end to end (table, slopes, plot) with 2
    populations of 10 and 40 followers, 20 paths of 24 steps."""
    spec = importlib.util.spec_from_file_location("finite_population", RUNS / "stackelberg_finite_population.py")
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    study = script.finite_population_study
    monkeypatch.setattr(script, "finite_population_study",
                        lambda cf: study(cf, Ns=(10, 40), paths=20, steps=24))
    png = tmp_path / "fp.png"
    script.main(str(png))
    out = capsys.readouterr().out
    assert "slopes (log-log in N)" in out and f"plot: {png}" in out
    assert [line.split()[0] for line in out.splitlines() if line.strip().startswith(("10 ", "40 ", "inf "))] \
        == ["10", "40", "inf"]
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
