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


class Checkpointer:
    """on_state callback of the coupling: writes every `checkpoint_every` iterations and
    every `checkpoint_seconds`.  Collective."""

    def __init__(self, problem, cfg, path, history, restart=None):
        self.problem, self.cfg, self.path, self.history, self.restart = problem, cfg, path, history, restart
        self.every, self.seconds = cfg["output"]["checkpoint_every"], cfg["output"]["checkpoint_seconds"]
        self.last, self.written = time.monotonic(), None

    def __call__(self, k, u, m):
        comm = self.problem.grid.comm
        timed = comm.allreduce(bool(self.seconds) and time.monotonic() - self.last >= self.seconds, op=MPI.LOR)
        if timed or (self.every and k % self.every == 0):
            self.write(k, u, m)

    def write(self, k, u, m):
        grid, pb = self.problem.grid, self.problem
        full_u, full_m = grid.gather(u), grid.gather(m)
        def save():
            axes = {name: grid.coordinates(d) for d, name in enumerate(grid.names)}
            write_checkpoint(self.path, axes=axes, t=pb.t, u=full_u, m=full_m, iteration=k,
                             history=self.history.arrays(), config=self.cfg, version=__version__)
        on_root(grid.comm, save)  # a write error stops every rank
        self.last, self.written = time.monotonic(), k

    def stopped(self, stop):
        """Save the last completed iterate of an interrupted solve; the Interrupted to raise."""
        if stop.state is not None:
            k = stop.state[0]
            if self.written != k:
                self.write(*stop.state)
            where = f"after iteration {k}; checkpoint written to {self.path}; continue with --restart {self.path}"
        elif self.restart is not None:
            where = f"before an iteration completed; {self.restart} is still the state to continue from"
        else:
            where = "before the first iteration completed; nothing to continue from"
        return Interrupted(f"{stop.reason} {where}", stop.code)

    def remove(self):
        if self.problem.grid.rank == 0:
            self.path.unlink(missing_ok=True)


def load_state(path, cfg, problem):
    """The saved state as owned blocks of this run's grid (any number of ranks)."""
    try:
        saved = read_checkpoint(path, cfg)
    except CheckpointError as e:
        raise ConfigError(str(e)) from None
    grid = problem.grid
    return {"iteration": saved["iteration"], "history": saved["history"],
            "u": grid.scatter(saved["u"]), "m": grid.scatter(saved["m"])}
