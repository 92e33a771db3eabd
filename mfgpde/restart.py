"""Checkpoints during a run, and restarts from them.  SIGTERM (what a scheduler sends
before the kill) makes the run write a last checkpoint at the end of the current
iteration and stop with exit status 143."""
import signal
import time

from mpi4py import MPI

from . import __version__
from .config import ConfigError
from .io import on_root
from .io.checkpoint import CheckpointError, read_checkpoint, write_checkpoint

EXIT_INTERRUPTED = 143


class Interrupted(Exception):
    def __init__(self, path, iteration):
        super().__init__(f"interrupted by SIGTERM after iteration {iteration}; checkpoint written to "
                         f"{path}; continue with --restart {path}")


def checkpoint_path(out, cfg):
    return out.with_name(out.stem + ".ckpt" + out.suffix) if cfg["output"]["checkpoint_file"] is None \
        else type(out)(cfg["output"]["checkpoint_file"])


class Checkpointer:
    """on_state callback of the coupling: writes every `checkpoint_every` iterations, every
    `checkpoint_seconds`, and on SIGTERM (then raises Interrupted).  Collective."""

    def __init__(self, problem, cfg, path, history):
        self.problem, self.cfg, self.path, self.history = problem, cfg, path, history
        self.every, self.seconds = cfg["output"]["checkpoint_every"], cfg["output"]["checkpoint_seconds"]
        self.last, self.terminated = time.monotonic(), False
        signal.signal(signal.SIGTERM, self._on_sigterm)

    def _on_sigterm(self, signum, frame):
        self.terminated = True

    def __call__(self, k, u, m):
        comm = self.problem.grid.comm
        timed = bool(self.seconds) and time.monotonic() - self.last >= self.seconds
        stop, timed = comm.allreduce(self.terminated, op=MPI.LOR), comm.allreduce(timed, op=MPI.LOR)
        if stop or timed or (self.every and k % self.every == 0):
            self.write(k, u, m)
        if stop:
            raise Interrupted(self.path, k)

    def write(self, k, u, m):
        grid, pb = self.problem.grid, self.problem
        full_u, full_m = grid.gather(u), grid.gather(m)
        def save():
            axes = {name: grid.coordinates(d) for d, name in enumerate(grid.names)}
            write_checkpoint(self.path, axes=axes, t=pb.t, u=full_u, m=full_m, iteration=k,
                             history=self.history.arrays(), config=self.cfg, version=__version__)
        on_root(grid.comm, save)  # a write error stops every rank
        self.last = time.monotonic()

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
