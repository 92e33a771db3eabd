"""What the three pipelines share: the model built, guarded and checked; the grid split
over the ranks; paths refused before any work; the written file (the output, or its
unconverged sibling) and what goes once a run has converged; the root attributes."""
import os
import pathlib
import resource
import tempfile

from mpi4py import MPI
from petsc4py import PETSc

from .. import __version__
from ..config import ConfigError
from ..io import remove_stale_temporaries, temporary_path
from ..io.xdmf import xdmf_path
from ..models import ModelError, create, parameters
from ..models.contract import check_cheaply


def apply_petsc_options(table):
    """[petsc] entries into the options database; the command line wins over the run file.
    `true` is a flag, `false` leaves the option unset.  Where the user gave any option,
    PETSc lists unused (misspelled) ones at exit."""
    opts = PETSc.Options()
    given = set(opts.getAll()) - {"no_signal_handler"}
    if (table or given) and not opts.hasName("options_left"):
        opts.setValue("options_left", None)
    for key, value in table.items():
        name = key.lstrip("-")
        if opts.hasName(name) or value is False:
            continue
        opts.setValue(name, None if value is True else str(value))


def build_model(cfg, dim=None, guard=None, prepare=None):
    """The configured model, created (with `dim` axes for an MFG model), `prepare(model)`
    (a horizon, say), the memory `guard(model)` and the cheap contract checks, in that
    order; a model's refusal is a ConfigError."""
    try:
        model = create(cfg["model"]["name"], dim, **parameters(cfg["model"]))
        if prepare:
            prepare(model)
    except ModelError as e:
        raise ConfigError(str(e)) from None
    if guard:
        guard(model)  # before the contract checks, which evaluate the model on its grid
    try:
        check_cheaply(model, cfg)
    except ModelError as e:
        raise ConfigError(str(e)) from None
    return model


def split_grid(make, n, comm=None):
    """make(), a PETSc-distributed grid; n cells the ranks cannot share are a ConfigError."""
    try:
        return make()
    except PETSc.Error:
        size = (comm or PETSc.COMM_WORLD).getSize()
        raise ConfigError(f"grid.n: {n} cells cannot be split over {size} MPI ranks") from None


def unconverged_path(path):
    """Where an unconverged solve is written: <stem>.unconverged.h5 beside the output."""
    path = pathlib.Path(path)
    return path.with_name(path.stem + ".unconverged" + path.suffix)


def output_path(out, converged):
    """The file a solve is written to: the output if it converged, its unconverged sibling
    otherwise."""
    return pathlib.Path(out) if converged else unconverged_path(out)


def clear_after_convergence(out, comm, checkpointer):
    """After a converged solve is on disk: its stale unconverged sibling (and sidecar) goes,
    a failure beside a good result misleading, and so does the checkpoint."""
    if comm.Get_rank() == 0:
        for stale in (unconverged_path(out), xdmf_path(unconverged_path(out))):
            stale.unlink(missing_ok=True)
    checkpointer.remove()


def root_attributes(model, cfg, status, converged, iterations, **more):
    """The root attributes every family's output carries."""
    return {"model": model.name, "config": cfg, "version": __version__, "status": status,
            "converged": int(converged), "iterations": iterations, "mpi_ranks": MPI.COMM_WORLD.Get_size(), **more}


def peak_memory_mb(comm):
    """The largest peak resident memory of any rank, in MB."""
    return comm.allreduce(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, op=MPI.MAX)


def check_paths(out, comm, checkpoint=None, runfile=None, restart=None):
    """Refuse, before any work, paths this run would destroy or cannot write: the output,
    its unconverged sibling, their XDMF sidecars and the checkpoint must be distinct files
    (compared as files: symlinks, relative paths, hard links), none of them the run file or
    the restart file (the checkpoint may be the restart file), each a writable regular
    file.  Removes the temporaries of these files that dead processes left."""
    out = pathlib.Path(out)
    writes = [("output.file", "the output", out), ("output.file", "the unconverged output", unconverged_path(out)),
              ("output.file", "the output's XDMF sidecar", xdmf_path(out)),
              ("output.file", "the unconverged output's XDMF sidecar", xdmf_path(unconverged_path(out)))]
    writes += [("output.checkpoint_file", "the checkpoint", pathlib.Path(checkpoint))] if checkpoint else []
    reads = [("", "the run file", runfile)] * bool(runfile) + [("", "the --restart file", restart)] * bool(restart)
    problem = None
    if comm.Get_rank() == 0:
        problem = next((f"{key}: {p} is the same file as {what} {q}"
                        for i, (key, _, p) in enumerate(writes) for _, what, q in writes[:i] + reads
                        if not (key == "output.checkpoint_file" and q == restart) and _same(p, q)), None)
    problem = comm.bcast(problem, root=0)
    if problem:
        raise ConfigError(problem)
    check_writable(out, comm)
    if checkpoint:
        check_writable(checkpoint, comm, "output.checkpoint_file")
    if comm.Get_rank() == 0:
        for *_, p in writes:
            remove_stale_temporaries(p)


def _same(a, b):
    """Whether two paths name the same file (existing or to be created)."""
    a, b = pathlib.Path(a), pathlib.Path(b)
    try:
        if a.exists() and b.exists():
            return os.path.samefile(a, b)
        return a.resolve() == b.resolve()
    except OSError:  # a name too long to look up (check_writable reports it)
        return os.path.abspath(a) == os.path.abspath(b)


def check_writable(path, comm, key="output.file"):
    """Refuse a path that cannot be written as a regular file, before any work is done."""
    path = pathlib.Path(path)
    problem = None
    if comm.Get_rank() == 0:
        existing = next(p for p in (path.parent, *path.parent.parents) if p.exists())
        if path.is_dir():
            problem = f"{key}: {path} is a directory"
        elif path.exists() and not path.is_file():
            problem = f"{key}: {path} is not a regular file (a device, FIFO or socket); it is not replaced"
        elif not existing.is_dir():
            problem = f"{key}: {existing} is not a directory"
        elif not os.access(existing, os.W_OK):
            problem = f"{key}: cannot write into {existing}"
        else:
            problem = _try_create(path, key) if existing == path.parent else _try_mkdir(existing, key)
    problem = comm.bcast(problem, root=0)
    if problem:
        raise ConfigError(problem)


def _try_create(path, key):
    """Create and remove the temporary file the writer will use; a message if that fails."""
    probe = temporary_path(path)
    try:
        with open(probe, "x"):
            pass
        os.remove(probe)
    except OSError as e:
        return f"{key}: cannot create files like {probe.name} in {path.parent} ({e.strerror})"
    return None


def _try_mkdir(parent, key):
    """Create and remove a directory where the output's missing folders will go."""
    try:
        os.rmdir(tempfile.mkdtemp(dir=parent))
    except OSError as e:
        return f"{key}: cannot create folders in {parent} ({e.strerror})"
    return None
