"""The Python API: `solve` a study from a run file or a configuration dictionary.

    result = mfgpde.solve("runs/lq_mfg_2d.toml", {"grid.n": [64, 64], "time.nt": 40})
    result.u, result.m, result.t, result.grid, result.status, result.history
    result.save("lq.h5")

The same pipeline as `mfgpde run` (the CLI is a layer over it), serially or under
`mpirun -n P` (call it on every rank; every rank gets the result): both call `run_study`.  Errors are
exceptions: ConfigError (bad input), NotConverged (carrying the unconverged iterates as
`.result`), SolverError, OutputError.
"""
import os
import pathlib
import shutil
import sys
import tempfile
import weakref

from .config import ConfigError
from .mpienv import singleton_start


class Result:
    """A solved study: `fields` (u, m and the model's feedbacks; per population u_pop0, ...),
    `grid` (axis name -> cell centres), `t`, `status`, `converged`, `history`, `attrs`, and the
    file it was read from (`path`).  Fields are also attributes: `result.u`, `result.m`."""

    def __init__(self, data, path, tmpdir=None):
        self.fields, self.grid, self.t = data.fields, data.axes, data.t
        self.attrs, self.history, self.extra = data.attrs, data.history, data.extra
        self.status = str(self.attrs.get("status", ""))
        self.converged = bool(self.attrs.get("converged", True))
        self.config = self.attrs.get("config")
        self.path = path
        if tmpdir is not None:
            weakref.finalize(self, shutil.rmtree, tmpdir, True)

    def __getattr__(self, name):
        fields = self.__dict__.get("fields", {})
        if name in fields:
            return fields[name]
        raise AttributeError(f"no field or attribute {name!r} (fields: {', '.join(fields)})")

    def save(self, path):
        """Copy the result file (and its XDMF sidecar) to `path`, atomically: the file is
        complete or absent.  Call it on one rank (or on every rank with the same path)."""
        from .io.hdf5 import commit
        from .io.xdmf import xdmf_path
        target = pathlib.Path(path)
        files = {target: self.path.read_bytes()}
        if xdmf_path(self.path).exists():
            text = xdmf_path(self.path).read_text().replace(f"{self.path.name}:/", f"{target.name}:/")
            files[xdmf_path(target)] = text.encode()
        commit(files)
        return target


class NotConverged(RuntimeError):
    """The solve ended unconverged; `.result` holds the last iterates and the history."""

    def __init__(self, result):
        super().__init__(result.status)
        self.result = result


def _start_petsc(options):
    import petsc4py
    if "petsc4py.PETSc" not in sys.modules:
        with singleton_start():
            petsc4py.init(["-no_signal_handler", *options])
            from petsc4py import PETSc  # noqa: F401  MPI starts here
    elif options:
        from petsc4py import PETSc
        opts = PETSc.Options()
        for flag, value in zip(options, [*options[1:], None]):
            if flag.startswith("-"):
                opts.setValue(flag[1:], None if value is None or value.startswith("-") else value)


def _overrides(overrides):
    if isinstance(overrides, dict):
        import json
        return [f"{k}={json.dumps(v)}" for k, v in overrides.items()]
    return list(overrides or ())


def run_study(cfg, out, restart=None, runfile=None, verbose=True):
    """Refuse paths the run would destroy, then build, solve and write the study of a
    resolved configuration with its family's pipeline: (solution, written path)."""
    from mpi4py import MPI

    from . import families
    from .restart import checkpoint_path
    from .pipelines.common import check_paths
    checkpoint = checkpoint_path(out, cfg) if "checkpoint_file" in cfg["output"] else None
    check_paths(out, MPI.COMM_WORLD, checkpoint, runfile=runfile, restart=restart)
    return families.of(cfg).run(cfg, out, verbose=verbose, restart=restart)


def solve(run, overrides=None, *, output=None, restart=None, verbose=False, petsc=()):
    """Solve the study of `run` (a run-file path, or a dictionary of sections as a run file
    holds them) with `overrides` ({"section.key": value} or ["section.key=value", ...]).
    The result file goes to `output` (kept) or to a temporary folder (removed with the
    result).  `petsc`: PETSc options, e.g. ["-hjb_snes_monitor"].  Returns a Result."""
    _start_petsc(list(petsc))
    from mpi4py import MPI

    from . import config
    from .io import read_result
    comm = MPI.COMM_WORLD
    if isinstance(run, (str, os.PathLike)):
        cfg = config.load(run, _overrides(overrides))
        runfile = run
    elif isinstance(run, dict):
        data = {k: dict(v) if isinstance(v, dict) else v for k, v in run.items()}
        for item in _overrides(overrides):
            key, _, text = item.partition("=")
            section, _, name = key.partition(".")
            if not name:
                raise ConfigError(f"override {item}: expected section.key=value")
            data.setdefault(section, {})[name] = config.parse_value(text)
        cfg = config.validate(data, base=pathlib.Path.cwd())
        runfile = None
    else:
        raise ConfigError(f"solve: a run-file path or a configuration dictionary, got {type(run).__name__}")
    tmpdir = None
    if output is None:
        tmpdir = comm.bcast(tempfile.mkdtemp(prefix="mfgpde-") if comm.Get_rank() == 0 else None, root=0)
        output = pathlib.Path(tmpdir) / "result.h5"
    out = pathlib.Path(output)
    cfg["output"]["file"] = str(out)
    cfg["output"]["plots"] = False
    solution, written = run_study(cfg, out, restart=restart, runfile=runfile, verbose=verbose)
    data = comm.bcast(read_result(written) if comm.Get_rank() == 0 else None, root=0)
    result = Result(data, pathlib.Path(written), tmpdir if comm.Get_rank() == 0 else None)
    if not solution.converged:
        raise NotConverged(result)
    return result
