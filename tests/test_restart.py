"""Checkpoint/restart: a run killed at any point and restarted ends at the uninterrupted
result, also on another number of ranks; SIGTERM writes a last checkpoint; incompatible,
corrupted or foreign checkpoints are refused with one line.  A run that is signalled is a
subprocess; the others run in this process (conftest.run_in_process)."""
import os
import shutil
import signal

import h5py
import numpy as np
import pytest

from conftest import RUNS, mfgpde, run_in_process, signal_at_checkpoint
from conftest import checkpoint_iteration as _iteration
from mfgpde.io.hdf5 import file_checksum

STUDY = [RUNS / "lq_mfg_1d.toml", "--set", "grid.n=[150]", "--set", "time.nt=75",
         "--set", "output.plots=false", "--set", "solver.coupling='picard'"]  # 29 iterations to stop between


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    out = tmp_path_factory.mktemp("ref") / "ref.h5"
    proc = run_in_process("run", *STUDY, "-o", out)
    assert proc.returncode == 0, proc.stderr
    with h5py.File(out) as f:
        return {k: f["solution"][k][()] for k in ("u", "m")}, int(f.attrs["iterations"])


def _kill_at(out, iteration, nproc=None, sig=signal.SIGKILL, study=STUDY):
    return signal_at_checkpoint(study, out, iteration, sig, nproc)


def _assert_same(out, reference):
    fields, iterations = reference
    with h5py.File(out) as f:
        assert int(f.attrs["iterations"]) == iterations
        assert len(f["history/iteration"]) == iterations  # the history continues across the restart
        for k in ("u", "m"):  # relative to the field: u is about 5 here
            assert np.max(np.abs(f["solution"][k][()] - fields[k])) < 1e-12 * max(1.0, np.max(np.abs(fields[k])))


@pytest.mark.slow
@pytest.mark.parametrize("kill_at", [1, 7, 15])
def test_sigkill_then_restart_gives_the_uninterrupted_result(kill_at, tmp_path, reference):
    out = tmp_path / "run.h5"
    proc, ckpt = _kill_at(out, kill_at)
    assert proc.returncode == -signal.SIGKILL and not out.exists()
    saved = tmp_path / "saved.ckpt.h5"
    shutil.copy(ckpt, saved)
    assert _iteration(saved) >= kill_at
    done = run_in_process("run", *STUDY, "--restart", saved, "-o", out)
    assert done.returncode == 0, done.stderr
    _assert_same(out, reference)
    assert not ckpt.exists()  # removed once converged


@pytest.mark.mpi
@pytest.mark.slow
@pytest.mark.parametrize("ranks_before, ranks_after", [(2, None), (None, 2)])
def test_restart_on_another_number_of_ranks(ranks_before, ranks_after, tmp_path, reference):
    out = tmp_path / "run.h5"
    _, ckpt = _kill_at(out, 5, nproc=ranks_before)
    saved = tmp_path / "saved.ckpt.h5"
    shutil.copy(ckpt, saved)
    done = mfgpde("run", *STUDY, "--restart", saved, "-o", out, nproc=ranks_after)
    assert done.returncode == 0, done.stderr[-3000:]
    _assert_same(out, reference)


@pytest.mark.slow
def test_sigterm_writes_a_checkpoint_and_stops(tmp_path, reference):
    out = tmp_path / "run.h5"
    proc, ckpt = _kill_at(out, 3, sig=signal.SIGTERM)
    err = proc.stderr.read()
    assert proc.returncode == 143, err
    assert "SIGTERM" in err and "--restart" in err and "Traceback" not in err
    assert ckpt.exists() and not out.exists()
    done = run_in_process("run", *STUDY, "--restart", ckpt, "-o", out)
    assert done.returncode == 0, done.stderr
    _assert_same(out, reference)


NEWTON = [RUNS / "congestion_1d.toml", "--set", "grid.n=[400]", "--set", "time.nt=200",
          "--set", "output.plots=false", "--set", "solver.coupling='newton'"]


@pytest.fixture(scope="module")
def newton_reference(tmp_path_factory):
    ref = tmp_path_factory.mktemp("newton") / "ref.h5"
    assert run_in_process("run", *NEWTON, "-o", ref).returncode == 0
    return ref


@pytest.mark.slow
@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGTERM])
def test_newton_iterates_are_checkpointed_and_resumed(sig, tmp_path, newton_reference):
    """A kill during Newton (after 1 Picard iteration, at Newton iterate 2) loses nothing:
    the restart goes on with Newton from the saved iterate to the same solution."""
    ref = newton_reference
    out = tmp_path / "run.h5"
    proc, ckpt = _kill_at(out, 3, sig=sig, study=NEWTON)
    assert proc.returncode == (143 if sig == signal.SIGTERM else -signal.SIGKILL), proc.stderr.read()
    saved = tmp_path / "saved.ckpt.h5"
    shutil.copy(ckpt, saved)
    assert _iteration(saved) >= 3
    done = run_in_process("run", *NEWTON, "--restart", saved, "-o", out)
    assert done.returncode == 0, done.stderr
    assert "newton" in done.stdout and "newton    0" not in done.stdout and "picard" not in done.stdout  # resumed
    with h5py.File(ref) as a, h5py.File(out) as b:
        assert a.attrs["status"] == b.attrs["status"]
        for k in ("u", "m"):
            assert np.max(np.abs(a["solution"][k][()] - b["solution"][k][()])) < 1e-12


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    out = tmp_path_factory.mktemp("ck") / "c.h5"
    proc = run_in_process("run", *STUDY, "--set", "solver.max_iterations=3", "--set", "output.checkpoint_every=1",
                          "-o", out)
    assert proc.returncode == 3  # stopped by the iteration limit, checkpoint kept
    return out.with_name("c.ckpt.h5")


@pytest.mark.parametrize("change, key", [("grid.n=[200]", "grid.n"), ("model.sigma=0.4", "model.sigma"),
                                         ("time.T=2.0", "time.T"), ('model.name="congestion"', "model")])
def test_incompatible_restart_is_refused(change, key, checkpoint, tmp_path):
    proc = run_in_process("run", *STUDY, "--set", change, "--restart", checkpoint, "-o", tmp_path / "x.h5")
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert proc.returncode == 2 and len(lines) == 1 and key in lines[0], proc.stderr
    assert not (tmp_path / "x.h5").exists()


@pytest.mark.slow
def test_solver_settings_may_change_on_restart(checkpoint, tmp_path):
    proc = run_in_process("run", *STUDY, "--set", "solver.tolerance=1e-6", "--restart", checkpoint,
                          "-o", tmp_path / "x.h5")
    assert proc.returncode == 0, proc.stderr


def _corrupt(src, dst, how):
    shutil.copy(src, dst)
    if how == "truncated":
        with open(dst, "r+b") as f:
            f.truncate(os.path.getsize(dst) // 2)
    elif how == "data":
        with h5py.File(dst, "r+") as f:
            f["solution/m"][5, 10] += 1e-9
    elif how == "format":  # another format, correctly checksummed
        with h5py.File(dst, "r+") as f:
            f.attrs["format"] = 99
            f.attrs["sha256"] = file_checksum(f)


@pytest.mark.parametrize("how, words", [("truncated", "not a readable"), ("data", "corrupted"),
                                        ("format", "format 99")])
def test_damaged_checkpoint_is_refused(how, words, checkpoint, tmp_path):
    bad = tmp_path / "bad.h5"
    _corrupt(checkpoint, bad, how)
    proc = run_in_process("run", *STUDY, "--restart", bad, "-o", tmp_path / "x.h5")
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert proc.returncode == 2 and len(lines) == 1 and words in lines[0], proc.stderr


@pytest.mark.slow
def test_an_output_file_is_not_a_checkpoint(tmp_path):
    out = tmp_path / "o.h5"
    small = ["--set", "grid.n=[40]", "--set", "time.nt=10"]
    assert run_in_process("run", *STUDY, *small, "-o", out).returncode == 0
    proc = run_in_process("run", *STUDY, *small, "--restart", out, "-o", tmp_path / "x.h5")
    assert proc.returncode == 2 and "not an mfgpde checkpoint" in proc.stderr


@pytest.mark.slow
def test_checkpoint_by_wall_time(tmp_path):
    out = tmp_path / "w.h5"
    proc = run_in_process("run", *STUDY, "--set", "solver.max_iterations=3", "--set", "output.checkpoint_seconds=1e-6",
                          "-o", out)
    assert proc.returncode == 3
    assert _iteration(tmp_path / "w.ckpt.h5") == 3  # written after every iteration
