"""The master equation over (belief, z) of a leader with a private type
(solvers/private_type.py), against checks that do not use its routines:

- at the beliefs 0 and 1 it is the game of a known type: MasterSolver's values, levels and
  actions, for both selection rules;
- at every belief node, grid point and level no pure prescription (every pair of actions,
  the followers answered by commitment.Answers) does better for the leader;
- along the two types' paths no follower gains by deviating (its own dynamic programme),
  and the check sees a wrong prescription;
- the study (runs/infection_private_severity.toml): concealing a mild epidemic is worth
  something at z = (1/2, 1/2) (the types pool), nothing at z(infected) = 1/4 (they separate);
- the CLI: the written file, bad input, and 1 and 2 ranks bitwise equal.
"""
import json

import h5py
import numpy as np
import pytest

from conftest import RUNS, mfgpde, run_in_process
from mfgpde.grids import SimplexGrid
from mfgpde.models import create
from mfgpde.solvers.master import MasterSolver
from mfgpde.solvers.private_type import KnownType, PrivateTypeSolver, beliefs, follower_exploitability, \
    prescription_gain

RUN = RUNS / "infection_private_severity.toml"
SMALL = ["--set", "grid.n=8", "--set", "time.T=5", "--set", "grid.beliefs=5", "--set", "solver.leader_points=11",
         "--set", "output.plots=false"]


@pytest.fixture(scope="module")
def game():
    model = create("infection_private_severity")
    return model, SimplexGrid(2, 12), beliefs(5, 0.5)


@pytest.mark.parametrize("selection", ["optimistic", "pessimistic"])
def test_beliefs_zero_and_one_are_the_known_type_games(game, selection):
    model, grid, pi = game
    solver = PrivateTypeSolver(model, grid, pi, selection=selection, leader_points=11)
    levels = solver.finite(4)
    for theta, j in ((0, 0), (1, len(pi) - 1)):
        known = MasterSolver(KnownType(model, np.eye(2)[theta], actions=solver.candidates), grid, selection=selection)
        for ours, theirs in zip(levels, known.finite(4)):
            assert np.abs(ours.Vl[j, :, theta] - theirs.Vl).max() < 1e-13
            assert np.abs(ours.Vf[j] - theirs.Vf).max() < 1e-13
            assert np.array_equal(ours.leader[j, :, theta], theirs.leader) and ours.pooling[j].all()


def test_no_other_prescription_does_better(game):
    model, grid, pi = game
    solver = PrivateTypeSolver(model, grid, pi, leader_points=11)
    levels = solver.finite(4)
    worst, separated = 0.0, 0
    for t, level in enumerate(levels):
        nxt = (levels[t + 1].Vf, levels[t + 1].Vl) if t + 1 < len(levels) else (0 * level.Vf, 0 * level.Vl)
        for j, p in enumerate(pi):
            chosen = (1 - p) * level.Vl[j, :, 0] + p * level.Vl[j, :, 1]
            gain = prescription_gain(model, grid, "optimistic", solver.candidates, pi, j, grid.points, *nxt, chosen)
            worst = max(worst, np.abs(gain).max())
        separated += int((~level.pooling).sum())
    assert worst < 1e-12
    assert separated > 0  # the check covers separating prescriptions too


def test_the_check_sees_a_worse_prescription(game, monkeypatch):
    """A solver that never separates: found out where separating is better."""
    import mfgpde.solvers.private_type as pt
    model, grid, pi = game
    real = pt._best_pair

    def never(*args):
        b0, b1, value = real(*args)
        return b0, b1, np.full_like(value, -np.inf)
    monkeypatch.setattr(pt, "_best_pair", never)
    solver = PrivateTypeSolver(model, grid, pi, leader_points=11)
    levels, gains = solver.finite(4), []
    for t, level in enumerate(levels):
        nxt = (levels[t + 1].Vf, levels[t + 1].Vl) if t + 1 < len(levels) else (0 * level.Vf, 0 * level.Vl)
        gains += [prescription_gain(model, grid, "optimistic", solver.candidates, pi, j, grid.points, *nxt,
                                    (1 - p) * level.Vl[j, :, 0] + p * level.Vl[j, :, 1]).max()
                  for j, p in enumerate(pi)]
    assert all(level.pooling.all() for level in levels) and max(gains) > 1e-3


def test_followers_cannot_gain_along_the_paths(game):
    model, grid, pi = game
    solver = PrivateTypeSolver(model, SimplexGrid(2, 40), pi, leader_points=11)
    levels = solver.finite(6)
    for z1 in ([0.5, 0.5], [0.75, 0.25]):
        paths = solver.forward(z1, 0.5, levels)
        assert follower_exploitability(model, paths, 0.5) < 1e-12
        wrong = [dict(p) for p in paths]
        wrong[1]["policy"] = 1.0 - wrong[1]["policy"]  # every follower does the other thing after θ1's action
        assert follower_exploitability(model, wrong, 0.5) > 1e-3


def test_concealment_study(tmp_path):
    out = {}
    for name, z1 in (("half", "[0.5,0.5]"), ("quarter", "[0.75,0.25]")):
        path = tmp_path / f"{name}.h5"
        proc = run_in_process("run", RUN, "--set", f"time.z1={z1}", "--set", "output.plots=false", "-o", path)
        assert proc.returncode == 0, proc.stderr
        with h5py.File(path) as f:
            out[name] = (dict(f.attrs), {g: {k: f[g][k][()] for k in f[g]} for g in f if g.startswith("traj")})
    attrs, paths = out["half"]
    assert attrs["leader_value"] - attrs["complete_information"] > 0.01  # concealing the mild type pays
    assert all(p["pooling"][0] == 1 for p in paths.values())
    attrs, paths = out["quarter"]
    assert abs(attrs["leader_value"] - attrs["complete_information"]) < 1e-12
    assert paths["trajectory_mild"]["pooling"][0] == 0 and paths["trajectory_mild"]["belief"][1] == 0.0
    for attrs, _ in out.values():
        assert attrs["follower_exploitability"] < 1e-12 and abs(attrs["leader_prescription_gain"]) < 1e-12
        assert attrs["kind"] == "stackelberg_private_type"


def test_file_and_plots(tmp_path):
    path = tmp_path / "r.h5"
    proc = run_in_process("run", RUN, *SMALL[:-2], "--set", "output.plots=true", "-o", path)
    assert proc.returncode == 0, proc.stderr
    with h5py.File(path) as f:
        assert list(f["grid"].attrs["axes"]) == ["belief", "z_infected"]
        assert f["solution/V_leader_mild"].shape == (5, 5, 9)
        assert json.loads(f.attrs["leader_types"]) == ["mild", "severe"]
    assert (tmp_path / "r_policies.png").stat().st_size > 0 and (tmp_path / "r_path.png").stat().st_size > 0
    info = run_in_process("info", path)
    assert info.returncode == 0 and "levels t = 1 .. 5" in info.stdout, info.stdout


@pytest.mark.parametrize("setting, message", [
    ("time.T=infinite", "time.T: a leader with a private type needs a finite horizon"),
    ("solver.commitment_steps=2", "solver.commitment_steps: 0 or 1"),
    ("time.prior=1.5", "time.prior: a probability"),
    ("grid.beliefs=1", "grid.beliefs: an integer from 2"),
    ("model.severity=[0.1]", "model.severity: costs"),
])
def test_bad_input(setting, message, tmp_path):
    proc = run_in_process("run", RUN, *SMALL, "--set", setting, "-o", tmp_path / "x.h5")
    assert proc.returncode == 2 and message in proc.stderr, proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1 and not list(tmp_path.iterdir())


def test_epsilon_is_refused(tmp_path):
    proc = run_in_process("run", RUN, *SMALL, "--set", "solver.leader=\"pessimistic\"", "--set", "solver.epsilon=0.1",
                          "-o", tmp_path / "x.h5")
    assert proc.returncode == 2 and "solver.epsilon: the ε-pessimistic leader is not built" in proc.stderr


@pytest.mark.mpi
def test_one_and_two_ranks_identical(tmp_path):
    fields = {}
    for nproc in (None, 2):
        path = tmp_path / f"r{nproc}.h5"
        proc = mfgpde("run", RUN, *SMALL, "-o", path, nproc=nproc)
        assert proc.returncode == 0, proc.stderr[-2000:]
        with h5py.File(path) as f:
            assert f.attrs["mpi_ranks"] == (nproc or 1)
            fields[nproc] = {k: f["solution"][k][()] for k in f["solution"]}
            fields[nproc].update({f"{g}/{k}": f[g][k][()] for g in f if g.startswith("traj") for k in f[g]})
    assert set(fields[None]) == set(fields[2])
    for k in fields[None]:
        assert np.array_equal(fields[None][k], fields[2][k]), k
