"""Stopped by the scheduler under `mpirun -n 2`: SIGTERM to mpirun at 10 moments (during
iterations that last seconds, during checkpoint writes, during post-processing), SIGUSR1
to mpirun, SIGTERM to the ranks themselves (as srun and Slurm deliver it) and the
wall-time budget.  Every time: the run stops within seconds with the last completed
iterate checkpointed (or the converged solution written), one line says so, the exit
status is the documented one, and --restart reaches the uninterrupted answer to 1e-12
(Picard, whose restart is exact; an Anderson restart loses the mixing history and is
tested in test_restart.py).

The iterations that last seconds make these tests long, so none is run more often than
the claims need: the study converges in 7 iterations (its tolerance is not what is
tested); a run stopped after the line of iteration k > 1 starts with --restart from the
reference run's checkpoint of iteration k - 1 (a Picard restart is exact: it computes what
an uninterrupted run does from there, and is stopped in the same code); the wall-time
budget tests share one measurement of the pace; and one signalled checkpoint late in the
run is restarted to the answer, while every other one holding the same iterate (the bytes
of /solution and /history, wall times aside) as the reference run's checkpoint of its
iteration is the same computation, and is compared rather than restarted."""
import hashlib
import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import time

import h5py
import numpy as np
import pytest

from conftest import ROOT, RUNS, _env, checkpoint_iteration, mfgpde, mfgpde_background, run_in_process

# Unpreconditioned level solves make each Picard iteration last seconds on this small grid.
SLOW = ["-fp_ksp_type", "gmres", "-fp_pc_type", "none", "-fp_ksp_gmres_restart", "3", "-fp_ksp_max_it", "100000",
        "-hjb_ksp_type", "gmres", "-hjb_pc_type", "none", "-hjb_ksp_gmres_restart", "3",
        "-hjb_ksp_max_it", "100000", "-hjb_ksp_rtol", "1e-10"]
STUDY = [RUNS / "lq_mfg_2d.toml", "--set", "grid.n=[200,200]", "--set", "time.nt=50",
         "--set", "solver.coupling='picard'", "--set", "solver.tolerance=1.5e-4", "--set", "solver.damping=1.0",
         "--set", "output.checkpoint_every=2",
         "--set", "output.plots=true", *SLOW]


def _open_mpi():
    if shutil.which("mpirun") is None:  # the tests fail (conftest), collecting them must not
        return False
    version = subprocess.run([shutil.which("mpirun"), "--version"], capture_output=True, text=True)
    return "Open MPI" in version.stdout + version.stderr


OPEN_MPI = _open_mpi()
PICARD = re.compile(r"^picard\s+(\d+)")


class Run:
    """`mfgpde run` under mpirun -n 2 in the background, its stdout read as it comes."""

    def __init__(self, out, *extra):
        self.proc = mfgpde_background("run", *STUDY, "-o", out, *extra, nproc=2)
        self.lines, self.received, self.errors, self.start = [], [], [], time.monotonic()
        self.readers = [threading.Thread(target=self._read, daemon=True),
                        threading.Thread(target=lambda: self.errors.extend(self.proc.stderr), daemon=True)]
        for reader in self.readers:
            reader.start()

    def _read(self):
        for line in self.proc.stdout:
            self.received.append(time.monotonic())
            self.lines.append(line)

    def wait_for(self, pattern, timeout=240):
        deadline = time.monotonic() + timeout
        while not any(re.search(pattern, line) for line in self.lines):
            assert self.proc.poll() is None, f"the run ended before {pattern!r}: " + self.stderr()
            assert time.monotonic() < deadline, f"no {pattern!r} within {timeout} s"
            time.sleep(0.005)

    def finish(self, timeout=120):
        """(exit status, stderr) once the run has ended."""
        self.proc.wait(timeout=timeout)
        return self.proc.returncode, self.stderr()

    def stderr(self):
        """The run's stderr once it has ended (both pipes are read by this object's threads)."""
        for reader in self.readers:
            reader.join(timeout=10)
        return "".join(self.errors)

    def completed(self):
        return max((int(PICARD.match(line).group(1)) for line in self.lines if PICARD.match(line)), default=0)

    def finished_at(self, k, wall_time, before):
        """When iteration k finished, on the test's clock: the run's own clock (`wall_time`
        of its history) set by the progress lines that arrived before `before` (mpirun may
        hold back or drop a line it was forwarding when it was signalled)."""
        seen = [(int(PICARD.match(line).group(1)), t) for line, t in zip(self.lines, self.received)
                if PICARD.match(line) and t < before]
        return min(t - wall_time[j - 1] for j, t in seen) + wall_time[k - 1] if seen else None

    def ranks(self):
        """Process ids of the ranks (mpirun's children)."""
        with open(f"/proc/{self.proc.pid}/task/{self.proc.pid}/children") as f:
            children = [int(p) for p in f.read().split()]
        assert len(children) == 2, children
        return children


def _fields(path):
    with h5py.File(path, "r") as f:
        return {k: f["solution"][k][()] for k in ("u", "m")}, int(f.attrs["iterations"])


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """(the uninterrupted solution and its iterations, the median iteration time, the
    iterations, {k: a copy of the run's checkpoint of iteration k}); the run checkpoints
    after every iteration (which changes nothing else)."""
    out = tmp_path_factory.mktemp("ref") / "ref.h5"
    ckpt, saved = out.with_name("ref.ckpt.h5"), {}
    run = Run(out, "--set", "output.checkpoint_every=1")
    deadline = time.monotonic() + 600
    while run.proc.poll() is None and time.monotonic() < deadline:
        k = checkpoint_iteration(ckpt)
        if k and k not in saved:
            copy = out.with_name("copy.h5")
            try:
                shutil.copy(ckpt, copy)  # written by rename: the copy is one whole checkpoint
            except FileNotFoundError:  # removed at convergence
                continue
            k = checkpoint_iteration(copy)
            saved[k] = copy.rename(out.with_name(f"iteration{k}.ckpt.h5"))
        time.sleep(0.01)
    code, err = run.finish(timeout=600)
    assert code == 0, err
    clock = [re.search(r"(\d+\.\d+) s$", line) for line in run.lines if PICARD.match(line)]
    durations = np.diff([float(c.group(1)) for c in clock if c])  # mpirun may join a line to the next
    assert run.completed() == 7 and sorted(saved) == [1, 2, 3, 4, 5, 6], (run.completed(), sorted(saved))
    return _fields(out), float(np.median(durations)), run.completed(), saved


def _start(after, reference, tmp_path):
    """The arguments of a run stopped after `after` (a line of its output): from the start
    for iteration 1, else --restart from a copy of the reference's checkpoint of the
    iteration before."""
    k = reference[2] if after == "last" or not isinstance(after, int) else after
    if k <= 1:
        return ()
    return "--restart", shutil.copy(reference[3][k - 1], tmp_path / "start.ckpt.h5")


def _stopped_message(err, what, required=True):
    """The one line saying what stopped the run ('' where it may be missing)."""
    lines = [line for line in err.splitlines() if line.startswith("mfgpde:")]
    assert "Traceback" not in err
    assert len(lines) == 1 or (not required and not lines), err
    assert not lines or what in lines[0], err
    return lines[0] if lines else ""


RESTARTED = []  # checkpoints of signalled runs whose --restart reached the answer
LATE = 5  # restarted to the answer: the first signalled checkpoint of this iteration or later


def _state(ckpt):
    """What a restart from `ckpt` computes from: the iteration, /solution and /history
    (the wall times aside)."""
    digest = hashlib.sha256()
    with h5py.File(ckpt, "r") as f:
        digest.update(str(int(f.attrs["iteration"])).encode())
        for group in ("solution", "history"):
            for k in sorted(f[group]):
                if k != "wall_time":
                    digest.update(k.encode() + f[group][k][()].tobytes())
    return digest.hexdigest()


def _check_restart(out, reference):
    """A --restart from the signalled run's checkpoint reaches the uninterrupted answer.
    One signalled checkpoint (the first of iteration LATE or later: few iterations remain)
    is restarted to the answer; for every other one, holding the same iterate as the
    reference run's checkpoint of that iteration (the bytes of /solution and /history, wall
    times aside) is that check already, a Picard restart computing from those bytes alone.
    An iterate the reference did not keep is restarted to the answer."""
    fields, iterations = reference[0]
    ckpt = out.with_name(out.stem + ".ckpt.h5")
    k = checkpoint_iteration(ckpt)
    kept = reference[3].get(k)
    if kept is not None and (RESTARTED or k < LATE):
        assert _state(ckpt) == _state(kept), "the checkpoint is not the uninterrupted run's iterate"
        return
    done = mfgpde("run", *STUDY, "--restart", ckpt, "-o", out, nproc=2, timeout=600)
    assert done.returncode == 0, done.stderr
    found, its = _fields(out)
    assert its == iterations
    for k in ("u", "m"):
        assert np.max(np.abs(found[k] - fields[k])) < 1e-12
    assert not ckpt.exists()  # removed once converged
    RESTARTED.append(out)


def _check_stop(run, out, reference, code, what, sent, message=True, exact=True):
    """The run stopped with `code` within seconds, saving the converged solution (a stop
    while post-processing) or the last iterate completed when the signal was sent (`exact`;
    not one the run went on to finish), from which --restart goes on."""
    status, err = run.finish()
    latency = time.monotonic() - sent
    assert status == code, err
    line = _stopped_message(err, what, required=message)
    assert latency < 5.0, f"{latency:.1f} s from the signal to the exit (iterations take {reference[1]:.1f} s)"
    ckpt = out.with_name(out.stem + ".ckpt.h5")
    if out.exists():  # stopped after convergence: the solution is on disk, the checkpoint gone
        assert not line or "post-processing" in line or "while plotting" in line, line
        fields = reference[0][0]
        found, _ = _fields(out)
        assert all(np.max(np.abs(found[k] - fields[k])) < 1e-12 for k in ("u", "m"))
        assert not ckpt.exists()
        return
    with h5py.File(ckpt, "r") as f:
        saved, wall_time = int(f.attrs["iteration"]), f["history/wall_time"][()]
        assert len(f["history/iteration"]) == saved
    assert saved >= run.completed()  # not an older iterate
    if exact:
        done = run.finished_at(saved, wall_time, sent)
        # mpirun takes a few tenths of a second to pass a signal on to the ranks
        assert done is not None and done <= sent + 1.0, \
            f"iteration {saved} finished {done - sent:.2f} s after the signal: the stop waited for it"
    _check_restart(out, reference)


# (after a line of the run's output, seconds later): in iterations, right at the checkpoint
# writes of iterations 2 and 4, after the last iteration (writing the solution, its closed
# form, XDMF) and while plotting; the study converges in 7 iterations of about 2.2 s, and a
# signal leaves at least 1.2 s of its iteration, so that an iteration the stop waited for shows
MOMENTS = [(1, 0.0), (1, 0.6), (2, 0.0), (2, 0.02), (3, 0.4), (4, 0.0), (5, 0.2), (6, 0.6),
           ("last", 0.0), (r"converged in", 0.0)]


def _wait(run, after, delay, reference):
    """Wait for the moment; the time the signal goes."""
    if after == "last":
        after = reference[2]
    run.wait_for(rf"^picard\s+{after}\s" if isinstance(after, int) else after)
    time.sleep(delay)
    return time.monotonic()


@pytest.mark.mpi
@pytest.mark.slow
@pytest.mark.parametrize("after, delay", MOMENTS)
def test_sigterm_to_mpirun(after, delay, tmp_path, reference):
    """Open MPI's mpirun forwards SIGTERM to the ranks, kills them a second later and exits
    with its own status 1: the checkpoint must be written within that second.  mpirun may
    drop the ranks' last lines of output as it tears the job down, the one line included."""
    out = tmp_path / "x.h5"
    run = Run(out, *_start(after, reference, tmp_path))
    sent = _wait(run, after, delay, reference)
    run.proc.send_signal(signal.SIGTERM)
    _check_stop(run, out, reference, 1 if OPEN_MPI else 143, "stopped by SIGTERM", sent, message=not OPEN_MPI)


@pytest.mark.mpi
@pytest.mark.slow
@pytest.mark.parametrize("after, delay", [(1, 1.0), (4, 0.0), ("last", 0.0)])
def test_sigusr1_to_mpirun(after, delay, tmp_path, reference):
    """mpirun forwards SIGUSR1 and passes the ranks' status on: 138."""
    out = tmp_path / "x.h5"
    run = Run(out, *_start(after, reference, tmp_path))
    sent = _wait(run, after, delay, reference)
    run.proc.send_signal(signal.SIGUSR1)
    _check_stop(run, out, reference, 138, "stopped by SIGUSR1", sent)


@pytest.mark.mpi
@pytest.mark.slow
@pytest.mark.parametrize("after, delay", [(2, 0.5), (5, 0.0)])
def test_sigterm_to_the_ranks(after, delay, tmp_path, reference):
    """srun and Slurm's time limit signal every task: the ranks' 143 comes through mpirun."""
    out = tmp_path / "x.h5"
    run = Run(out, *_start(after, reference, tmp_path))
    sent = _wait(run, after, delay, reference)
    for pid in run.ranks():
        os.kill(pid, signal.SIGTERM)
    _check_stop(run, out, reference, 143, "stopped by SIGTERM", sent)


@pytest.fixture(scope="module")
def pace(tmp_path_factory):
    """(seconds to the first iteration's end, seconds per iteration) of a run now: this
    machine's pace, so that a budget lands mid-run."""
    probe = Run(tmp_path_factory.mktemp("probe") / "probe.h5")
    probe.wait_for(r"^picard\s+1\s")
    first = time.monotonic() - probe.start
    probe.wait_for(r"^picard\s+3\s")
    per_iteration = (time.monotonic() - probe.start - first) / 2
    probe.proc.send_signal(signal.SIGUSR1)
    probe.finish()
    return first, per_iteration


@pytest.mark.mpi
@pytest.mark.slow
@pytest.mark.parametrize("iterations", [2.5, 3.0])  # mid-iteration, and at a boundary
def test_wall_time_budget(iterations, tmp_path, reference, pace):
    """--max-time: checkpoint and exit 124 at the budget, whatever the iteration is doing."""
    out = tmp_path / "x.h5"
    first, per_iteration = pace
    budget = first + (iterations - 1) * per_iteration
    run = Run(out, "--max-time", f"{budget:.2f}")
    _check_stop(run, out, reference, 124, "wall-time budget", run.start + budget, exact=False)


@pytest.mark.mpi
@pytest.mark.slow
def test_slurm_script_forwards_usr1_requeues_and_finishes(tmp_path, reference):
    """runs/slurm/mfgpde.sbatch, with a stand-in scontrol: SIGUSR1 to the script (what
    `--signal=B:USR1@180` sends) reaches the ranks through mpirun, the job requeues
    itself, and the requeued job continues from the checkpoint to the answer."""
    bin_dir, out = tmp_path / "bin", tmp_path / "x.h5"
    bin_dir.mkdir()
    scontrol = bin_dir / "scontrol"
    scontrol.write_text(f'#!/bin/sh\necho "$@" >> {tmp_path / "scontrol.log"}\n')
    scontrol.chmod(0o755)
    env = {**_env(), "PATH": f"{bin_dir}:{os.environ['PATH']}", "SLURM_JOB_ID": "4242",
           "LAUNCH": f"{shutil.which('mpirun')} -n 2", "MFGPDE": f"{sys.executable} -m mfgpde"}
    script = [shutil.which("bash"), str(ROOT / "runs/slurm/mfgpde.sbatch"), str(STUDY[0]), str(out),
              *map(str, STUDY[1:])]
    job = subprocess.Popen(script, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    ckpt = out.with_name("x.ckpt.h5")
    deadline = time.monotonic() + 240
    while not ckpt.exists():  # checkpoint_every = 2
        assert job.poll() is None and time.monotonic() < deadline, job.communicate()
        time.sleep(0.01)
    job.send_signal(signal.SIGUSR1)
    stdout, stderr = job.communicate(timeout=120)
    assert job.returncode == 0, stderr
    assert "stopped by SIGUSR1" in stderr and "requeued" in stdout
    assert (tmp_path / "scontrol.log").read_text().split() == ["requeue", "4242"]
    again = subprocess.run(script, capture_output=True, text=True, env=env, timeout=600)
    assert again.returncode == 0 and "solved" in again.stdout, again.stderr
    fields = reference[0][0]
    found, iterations = _fields(out)
    assert iterations == reference[0][1]
    assert all(np.max(np.abs(found[k] - fields[k])) < 1e-12 for k in ("u", "m"))


@pytest.mark.slow
def test_ctrl_c_in_a_serial_run(tmp_path):
    """SIGINT (Ctrl-C) in a serial run: the last completed iterate saved, one line, 130."""
    out = tmp_path / "x.h5"
    study = [RUNS / "lq_mfg_1d.toml", "--set", "grid.n=[300]", "--set", "time.nt=300", "--set", "output.plots=false",
             "--set", "solver.coupling='picard'"]
    proc = mfgpde_background("run", *study, "-o", out)
    ckpt, deadline = out.with_name("x.ckpt.h5"), time.monotonic() + 120
    line = proc.stdout.readline()
    while not PICARD.match(line):
        assert proc.poll() is None and time.monotonic() < deadline, proc.stderr.read()
        line = proc.stdout.readline()
    proc.send_signal(signal.SIGINT)
    err = proc.communicate(timeout=60)[1]
    assert proc.returncode == 130, err
    assert "stopped by SIGINT after iteration" in _stopped_message(err, "SIGINT")
    with h5py.File(ckpt, "r") as f:
        assert int(f.attrs["iteration"]) >= 1


@pytest.mark.parametrize("args, key", [(["--max-time", "ten minutes"], "--max-time"),
                                       (["--max-time", "0"], "--max-time"),
                                       (["--set", "output.max_wall_time='-1:00'"], "output.max_wall_time"),
                                       (["--set", "output.max_wall_time=0"], "output.max_wall_time")])
def test_bad_budget_is_refused(args, key, tmp_path):
    proc = run_in_process("run", RUNS / "lq_mfg_1d.toml", *args, "-o", tmp_path / "x.h5")
    assert proc.returncode == 2 and proc.stderr.startswith(f"mfgpde: error: {key}:"), proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1 and not list(tmp_path.iterdir())
