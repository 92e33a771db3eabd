"""Shared test helpers: running the `mfgpde` command serially, under mpirun and in this
process; the test models; the markers' rules.

Markers (pytest.ini): `mpi` for every test that runs mpirun, `slow` for the expensive
ones; `make test-fast` leaves both out, `make test` runs everything.  A test that starts
mpirun through these helpers without the `mpi` mark fails, so new tests cannot slip MPI
runs into the fast tier.

MPI tests never skip silently: if mpirun is missing they fail, and a session that
selected MPI tests fails when none of them passed or any was skipped (with
--require-mpi, as `make test` runs, also when none was selected).
"""
import contextlib
import io
import os
import pathlib
import shutil
import signal
import subprocess
import sys
import time
import traceback
import warnings

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]
RUNS = ROOT / "runs"
# ess_singleton_isolated: a process started without mpirun initialises MPI as a singleton
# without starting Open MPI's daemon (about 0.4 s less for each of the suite's subprocesses;
# processes under mpirun ignore it)
MPI_ENV = {"OMPI_ALLOW_RUN_AS_ROOT": "1", "OMPI_ALLOW_RUN_AS_ROOT_CONFIRM": "1",
           "OMPI_MCA_rmaps_base_oversubscribe": "1", "OMPI_MCA_ess_singleton_isolated": "1",
           "OMP_NUM_THREADS": "1", "MPLBACKEND": "Agg"}
os.environ.setdefault("MPLBACKEND", "Agg")  # in-process runs plot too


def _env():
    env = {**os.environ, **MPI_ENV}
    env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    return env


# --- mpirun only from tests marked `mpi` ------------------------------------------------------

_ITEM = None  # the test being run


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_protocol(item, nextitem):
    global _ITEM
    _ITEM = item


def _mpirun():
    """The mpirun to use; fails the test when there is none or the test is not marked `mpi`."""
    if _ITEM is not None and _ITEM.get_closest_marker("mpi") is None:
        pytest.fail(f"{_ITEM.nodeid} runs mpirun but is not marked @pytest.mark.mpi")
    mpirun = shutil.which("mpirun") or shutil.which("mpiexec")
    if mpirun is None:
        pytest.fail("mpirun not found: the MPI tests cannot run")
    return mpirun


def _command(args, nproc):
    cmd = [sys.executable, "-m", "mfgpde", *map(str, args)]
    if nproc:
        cmd = [_mpirun(), "-n", str(nproc), sys.executable, "-m", "mpi4py", "-m", "mfgpde", *map(str, args)]
    return cmd


def mfgpde(*args, nproc=None, timeout=300, cwd=None):
    """Run `python -m mfgpde ARGS` (under `mpirun -n nproc` when given); CompletedProcess."""
    return subprocess.run(_command(args, nproc), capture_output=True, text=True, timeout=timeout,
                          env=_env(), cwd=cwd)


def mfgpde_background(*args, nproc=None):
    """Start `mfgpde ARGS` in its own process group (so a test can kill all of it); Popen."""
    return subprocess.Popen(_command(args, nproc), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, env=_env(), start_new_session=True)


def mpi_script(path, nproc=2, *args, timeout=300):
    """Run a Python script under mpirun; CompletedProcess."""
    cmd = [_mpirun(), "-n", str(nproc), sys.executable, "-m", "mpi4py", str(path), *map(str, args)]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=_env())


# --- `mfgpde` in this process -----------------------------------------------------------------

def run_in_process(*args, cwd=None):
    """`mfgpde ARGS` as mfgpde.cli.main in this process, without the ~1 s of a new Python and
    PETSc; a CompletedProcess like mfgpde()'s.  What a subprocess would show is kept: an
    uncaught exception is a traceback on stderr and status 1, a warning is lines on stderr,
    SystemExit's code is the status.  For what the command does, not for the process: PETSc
    options on the command line (petsc4py reads them once per process), signals and the exit
    of the interpreter need mfgpde().  The run sees the PETSc options database of a new
    process (empty: the package keeps defaults there, other tests' solvers leave them) and
    leaves this process as it found it: options database, signal handlers, stop watch."""
    from petsc4py import PETSc

    from mfgpde import cli
    from mfgpde.stop import SIGNALS, watch
    argv = [str(a) for a in args]
    with contextlib.suppress(SystemExit):  # a bad argument: cli.main reports it below
        if cli.split_petsc_args(argv)[1]:
            pytest.fail(f"PETSc options {cli.split_petsc_args(argv)[1]}: run them in a subprocess (mfgpde())")
    handlers = {sig: signal.getsignal(sig) for sig in SIGNALS}
    watch_state = dict(vars(watch))
    opts = PETSc.Options()
    options = opts.getAll()
    out, err = io.StringIO(), io.StringIO()
    with warnings.catch_warnings(record=True) as caught, contextlib.redirect_stdout(out), \
            contextlib.redirect_stderr(err), contextlib.chdir(cwd or os.getcwd()):
        warnings.simplefilter("always")
        try:
            for key in options:
                opts.delValue(key)
            code = cli.main(argv)
        except SystemExit as e:
            code = e.code
        except Exception:  # noqa: BLE001  what the interpreter would print and exit with
            traceback.print_exc(file=err)
            code = 1
        finally:
            for sig, handler in handlers.items():
                signal.signal(sig, handler)
            vars(watch).update(watch_state)
            for key in opts.getAll():
                opts.delValue(key)
            for key, value in options.items():
                opts.setValue(key, value)
    for w in caught:
        err.write(warnings.formatwarning(w.message, w.category, w.filename, w.lineno, w.line))
    if code is None:
        code = 0
    elif not isinstance(code, int):  # sys.exit("message"): the message on stderr, status 1
        err.write(f"{code}\n")
        code = 1
    return subprocess.CompletedProcess(["mfgpde", *argv], code, out.getvalue(), err.getvalue())


# --- checkpoints and signals ------------------------------------------------------------------

def checkpoint_iteration(ckpt):
    """The iteration (level) a checkpoint holds; 0 while there is none to read."""
    import h5py
    try:
        with h5py.File(ckpt, "r") as f:
            return int(f.attrs["iteration"])
    except (OSError, KeyError):
        return 0


def signal_at_checkpoint(study, out, k, sig=signal.SIGKILL, nproc=None):
    """Run `mfgpde run STUDY -o OUT` with a checkpoint after every iteration (level) and
    send `sig` once the checkpoint holds k of them.  (Popen after exit, checkpoint path)."""
    ckpt = out.with_name(out.stem + ".ckpt.h5")
    proc = mfgpde_background("run", *study, "--set", "output.checkpoint_every=1", "-o", out, nproc=nproc)
    deadline = time.monotonic() + 240
    while checkpoint_iteration(ckpt) < k:
        assert proc.poll() is None, "the run ended before the signal: " + proc.stderr.read()
        assert time.monotonic() < deadline
        time.sleep(0.005)
    if sig == signal.SIGKILL:
        os.killpg(proc.pid, signal.SIGKILL)
    else:
        proc.send_signal(sig)
    proc.wait(timeout=120)
    return proc, ckpt


# --- test models (tests/models_for_tests.py), registered by fixtures ---------------------------

def _registered(*classes):
    from mfgpde.models import register
    for cls in classes:
        register(cls)
    return classes[0]


@pytest.fixture
def crowd_aversion():
    """The model `test_crowd_aversion` (H = ½|p|² − m), defined outside the package."""
    from models_for_tests import CrowdAversion
    return _registered(CrowdAversion)


@pytest.fixture
def nan_model():
    """The model `test_nan`, whose Hamiltonian is NaN everywhere."""
    from models_for_tests import NaNModel
    return _registered(NaNModel)


@pytest.fixture
def asymmetric_model():
    """The model `test_asymmetric`: H = ½p² for p > 0 and 2p² for p < 0."""
    from models_for_tests import Asymmetric
    return _registered(Asymmetric)


@pytest.fixture
def poisoned_lq():
    """The models `test_poisoned_lq` and `test_inf_poisoned_lq` (the LQ model turning NaN or
    +inf after `calls` Hamiltonian evaluations), their count of evaluations reset."""
    from models_for_tests import InfPoisonedLQ, PoisonedLQ
    PoisonedLQ.seen = 0
    return _registered(PoisonedLQ, InfPoisonedLQ)


# --- the check that the MPI tests ran -----------------------------------------------------------

def pytest_addoption(parser):
    parser.addoption("--require-mpi", action="store_true",
                     help="fail the session unless MPI tests were selected and ran (make test)")


_MPI = {"selected": set(), "passed": set(), "skipped": set()}


def pytest_collection_finish(session):
    _MPI["selected"] = {item.nodeid for item in session.items if item.get_closest_marker("mpi")}


def pytest_runtest_logreport(report):
    if report.nodeid not in _MPI["selected"]:
        return
    if report.skipped:
        _MPI["skipped"].add(report.nodeid)
    elif report.when == "call" and report.passed:
        _MPI["passed"].add(report.nodeid)


def _mpi_problem(config):
    """Why the session must fail for its MPI tests ('' when it need not)."""
    if config.option.collectonly:
        return ""
    selected, passed, skipped = (_MPI[k] for k in ("selected", "passed", "skipped"))
    if not selected:
        return "no MPI test was selected (--require-mpi)" if config.getoption("require_mpi") else ""
    if skipped:
        return f"MPI tests skipped ({len(skipped)}): {', '.join(sorted(skipped)[:3])}"
    if not passed:
        return f"none of the {len(selected)} selected MPI tests passed"
    return ""


def pytest_sessionfinish(session, exitstatus):
    problem = _mpi_problem(session.config)
    if problem and session.exitstatus == pytest.ExitCode.OK:
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
    if "petsc4py.PETSc" in sys.modules:  # the defaults solvers left there: no "unused options" page at exit
        from petsc4py import PETSc
        for key in PETSc.Options().getAll():
            PETSc.Options().delValue(key)


def pytest_terminal_summary(terminalreporter, exitstatus, config):
    problem = _mpi_problem(config)
    if problem:
        terminalreporter.write_line(f"MPI check FAILED: {problem}", red=True, bold=True)
    elif _MPI["selected"] and not config.option.collectonly:
        terminalreporter.write_line(f"MPI check: {len(_MPI['passed'])} of {len(_MPI['selected'])} "
                                    "MPI tests passed, none skipped")
