"""Checkpoint/restart of the leader-follower and master-equation families, with the MFG
runs' contract: a stop request writes the last completed level (or iterate) and exits with
its code and one line; a run killed after a periodic checkpoint and restarted, on the same
or another number of ranks, ends at the uninterrupted result; a checkpoint of another
family, grid or (where the saved levels depend on it) solver setting is refused with one
line, exit 2.  A run that is signalled is a subprocess; the others run in this process
(conftest.run_in_process) but those on two ranks."""
import shutil
import signal

import h5py
import numpy as np
import pytest

from conftest import RUNS, mfgpde, run_in_process, signal_at_checkpoint
from conftest import checkpoint_iteration as _iteration

pytestmark = pytest.mark.slow  # every test needs the runs of `references` or `killed`
STUDIES = {
    "leader_follower": [RUNS / "stackelberg_lq.toml", "--set", "grid.n=[12,12]", "--set", "time.nt=32",
                        "--set", "output.plots=false"],
    "master_finite": [RUNS / "infection_vaccination.toml", "--set", "grid.n=6", "--set", "time.T=8",
                      "--set", "solver.leader_points=11", "--set", "output.plots=false"],
    "master_infinite": [RUNS / "infection_vaccination.toml", "--set", "grid.n=6", "--set", "time.steps=2",
                        "--set", "solver.tolerance=1e-4", "--set", "solver.leader_points=11",
                        "--set", "output.plots=false"],
    "master_private": [RUNS / "infection_private_severity.toml", "--set", "grid.n=6", "--set", "time.T=8",
                       "--set", "grid.beliefs=5", "--set", "solver.leader_points=11", "--set", "output.plots=false"],
}
TOTAL = {"leader_follower": 32, "master_finite": 8, "master_infinite": 19, "master_private": 8}  # levels/iterations
KILL_AT = {"leader_follower": 3, "master_finite": 2, "master_infinite": 4, "master_private": 2}
MFG = [RUNS / "lq_mfg_1d.toml", "--set", "grid.n=[40]", "--set", "time.nt=20", "--set", "output.plots=false"]
FAMILIES = list(STUDIES)


def _solution(path):
    with h5py.File(path) as f:
        return ({k: f["solution"][k][()] for k in f["solution"]},
                {k: f["history"][k][()] for k in f["history"]} if "history" in f else {},
                {k: v for k, v in f.attrs.items() if k not in ("wall_time", "checksum", "config", "mpi_ranks")})


@pytest.fixture(scope="module")
def references(tmp_path_factory):
    """The uninterrupted result of every study (1 rank), computed once."""
    d, out = tmp_path_factory.mktemp("ref"), {}
    for family, study in STUDIES.items():
        proc = run_in_process("run", *study, "-o", d / f"{family}.h5")
        assert proc.returncode == 0, proc.stderr
        out[family] = _solution(d / f"{family}.h5")
        assert out[family][2]["iterations"] == TOTAL[family]
    return out


def _assert_same(path, reference, tol=1e-12, bitwise=True):
    """Every /solution field of `path` within `tol` of the reference (identical where
    `bitwise`), the history and the attributes a restart must not change identical."""
    fields, history, attrs = _solution(path)
    ref_fields, ref_history, ref_attrs = reference
    assert set(fields) == set(ref_fields)
    for k in fields:
        diff = np.max(np.abs(fields[k] - ref_fields[k]))
        assert diff <= (0.0 if bitwise else tol), (k, diff)
    assert set(history) == set(ref_history)
    for k in history:
        assert np.array_equal(history[k], ref_history[k])
    skip = ("sha256",) + (() if bitwise else ("linear_iterations", "error_", "difference_"))  # sha256: of times too
    for k, v in ref_attrs.items():
        if not k.startswith(skip):
            assert str(attrs.get(k)) == str(v), k


def _signal_at(family, out, k, sig):
    return signal_at_checkpoint(STUDIES[family], out, k, sig)


@pytest.fixture(scope="module")
def killed(tmp_path_factory):
    """Per family: a copy of the periodic checkpoint a SIGKILL left behind."""
    d, out = tmp_path_factory.mktemp("killed"), {}
    for family in FAMILIES:
        proc, ckpt = _signal_at(family, d / f"{family}.h5", KILL_AT[family], signal.SIGKILL)
        assert proc.returncode == -signal.SIGKILL and not (d / f"{family}.h5").exists()
        out[family] = shutil.copy(ckpt, d / f"{family}.saved.ckpt.h5")
        assert KILL_AT[family] <= _iteration(out[family]) < TOTAL[family]
    return out


def _one_line(proc):
    err = proc.stderr if isinstance(proc.stderr, str) else proc.stderr.read()
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1 and "Traceback" not in err, err
    return lines[0]


@pytest.mark.parametrize("family", FAMILIES)
def test_sigkill_then_restart_gives_the_uninterrupted_result(family, killed, references, tmp_path):
    out = tmp_path / "run.h5"
    done = run_in_process("run", *STUDIES[family], "--restart", killed[family], "-o", out)
    assert done.returncode == 0, done.stderr
    _assert_same(out, references[family])  # bitwise
    assert not out.with_name("run.ckpt.h5").exists()


@pytest.mark.mpi
@pytest.mark.parametrize("family", FAMILIES)
def test_restart_on_two_ranks_from_a_one_rank_checkpoint(family, killed, references, tmp_path):
    out = tmp_path / "run.h5"
    done = mfgpde("run", *STUDIES[family], "--restart", killed[family], "-o", out, nproc=2)
    assert done.returncode == 0, done.stderr[-3000:]
    if family == "leader_follower":  # the levels after the saved ones are solved on 2 ranks (2-rank Krylov)
        _assert_same(out, references[family], tol=1e-12, bitwise=False)
        saved, fields = _iteration(killed[family]), _solution(out)[0]
        for k in ("V0", "V1"):  # the saved levels come back bitwise
            assert np.array_equal(fields[k][-saved - 1:], references[family][0][k][-saved - 1:])
    else:  # the master equation does not depend on the number of ranks
        _assert_same(out, references[family])


def test_sigterm_writes_the_last_level_and_stops(references, tmp_path):
    out = tmp_path / "run.h5"
    proc, ckpt = _signal_at("leader_follower", out, 2, signal.SIGTERM)
    line = _one_line(proc)
    assert proc.returncode == 143 and "SIGTERM" in line and f"--restart {ckpt}" in line, line
    assert ckpt.exists() and not out.exists()
    assert 2 <= _iteration(ckpt) < TOTAL["leader_follower"]
    done = run_in_process("run", *STUDIES["leader_follower"], "--restart", ckpt, "-o", out)
    assert done.returncode == 0, done.stderr
    _assert_same(out, references["leader_follower"])
    assert not ckpt.exists()  # removed once the result is written


@pytest.mark.parametrize("family", ["master_finite", "master_infinite", "master_private"])
def test_wall_time_budget_writes_the_last_level_and_stops(family, references, tmp_path):
    """A budget that expires mid-run (no periodic checkpoints): exit 124, one line, the
    checkpoint of the last completed level; the restart ends at the uninterrupted result."""
    out = tmp_path / "run.h5"
    ckpt = out.with_name("run.ckpt.h5")
    for budget in np.geomspace(0.02, 3.0, 30):  # the first that expires after a level and before the last
        proc = run_in_process("run", *STUDIES[family], "--max-time", str(budget), "-o", out)
        if proc.returncode == 124 and 0 < _iteration(ckpt) < TOTAL[family]:
            break
    line = _one_line(proc)
    assert proc.returncode == 124 and "wall-time budget" in line and f"--restart {ckpt}" in line, line
    assert not out.exists()
    done = run_in_process("run", *STUDIES[family], "--restart", ckpt, "-o", out)
    assert done.returncode == 0, done.stderr
    _assert_same(out, references[family])
    assert not ckpt.exists()


def test_unconverged_master_keeps_its_checkpoint(references, tmp_path):
    """The iteration limit: exit 3, the last iterate kept in the checkpoint; a restart with a
    larger limit goes on to the uninterrupted result."""
    out = tmp_path / "run.h5"
    study = STUDIES["master_infinite"]
    proc = run_in_process("run", *study, "--set", "solver.max_iterations=6", "--set", "output.checkpoint_every=4",
                          "-o", out)
    assert proc.returncode == 3, proc.stderr
    ckpt = out.with_name("run.ckpt.h5")
    assert _iteration(ckpt) == 6  # the last iterate, not only the periodic one at 4
    done = run_in_process("run", *study, "--restart", ckpt, "-o", out)
    assert done.returncode == 0, done.stderr
    _assert_same(out, references["master_infinite"])
    assert not ckpt.exists() and not out.with_name("run.unconverged.h5").exists()


@pytest.fixture(scope="module")
def mfg_checkpoint(tmp_path_factory):
    out = tmp_path_factory.mktemp("mfg") / "m.h5"
    proc = run_in_process("run", *MFG, "--set", "solver.max_iterations=2", "--set", "output.checkpoint_every=1",
                          "-o", out)
    assert proc.returncode == 3, proc.stderr
    return out.with_name("m.ckpt.h5")


@pytest.mark.parametrize("family", ["leader_follower", "master_finite", "master_private"])
def test_a_checkpoint_of_another_family_is_refused(family, killed, mfg_checkpoint, tmp_path):
    proc = run_in_process("run", *STUDIES[family], "--restart", mfg_checkpoint, "-o", tmp_path / "x.h5")
    line = _one_line(proc)
    assert proc.returncode == 2 and "checkpoint of an MFG run" in line, line
    proc = run_in_process("run", *MFG, "--restart", killed[family], "-o", tmp_path / "x.h5")
    line = _one_line(proc)
    assert proc.returncode == 2 and "not of an MFG run" in line, line
    other = "master_infinite" if family == "leader_follower" else "leader_follower"
    proc = run_in_process("run", *STUDIES[other], "--restart", killed[family], "-o", tmp_path / "x.h5")
    assert proc.returncode == 2 and "checkpoint of a" in _one_line(proc)
    assert not (tmp_path / "x.h5").exists()


@pytest.mark.parametrize("family, change, key", [
    ("leader_follower", "grid.n=[16,12]", "grid.n"), ("leader_follower", "time.nt=16", "time.nt"),
    ("leader_follower", 'solver.coupling="newton"', "solver.coupling"),
    ("master_finite", "grid.n=8", "grid.n"), ("master_finite", "solver.leader_points=21", "solver.leader_points"),
    ("master_infinite", None, "time.T"), ("master_private", "grid.beliefs=7", "grid.beliefs"),
    ("master_private", "time.prior=0.3", "time.prior")])
def test_an_incompatible_checkpoint_is_refused(family, change, key, killed, tmp_path):
    """Another grid, time or level-deciding solver setting; the finite horizon's levels for
    the infinite one."""
    source = killed["master_finite" if family == "master_infinite" else family]
    proc = run_in_process("run", *STUDIES[family], *(("--set", change) if change else ()), "--restart", source,
                          "-o", tmp_path / "x.h5")
    line = _one_line(proc)
    assert proc.returncode == 2 and key in line, line
    assert not (tmp_path / "x.h5").exists()
