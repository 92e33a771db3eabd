"""Checkpoints during a run, and restarts from them.  A stop request (a signal or the
wall-time budget, see stop.py) arrives as StopRequested carrying the last completed
iterate; `Checkpointer.stopped` saves it and says how to go on."""
import time

from mpi4py import MPI

from . import __version__
from .config import ConfigError
from .io import on_root
from .io.checkpoint import CheckpointError, read_checkpoint, write_checkpoint


class Interrupted(Exception):
    """The run stopped on request; `code` is the exit status, the message says what was
    saved and how to continue."""

    def __init__(self, message, code):
        super().__init__(message)
        self.code = code


def checkpoint_path(out, cfg):
    return out.with_name(out.stem + ".ckpt" + out.suffix) if cfg["output"]["checkpoint_file"] is None \
        else type(out)(cfg["output"]["checkpoint_file"])


class Periodic:
    """Writes every `checkpoint_every` iterations (or levels) and every `checkpoint_seconds`;
    `write(k, *state)` is the family's.  Collective over `comm`.  `noun(k)` names what k
    counts in the messages, `unit` what it counts."""
    unit = "iteration"

    def __init__(self, comm, cfg, path, restart=None):
        self.comm, self.cfg, self.path, self.restart = comm, cfg, path, restart
        self.every, self.seconds = cfg["output"]["checkpoint_every"], cfg["output"]["checkpoint_seconds"]
        self.last, self.written = time.monotonic(), None

    @property
    def enabled(self):
        return bool(self.every or self.seconds)

    def __call__(self, k, *state):
        timed = self.comm.allreduce(bool(self.seconds) and time.monotonic() - self.last >= self.seconds,
                                    op=MPI.LOR)
        if timed or (self.every and k % self.every == 0):
            self.write(k, *state)

    def write(self, k, *state):
        raise NotImplementedError

    def noun(self, k):
        return f"iteration {k}"

    def stopped(self, stop):
        """Save the last completed iterate of an interrupted solve; the Interrupted to raise."""
        if stop.state is not None:
            k = stop.state[0]
            if self.written != k:
                self.write(*stop.state)
            where = f"after {self.noun(k)}; checkpoint written to {self.path}; continue with --restart {self.path}"
        elif self.restart is not None:
            where = f"before a further {self.unit} completed; {self.restart} is still the state to continue from"
        else:
            where = f"before the first {self.unit} completed; nothing to continue from"
        return Interrupted(f"{stop.reason} {where}", stop.code)

    def remove(self):
        if self.comm.Get_rank() == 0:
            self.path.unlink(missing_ok=True)


class Checkpointer(Periodic):
    """on_state callback of the MFG coupling: the iterate (k, u, m) and the history."""

    def __init__(self, problem, cfg, path, history, restart=None):
        super().__init__(problem.grid.comm, cfg, path, restart)
        self.problem, self.history = problem, history

    def write(self, k, u, m):
        grid, pb = self.problem.grid, self.problem
        full_u, full_m = grid.gather(u), grid.gather(m)

        def save():
            axes = {name: grid.coordinates(d) for d, name in enumerate(grid.names)}
            write_checkpoint(self.path, axes=axes, t=pb.t, u=full_u, m=full_m, iteration=k,
                             history=self.history.arrays(), config=self.cfg, version=__version__)
        on_root(grid.comm, save)  # a write error stops every rank
        self.last, self.written = time.monotonic(), k


class FamilyCheckpointer(Periodic):
    """The same for the leader-follower and master-equation runs: `save(k, *state)` returns
    the checkpoint's content (write_checkpoint's keywords: axes, t, fields, field_axes,
    history, attrs) on rank 0 and None elsewhere, gathering collectively."""

    def __init__(self, comm, cfg, path, family, save, noun=None, unit="iteration", restart=None):
        super().__init__(comm, cfg, path, restart)
        self.family, self.save, self._noun, self.unit = family, save, noun, unit

    def noun(self, k):
        return self._noun(k) if self._noun else super().noun(k)

    def write(self, k, *state):
        content = self.save(k, *state)
        on_root(self.comm, lambda: write_checkpoint(self.path, iteration=k, config=self.cfg, version=__version__,
                                                    family=self.family, **content))
        self.last, self.written = time.monotonic(), k


def load_state(path, cfg, problem):
    """The saved state as owned blocks of this run's grid (any number of ranks)."""
    try:
        saved = read_checkpoint(path, cfg)
    except CheckpointError as e:
        raise ConfigError(str(e)) from None
    grid = problem.grid
    return {"iteration": saved["iteration"], "history": saved["history"],
            "u": grid.scatter(saved["u"]), "m": grid.scatter(saved["m"])}


def load_family_state(path, cfg, family, solver_keys=()):
    """The saved content of a leader-follower or master-equation checkpoint compatible with
    `cfg` (read_checkpoint's checks, and the [solver] keys the continuation depends on)."""
    try:
        saved = read_checkpoint(path, cfg, family=family)
    except CheckpointError as e:
        raise ConfigError(str(e)) from None
    for key in solver_keys:
        a, b = saved["config"]["solver"].get(key), cfg["solver"].get(key)
        if a != b:
            raise ConfigError(f"restart: solver.{key} differs: checkpoint {a!r}, this run {b!r} "
                              f"(the levels saved depend on it)")
    return saved
