"""Memory a run will need, estimated from sizes alone before anything is allocated, against
what this process may use: the smallest of physical memory, the cgroup limit (Slurm's
`--mem`; cgroup v2 `memory.max` or v1 `memory.limit_in_bytes` of this process's cgroup
or a parent, under /sys/fs/cgroup or $MFGPDE_CGROUP_ROOT) and RLIMIT_AS (`ulimit -v`).

Estimates are peak resident bytes per rank, calibrated against measured peaks (ru_maxrss)
of every family and solver; the coefficients below count whole time paths (8 (nt+1)
bytes per cell).  The ranks on one node share its memory: their sum is compared with the
node's limits, each rank's own estimate (plus the address space it has already mapped
beyond its resident set) with RLIMIT_AS.  Python ints and floats throughout, so that a huge
input is refused at once.
"""
import math
import os
import resource

from mpi4py import MPI

from .config import ConfigError

GiB = 2 ** 30
BASE = 110 * 2 ** 20   # the interpreter with numpy, scipy, PETSc, MPI and h5py imported
PLOTS = 32 * 2 ** 20   # matplotlib, for output.plots
UNLIMITED = 2 ** 60    # cgroup v1 writes "no limit" as a number near 2^63
# paths per rank: Picard's iterates, work copies and the damping's temporaries
PICARD_PATHS = 9
# rank 0 writing: its owned u, m, then whole fields gathered (plus pickled copies in transit)
OWNED_AT_OUTPUT, GATHER_PATHS = 2, 6
# Newton, time marching: 3 nt grid matrices, the SNES vectors and FGMRES's directions
# (V and Z) over 2 nt levels, in units of one level path 8 nt cells
MARCHING_LEVELS = 100
# MUMPS on the space-time system: fill grows like a 3-D problem, c x^e bytes, x unknowns
DIRECT_FILL = (761e6, 9.6e4, 1.40)   # measured 761 MB above the baseline at 9.6e4 unknowns
FIELDSPLIT_SHARE = 0.6                # the two fields factored apart, against the whole system
NEWTON_PATHS = 4                     # Newton's iterates and the Picard hand-over
# Anderson: u, m, their previous evaluation and a sweep's temporaries; with the density
# path as unknown, x, the single-precision f, f_prev and 2·depth differences, in vectors of
# nt levels (measured at 257²×100: 530 MB for LQ, 843 MB for congestion)
ANDERSON_PATHS, ANDERSON_VECTORS = 8, 6
LEADER_FOLLOWER_PATHS = 6.0          # follower paths V1, u1, their work and gathered copies
MASTER_ROW = 160.0                    # bytes per (point, trial action, equilibrium, S^2 A) entry


def _cgroup_limit():
    """The smallest memory limit of this process's cgroup and its parents, or None."""
    root = os.environ.get("MFGPDE_CGROUP_ROOT", "/sys/fs/cgroup")
    try:
        with open("/proc/self/cgroup") as f:
            lines = [line.strip().split(":", 2) for line in f if line.count(":") >= 2]
    except OSError:
        return None
    found = []
    for _, controllers, path in lines:
        if controllers == "":
            base, name = root, "memory.max"
        elif "memory" in controllers.split(","):
            base, name = os.path.join(root, "memory"), "memory.limit_in_bytes"
        else:
            continue
        parts = [p for p in path.split("/") if p]
        for k in range(len(parts), -1, -1):
            try:
                with open(os.path.join(base, *parts[:k], name)) as f:
                    text = f.read().strip()
            except OSError:
                continue
            if text.isdigit() and int(text) < UNLIMITED:
                found.append(int(text))
    return min(found) if found else None


def limits():
    """{name: bytes} of the limits that apply: the node's ("physical memory", "cgroup
    memory limit") and the process's ("RLIMIT_AS")."""
    out = {"physical memory": os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")}
    cgroup = _cgroup_limit()
    if cgroup is not None:
        out["cgroup memory limit"] = cgroup
    soft = resource.getrlimit(resource.RLIMIT_AS)[0]
    if soft != resource.RLIM_INFINITY:
        out["RLIMIT_AS"] = soft
    return out


def limit():
    """(bytes, name) of the binding limit for one process alone."""
    name, value = min(limits().items(), key=lambda kv: kv[1])
    return value, name


def _mapped_beyond_resident():
    """Address space this process has mapped but not touched (counts against RLIMIT_AS)."""
    try:
        with open("/proc/self/status") as f:
            kb = {k: int(v.split()[0]) for k, v in (line.split(":", 1) for line in f) if k in ("VmSize", "VmRSS")}
        return 1024 * max(0, kb["VmSize"] - kb["VmRSS"])
    except (OSError, KeyError, ValueError):
        return 0


def gib(nbytes):
    return f"{nbytes / GiB:.3g} GiB" if nbytes < 1000 * GiB else f"{nbytes / GiB:.0f} GiB"


def check(need, what, key, comm=None):
    """Refuse (ConfigError on every rank) if `need` bytes on this rank, summed over the ranks
    of this node, exceed the node's limit, or this rank's exceed RLIMIT_AS.  `what` says what
    needs it ("100 steps on [200, 200] cells"); `key` names the configuration key to blame."""
    comm = comm or MPI.COMM_WORLD
    node = comm.Split_type(MPI.COMM_TYPE_SHARED)
    total, ranks = node.allreduce(need), node.Get_size()
    node.Free()
    lim = limits()
    problem = None
    rlimit = lim.pop("RLIMIT_AS", None)
    name, value = min(lim.items(), key=lambda kv: kv[1])
    if total > value:
        where = "per rank" if ranks == 1 else f"on this node ({ranks} ranks)"
        problem = (f"{key}: {what} need about {gib(total)} {where} (estimate), more than the "
                   f"{gib(value)} limit ({name})")
    elif rlimit is not None and need + _mapped_beyond_resident() > rlimit:
        problem = (f"{key}: {what} need about {gib(need)} per rank (estimate) plus "
                   f"{gib(_mapped_beyond_resident())} of mapped address space, more than the "
                   f"{gib(rlimit)} limit (RLIMIT_AS)")
    problems = [p for p in comm.allgather(problem) if p]
    if problems:
        raise ConfigError(problems[0])


def fits(need):
    """True when `need` bytes fit under every limit for one process alone (to name a key)."""
    return need <= limit()[0]


# -- the estimates (bytes on this rank) --------------------------------------------------
def owned_cells(n, ranks):
    """The largest block of cells one rank owns (an even split, rounded up)."""
    return -(-math.prod(int(k) for k in n) // ranks)


def mfg(n, nt, ranks, rank, *, populations=1, coupling="picard", linear="marching",
        feedbacks=0, closed_form=False, plots=False, density_unknown=True):
    """A plain MFG (pipelines/mfg.py): Anderson's, Picard's or Newton's solve, then rank 0's
    output (whole u, m, the feedback fields and the closed form's fields beside the owned
    paths).  density_unknown: Anderson iterates on the density path (not the mean path)."""
    cells, own = math.prod(int(k) for k in n), owned_cells(n, ranks)
    full, path, p = 8.0 * (nt + 1) * cells, 8.0 * (nt + 1) * own, populations
    output = p * (GATHER_PATHS + feedbacks + (2 + feedbacks if closed_form else 0)) * full if rank == 0 else 0.0
    if coupling == "newton":
        c, x0, e = DIRECT_FILL
        fill = c * (2.0 * nt * cells / x0) ** e / ranks
        kept = {"marching": MARCHING_LEVELS * 8.0 * nt * own, "direct": fill,
                "fieldsplit": FIELDSPLIT_SHARE * fill}[linear]
        peak = kept + NEWTON_PATHS * path + output
    elif coupling in ("anderson", "auto") and p == 1:
        vectors = ANDERSON_VECTORS * path * nt / (nt + 1) if density_unknown else 0.0
        peak = max(ANDERSON_PATHS * path + vectors, OWNED_AT_OUTPUT * path + output)
    else:
        peak = max(PICARD_PATHS * p * path, OWNED_AT_OUTPUT * p * path + output)
    if p > 1:
        peak += 8.0 * p * p  # the populations' neighbour weights, dense
    return BASE + (PLOTS if plots else 0) + peak


def leader_follower(n0, nz, nt, ranks, rank, plots=False):
    """The reduced master system: the follower's paths on the (x0, x1, z) grid dominate."""
    own = owned_cells((n0, nz, nz), ranks)
    full = 8.0 * (nt + 1) * n0 * nz * nz
    out = 2 * full if rank == 0 else 0.0
    return BASE + (PLOTS if plots else 0) + LEADER_FOLLOWER_PATHS * 8.0 * (nt + 1) * own + out


def master(points, states, actions, trials, levels, ranks, plots=False):
    """The master equation over a simplex lattice of `points`: each rank's points evaluated at
    all trial leader actions and candidate equilibria at once, then every level kept whole."""
    S, A = states, actions
    equilibria = A ** S + S * A * (A - 1) // 2 * A ** (S - 1)
    if S == 3:  # solvers/mixing.py: two indifferences at once, each family sampled on 11² points (~3 × 41)
        families = S * math.comb(A, 3) * A ** (S - 1) + math.comb(S, 2) * math.comb(A, 2) ** 2 * A ** (S - 2)
        equilibria += 3 * families
    work = MASTER_ROW * -(-points // ranks) * trials * equilibria * S * S * A
    kept = 8.0 * levels * points * (S * A + 2 * S + 3)
    lattice = 200.0 * points if S == 3 else 0.0  # built as Python tuples
    return BASE + (PLOTS if plots else 0) + work + kept + lattice


def incentive(samples, N, major, nodes=17, plots=False):
    """The numerical checks of an incentive game of N followers: 2 · samples antithetic rows
    of N + 1 types; a follower's cost with the incentive evaluates every row at every node
    at once (about six arrays of nodes × rows × N), the major-minor game's a few rows × N."""
    rows = 8.0 * 2 * samples * (N + 1)
    return BASE + (PLOTS if plots else 0) + rows * (8 if major else 6 * nodes + 4)
