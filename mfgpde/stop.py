"""Stopping a run on request without losing finished work.

SIGTERM, SIGINT and SIGUSR1 (what schedulers send before the kill, Ctrl-C, and what
`sbatch --signal=USR1@120` sends) and the wall-time budget only set a request.  Solvers
`poll` between time levels, collectively, so every rank stops at the same place within
one level solve; `poll` then raises StopRequested, and the coupling attaches the last
completed iterate to it for the run to checkpoint.  Exit status: 128 + the signal number
(143 SIGTERM, 130 SIGINT, 138 SIGUSR1), EXIT_BUDGET for the wall-time budget.
"""
import contextlib
import re
import signal
import time

SIGNALS = (signal.SIGTERM, signal.SIGINT, signal.SIGUSR1)
EXIT_BUDGET = 124  # as timeout(1)


class StopRequested(Exception):
    """A signal or the wall-time budget asked the run to stop.  `state` is the last
    completed iterate (iteration, u, m), set by the coupling that was interrupted."""

    def __init__(self, reason, code):
        super().__init__(reason)
        self.reason, self.code, self.state = reason, code, None


class _Watch:
    def __init__(self):
        self.signum, self.deadline, self.budget, self.start = None, None, None, time.monotonic()
        self.at_once = False

    def install(self):
        """Handle SIGNALS from now on; the wall-time budget counts from now."""
        self.signum, self.deadline, self.start = None, None, time.monotonic()
        for sig in SIGNALS:
            signal.signal(sig, self._handler)

    def set_budget(self, seconds):
        self.budget, self.deadline = seconds, self.start + seconds

    def _handler(self, signum, frame):
        if self.signum is None:
            self.signum = signum
        if self.at_once:
            self.poll()

    @contextlib.contextmanager
    def immediate(self):
        """Inside, a signal raises StopRequested at once, wherever the main thread is: for
        work on one rank whose files are written atomically (closed forms, XDMF, plots)."""
        self.poll()
        self.at_once = True
        try:
            yield
        finally:
            self.at_once = False

    def _local(self):
        """0: go on; otherwise the exit code this rank asks for."""
        if self.signum is not None:
            return 128 + self.signum
        if self.deadline is not None and time.monotonic() >= self.deadline:
            return EXIT_BUDGET
        return 0

    def requested(self, comm=None):
        """The exit code some rank of `comm` asks for (0: none); collective over `comm`,
        local to this process without one."""
        code = self._local()
        if comm is not None and comm.Get_size() > 1:
            from mpi4py import MPI
            code = comm.allreduce(code, op=MPI.MAX)
        return code

    def poll(self, comm=None):
        """Raise StopRequested if a stop was asked for (see `requested`)."""
        code = self.requested(comm)
        if code:
            raise StopRequested(describe(code, self.budget), code)


def describe(code, budget=None):
    if code == EXIT_BUDGET:
        return f"the wall-time budget of {format_duration(budget)} was reached"
    return f"stopped by {signal.Signals(code - 128).name}"


watch = _Watch()
poll = watch.poll


def parse_duration(text):
    """Seconds from 'HH:MM:SS', 'MM:SS', 'D-HH:MM:SS' (Slurm's forms) or a number of
    seconds; ValueError otherwise."""
    if isinstance(text, (int, float)) and not isinstance(text, bool):
        seconds = float(text)
    else:
        match = re.fullmatch(r"(?:(\d+)-)?(?:(\d+):)?(\d+):(\d+(?:\.\d*)?)|(\d+(?:\.\d*)?)", str(text).strip())
        if not match:
            raise ValueError(f"{text!r} is not a duration (HH:MM:SS or seconds)")
        days, hours, minutes, secs, plain = match.groups()
        seconds = float(plain) if plain is not None else \
            ((int(days or 0) * 24 + int(hours or 0)) * 60 + int(minutes)) * 60 + float(secs)
    if not 0 < seconds < float("inf"):
        raise ValueError(f"{text!r}: a duration must be positive and finite")
    return seconds


def format_duration(seconds):
    s = int(round(seconds))
    return f"{s // 3600:02d}:{s // 60 % 60:02d}:{s % 60:02d}"
