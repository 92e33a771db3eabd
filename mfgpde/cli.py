"""The `mfgpde` command:

    mfgpde run RUNFILE [-o OUT.h5] [--set section.key=value ...] [--restart CKPT] [--max-time HH:MM:SS]
               [PETSc options]
    mfgpde check RUNFILE [--set section.key=value ...] [--points N]
    mfgpde models
    mfgpde info OUT.h5
    mfgpde plot OUT.h5 [--times T ...] [--outdir DIR] [--format png pdf svg] [--dpi N]
    mfgpde validate [--case NAME ...]
    mfgpde bench [--sizes small 257 ...] [--ranks 1 2] [--case NAME ...] [--couplings auto ...] [--repeat K] [--json FILE]
                 [--baseline-iterations K] [--peer PYTHON]

`check` evaluates the model at random points of its grid: every derivative the solvers
use against central differences, the upwind structure, m0, and per family the affine
drifts and minimisers or the transition rows; exit status 2 when a check fails.

Bad input (also paths that would destroy a file given, or cannot be written, and runs
whose memory estimate exceeds the limit): one line naming the problem on stderr, exit
status 2, nothing written.  An unconverged solve exits with status 3, and so does a run
that ran out of memory after its estimate had fitted (one line, nothing written; under
mpirun the job is aborted with 3); an output, checkpoint or plot that cannot be written
(a full disk, an I/O error) with 4 (one line naming the file and the cause; previous
files intact).  A run stopped by SIGTERM, SIGINT or SIGUSR1 saves its last completed
iterate and exits with 128 + the signal number (143, 130, 138); one stopped by its
wall-time budget (--max-time, [output] max_wall_time) the same way with 124.  Identical
usage under `mpirun -n P`.
"""
import argparse
import errno
import os
import pathlib
import shutil
import subprocess
import sys
import time

from .mpienv import singleton_start

EXIT_BAD_INPUT, EXIT_NOT_CONVERGED = 2, 3
EXIT_WRITE_FAILED = 4
OWN_LONG = ("output", "set", "restart", "max-time", "times", "outdir", "case", "sizes", "ranks", "json",
            "baseline-iterations", "repeat")
PETSC_O_PREFIXES = ("-options", "-on_error", "-objects", "-omp")
# PETSc error codes that options cause: not supported, wrong, out of range, incompatible,
# unknown type
PETSC_OPTION_ERRORS = (56, 62, 63, 75, 86)


def split_petsc_args(argv):
    """PETSc options (one dash and a long name such as -hjb_snes_monitor, with an optional
    value) apart from mfgpde's own arguments.  `-oFILE` is mfgpde's -o; a single-dash
    spelling of one of mfgpde's long options (-output, -set) is refused."""
    own, petsc = [], []
    i = 0
    while i < len(argv):
        arg = argv[i]
        if arg.startswith("-") and not arg.startswith("--") and len(arg) > 2 and not _is_number(arg):
            name = arg[1:].split("=")[0]
            if any(long.startswith(name) for long in OWN_LONG):
                _fail(f"{arg}: did you mean --{next(long for long in OWN_LONG if long.startswith(name))}?")
            if arg.startswith("-o") and not arg.startswith(PETSC_O_PREFIXES):
                own += ["-o", arg[2:]]
                i += 1
                continue
            petsc.append(arg)
            nxt = argv[i + 1] if i + 1 < len(argv) else None
            if nxt is not None and (not nxt.startswith("-") or _is_number(nxt)) \
                    and not nxt.endswith((".toml", ".h5")):
                petsc.append(nxt)
                i += 1
        else:
            own.append(arg)
        i += 1
    return own, petsc


def _is_number(text):
    try:
        float(text)
        return True
    except ValueError:
        return False


class _Parser(argparse.ArgumentParser):
    def error(self, message):
        _fail(f"{self.prog}: {message}")


def _fail(message, code=EXIT_BAD_INPUT):
    if _rank() == 0:
        print(f"mfgpde: error: {message}", file=sys.stderr, flush=True)
    raise SystemExit(code)


def _rank():
    try:
        from mpi4py import MPI
        return MPI.COMM_WORLD.Get_rank()
    except Exception:  # mpi4py missing: the error is reported elsewhere
        return 0


def _parser():
    from . import __version__
    p = _Parser(prog="mfgpde", description="Finite-difference solvers for mean field games.")
    p.add_argument("--version", action="version", version=f"mfgpde {__version__}")
    sub = p.add_subparsers(dest="command", required=True, parser_class=_Parser)
    r = sub.add_parser("run", help="solve the study described by a TOML run file",
                       epilog="PETSc options (-hjb_snes_monitor, -fp_ksp_type gmres, -newton_snes_monitor, "
                              "-log_view, ...) pass through to PETSc.")
    r.add_argument("runfile")
    r.add_argument("-o", "--output", help="HDF5 output file (default: [output] file, else out/<runfile>.h5)")
    r.add_argument("--set", action="append", default=[], metavar="SECTION.KEY=VALUE",
                   help="override a run-file value (read as TOML)")
    r.add_argument("--restart", metavar="CKPT", help="continue from a checkpoint of the same study")
    r.add_argument("--max-time", metavar="HH:MM:SS",
                   help="wall-time budget: then checkpoint and exit 124 (default: [output] max_wall_time)")
    c = sub.add_parser("check", help="check the model of a run file against its contract (exit 2 on a failure)")
    c.add_argument("runfile")
    c.add_argument("--set", action="append", default=[], metavar="SECTION.KEY=VALUE",
                   help="override a run-file value (read as TOML)")
    c.add_argument("--points", type=int, default=200, help="random points per check (default 200)")
    sub.add_parser("models", help="every registered model by family, with its parameters and defaults")
    i = sub.add_parser("info", help="describe an output file")
    i.add_argument("file")
    pl = sub.add_parser("plot", help="plots of an output file (PNG, PDF, SVG)")
    pl.add_argument("file")
    pl.add_argument("--times", type=float, nargs="+", help="times of the snapshots")
    pl.add_argument("--outdir", help="where to put the plots (default: beside the file)")
    pl.add_argument("--format", nargs="+", default=["png"], choices=["png", "pdf", "svg"], help="file formats")
    pl.add_argument("--dpi", type=int, default=100, help="resolution of PNG plots (default 100)")
    from .bench.run import CASES as BENCH_CASES, SIZES
    from .validation import CASES as VALIDATION_CASES
    v = sub.add_parser("validate", help="closed-form comparisons at three resolutions, with orders")
    v.add_argument("--case", action="extend", nargs="+", metavar="NAME",
                   help=f"run only these cases (repeatable): {', '.join(VALIDATION_CASES)}")
    b = sub.add_parser("bench", help="timings against scipy baselines and the one-sweep bound")
    b.add_argument("--sizes", nargs="+", default=["small"], choices=SIZES,
                   help="cells per axis (each case runs the ones it has; small: each case's first)")
    b.add_argument("--couplings", nargs="+", default=["auto"], choices=["auto", "anderson", "picard", "newton"])
    b.add_argument("--no-spsolve", action="store_true", help="leave out the spsolve Picard baseline")
    b.add_argument("--ranks", nargs="+", type=int, default=[1, 2])
    b.add_argument("--case", action="extend", nargs="+", metavar="NAME",
                   help=f"only these cases (repeatable): {', '.join(BENCH_CASES)}")
    b.add_argument("--json", help="also write the records as JSON")
    b.add_argument("--peer", metavar="PYTHON",
                   help="instead: the 1-D default study against the peer package mfgsolver, run by PYTHON")
    b.add_argument("--baseline-iterations", type=int, metavar="K",
                   help="run the spsolve baseline for K Picard iterations only (a lower bound of its time)")
    b.add_argument("--repeat", type=int, default=1, metavar="K",
                   help="run every PETSc configuration K times (in K rounds) and report the fastest")
    return p


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    own, petsc = split_petsc_args(argv)
    import petsc4py
    for flag, value in zip(petsc, petsc[1:]):
        if flag.startswith("-options_file") and not (os.path.isfile(value) and os.access(value, os.R_OK)):
            _fail(f"{flag} {value}: no readable options file there")
    try:
        with singleton_start():
            petsc4py.init(["-no_signal_handler"] + petsc)  # options only: petsc4py names the program
            from petsc4py import PETSc  # noqa: F401  MPI starts here
    except Exception as e:  # noqa: BLE001  petsc4py.PETSc.Error, whose module failed to load
        _fail(f"petsc: PETSc did not start with the options {' '.join(petsc)} (error code {getattr(e, 'ierr', '?')})")
    args = _parser().parse_args(own)
    command = {"run": _run, "check": _check, "models": _models, "info": _info, "plot": _plot,
               "validate": _validate, "bench": _bench}[args.command]
    from mpi4py import MPI
    if MPI.COMM_WORLD.Get_size() == 1:
        return command(args)
    try:
        return command(args)
    except Exception:  # an unexpected error on one rank must not leave the others waiting
        import traceback
        traceback.print_exc()
        MPI.COMM_WORLD.Abort(1)


def _stop(message, code):
    if _rank() == 0:
        print(f"mfgpde: {message}", file=sys.stderr, flush=True)
    raise SystemExit(code)


def _run(args):
    from .api import run_study
    from .config import ConfigError, load
    from .io import OutputError
    from .restart import Interrupted
    from .solvers import SolverError
    from .stop import StopRequested, parse_duration, watch
    from petsc4py import PETSc
    watch.install()
    try:
        for flag, value in (("-o", args.output), ("--restart", args.restart)):
            if value == "":
                raise ConfigError(f"{flag}: an empty file name")
        cfg = load(args.runfile, args.set)
        if args.max_time is not None:
            try:
                cfg["output"]["max_wall_time"] = parse_duration(args.max_time)
            except ValueError as e:
                raise ConfigError(f"--max-time: {e}") from None
        if cfg["output"].get("max_wall_time") is not None:  # a family without checkpoints has no budget
            watch.set_budget(parse_duration(cfg["output"]["max_wall_time"]))
        out = pathlib.Path(args.output or cfg["output"]["file"] or f"out/{pathlib.Path(args.runfile).stem}.h5")
        cfg["output"]["file"] = str(out)
        solution, written = run_study(cfg, out, restart=args.restart, runfile=args.runfile)
    except ConfigError as e:
        _fail(str(e))
    except Interrupted as e:
        _stop(str(e), e.code)
    except StopRequested as e:
        _stop(f"{e.reason}; nothing to continue from", e.code)
    except SolverError as e:
        _fail(f"solve failed: {e}; no solution written", EXIT_NOT_CONVERGED)
    except OutputError as e:
        _fail(str(e), EXIT_WRITE_FAILED)
    except MemoryError as e:
        _out_of_memory(e)
    except PETSc.Error as e:  # raised inside a solve: options PETSc accepted alone but not together
        reason = str(e).strip().splitlines()[-1].split("] ", 1)[-1]  # PETSc's own last line
        if e.ierr in PETSC_OPTION_ERRORS:
            _fail(f"petsc: PETSc refused the solver options during the solve: {reason} (error code "
                  f"{e.ierr}); no solution written")
        _fail(f"solve failed: PETSc error: {reason} (error code {e.ierr}); no solution written", EXIT_NOT_CONVERGED)
    except Exception as e:  # noqa: BLE001  an exception inside a user's model file: one line naming it
        _user_model_failed(e)
    if not solution.converged:
        _fail(f"{solution.status}; iterates and history written to {written}, not to {out}",
              EXIT_NOT_CONVERGED)
    if _rank() == 0:
        print(f"mfgpde: {solution.status}; wrote {written}")
        if cfg["output"]["plots"]:
            from .config import plot_times_within
            from .io import plot_result
            times, note = plot_times_within(cfg["output"].get("plot_times"), cfg.get("time", {}).get("T"))
            if note:
                print(f"mfgpde: note: {note}")
            try:
                with watch.immediate():
                    for png in plot_result(written, times=times, formats=cfg["output"]["plot_formats"],
                                           dpi=cfg["output"]["plot_dpi"]):
                        print(f"mfgpde: wrote {png}")
            except StopRequested as e:
                _stop(f"{e.reason} while plotting; the solution is in {written} (`mfgpde plot {written}` "
                      "makes the plots)", e.code)
            except OutputError as e:
                _fail(f"{e}; the result {written} is written and kept", EXIT_WRITE_FAILED)
    return 0


def _check(args):
    from .config import ConfigError, load
    from .models import ModelError, registry
    from .models.contract import check_model
    if args.points < 1:
        _fail(f"check --points {args.points}: must be at least 1")
    try:
        cfg = load(args.runfile, args.set)
        checks = check_model(registry.from_config(cfg), cfg, points=args.points)
    except (ConfigError, ModelError) as e:
        _fail(str(e))
    except Exception as e:  # noqa: BLE001  raised in a user's model file while it is built
        _user_model_failed(e)
    width = max(len(c.name) for c in checks)
    if _rank() == 0:
        for c in checks:
            print(f"{'ok  ' if c.ok else 'FAIL'}  {c.name:<{width}}  {c.detail}", flush=True)
    failed = [c.name for c in checks if not c.ok]
    if failed:
        _fail(f"check: model '{cfg['model']['name']}' fails {len(failed)} of {len(checks)} checks: {', '.join(failed)}")
    if _rank() == 0:
        print(f"mfgpde: model '{cfg['model']['name']}' passes all {len(checks)} checks")
    return 0


def _models(args):
    from .models import registry
    if _rank() == 0:
        for family, title in registry.FAMILY_TITLES.items():
            print(f"{family}: {title}")
            for name in registry.models(family):
                cls = registry.lookup(name)
                doc = (cls.__doc__ or sys.modules[cls.__module__].__doc__ or "").strip().splitlines()
                print(f"  {name}: {doc[0] if doc else ''}")
                print("    " + ", ".join(f"{k} = {'(required)' if v is None else v!r}"
                                         for k, v in cls.parameters.items()))
    return 0


def _user_model_failed(error):
    """One line naming the file and line of a user's model where `error` was raised, status
    2; under mpirun the rank that failed aborts the job (the others may wait for it), ranks
    other than 0 a moment later, so that a failure on every rank is told once.
    Re-raises an error that did not come from a user's file."""
    from mpi4py import MPI
    from .models.registry import user_error
    where = user_error(error)
    if where is None:
        raise error
    message = f"mfgpde: error: model source failed: {where}; no solution written"
    if MPI.COMM_WORLD.Get_size() > 1:
        if MPI.COMM_WORLD.Get_rank() > 0:
            time.sleep(2.0)
        print(message, file=sys.stderr, flush=True)
        MPI.COMM_WORLD.Abort(EXIT_BAD_INPUT)
    _fail(message.split("error: ", 1)[1])


def _out_of_memory(error):
    """One line and status 3 on the rank that failed; under mpirun the other ranks would wait
    for it in a collective call, so the job is aborted with that status."""
    from mpi4py import MPI
    from . import memory
    size = f" ({error})" if str(error) else ""
    message = (f"mfgpde: error: out of memory during the run{size}, beyond the estimate checked against "
               f"the {memory.gib(memory.limit()[0])} limit ({memory.limit()[1]}); no solution written")
    if MPI.COMM_WORLD.Get_size() > 1:
        print(message, file=sys.stderr, flush=True)
        MPI.COMM_WORLD.Abort(EXIT_NOT_CONVERGED)
    _fail(message.split("error: ", 1)[1], EXIT_NOT_CONVERGED)


def _open_checked(path):
    """An existing, undamaged mfgpde file, or one line and exit status 2."""
    p = pathlib.Path(path)
    if not p.is_file():
        _fail(f"{path}: no such file")
    import h5py

    from .io import CorruptFileError, verify
    if not h5py.is_hdf5(p):
        _fail(f"{path}: not an HDF5 file")
    try:
        verify(p)
    except CorruptFileError as e:
        _fail(str(e))
    except (KeyError, OSError) as e:
        _fail(f"{path}: not a readable mfgpde output file ({e})")
    return p


def _info(args):
    from .io import describe
    p = _open_checked(args.file)
    if _rank() == 0:
        try:
            print(describe(p))
        except (KeyError, OSError) as e:
            _fail(f"{args.file}: not an mfgpde output file ({e})")
    return 0


def _plot(args):
    import h5py

    from .io import OutputError, plot_result
    if not 10 <= args.dpi <= 2400:
        _fail(f"--dpi {args.dpi}: must lie in [10, 2400]")
    p = _open_checked(args.file)
    if _rank() == 0:
        with h5py.File(p, "r") as f:
            t = f["time/t"][()]
        bad = [v for v in args.times or () if not t[0] <= v <= t[-1]]
        if bad:
            _fail(f"--times {bad[0]}: outside the file's times [{t[0]:g}, {t[-1]:g}]")
        if args.outdir is not None:
            try:
                pathlib.Path(args.outdir).mkdir(parents=True, exist_ok=True)
                if not os.access(args.outdir, os.W_OK):
                    raise PermissionError(errno.EACCES, os.strerror(errno.EACCES))
            except OSError as e:
                _fail(f"--outdir {args.outdir}: cannot write there ({e.strerror})")
        try:
            for png in plot_result(p, outdir=args.outdir, times=args.times, formats=args.format, dpi=args.dpi):
                print(f"mfgpde: wrote {png}")
        except OutputError as e:
            _fail(str(e), EXIT_WRITE_FAILED)
        except (KeyError, OSError) as e:
            _fail(f"{args.file}: not an mfgpde output file ({e})")
    return 0


def _validate(args):
    from .validation import CASES, run_validation
    unknown = sorted(set(args.case or ()) - set(CASES))
    if unknown:
        _fail(f"validate --case {unknown[0]}: unknown case (known: {', '.join(CASES)})")
    ok = run_validation(cases=args.case)
    return 0 if ok else 1


def _bench(args):
    from .bench.run import CASES, main as bench_main
    unknown = sorted(set(args.case or ()) - set(CASES))
    if unknown:
        _fail(f"bench --case {unknown[0]}: unknown case (known: {', '.join(CASES)})")
    if args.repeat < 1:
        _fail(f"bench --repeat {args.repeat}: must be at least 1")
    if args.peer is not None:
        probe = subprocess.run([args.peer, "-c", "import mfgsolver"], capture_output=True, text=True) \
            if shutil.which(args.peer) or os.path.isfile(args.peer) else None
        if probe is None or probe.returncode != 0:
            _fail(f"bench --peer {args.peer}: not a Python that imports mfgsolver (pip install mfgsolver there)")
    return bench_main(args)


if __name__ == "__main__":
    sys.exit(main())
