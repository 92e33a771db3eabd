"""From a resolved configuration of a continuous-time leader-follower game to a solved,
compared and written study: the glue behind `mfgpde run` for the reduced master system.

Errors against the closed form (or, for a nonlinear model, differences from the LQ game
it departs from) are maxima over the window where the trajectories live, the central
fraction `grid.window` of each axis (default a third: the walls of the box, where the
state is held in, disturb a layer next to them that refinement does not shrink), taken
at the same 9 points per axis at every resolution.  The grid's gains are the least-squares fits u0 ≈ K00 x0 + K10 z and
u1 ≈ K0 x0 + K1 x1 + K2 z of the feedback fields on that window, per time level.
"""
import pathlib
import time

import numpy as np
from petsc4py import PETSc
from scipy.interpolate import RegularGridInterpolator

from .. import memory
from ..closedforms.stackelberg_lq import COEFFS, GAINS
from ..config import ConfigError
from ..grids import Grid
from ..io import on_root, write_result
from ..models import ModelError
from ..restart import FamilyCheckpointer, checkpoint_path, load_family_state
from ..solvers.leader_follower import COUNTS, LeaderFollowerSolver
from ..stop import StopRequested
from .common import build_model, check_paths, clear_after_convergence, root_attributes, split_grid

LEADER_FIELDS, FOLLOWER_FIELDS = ("V0", "u0", "zdot"), ("V1", "u1")
SAMPLES = 9  # points per axis where errors are measured


def build(cfg, comm=None, verbose=False):
    """Model, the leader's (x0, z) and the follower's (x0, x1, z) grids, the solver, and the
    reference Riccati solution (None where the model has none)."""
    g, T = cfg["grid"], cfg["time"]["T"]
    model = build_model(cfg, guard=lambda model: _check_memory(cfg, comm))
    try:
        reference = model.lq_reference(T)
    except ModelError as e:
        raise ConfigError(str(e)) from None
    (a, b), (c, d), (n0, nz) = g["x0"], g["z"], g["n"]
    leader = split_grid(lambda: Grid([a, c], [b, d], [n0, nz], names=("x0", "z"), comm=comm), g["n"], comm)
    follower = split_grid(lambda: Grid([a, c, c], [b, d, d], [n0, nz, nz], names=("x0", "x1", "z"), comm=comm),
                          g["n"], comm)
    s = cfg["solver"]
    progress = _progress(cfg["time"]["nt"]) if verbose and leader.rank == 0 else None
    solver = LeaderFollowerSolver(model, leader, follower, T, cfg["time"]["nt"], coupling=s["coupling"],
                                  tol=s["tolerance"], max_iterations=s["max_iterations"], progress=progress)
    return model, solver, reference


def _check_memory(cfg, comm):
    """Refuse grids whose follower paths cannot fit, before allocating them."""
    pcomm = comm or PETSc.COMM_WORLD
    (n0, nz), nt = cfg["grid"]["n"], cfg["time"]["nt"]
    need = memory.leader_follower(n0, nz, nt, pcomm.getSize(), pcomm.getRank(), cfg["output"]["plots"])
    key = "time.nt" if memory.fits(memory.leader_follower(n0, nz, 1, 1, 0)) else "grid.n"
    memory.check(need, f"{nt} steps on the follower's [{n0}, {nz}, {nz}] cells", key, pcomm.tompi4py())


def _progress(nt):
    every = max(1, nt // 10)

    def show(n, t, iterations, elapsed):
        if n % every == 0:
            print(f"level {nt - n:4d}/{nt}  t = {t:8.4g}  coupling iterations {iterations:3d}  {elapsed:8.2f} s",
                  flush=True)
    return show


def window(grid, fraction):
    """Owned-block mask of the central `fraction` of every axis."""
    mask = np.ones(grid.owned_shape, dtype=bool)
    for d, xd in enumerate(grid.local_coordinates()):
        centre, half = 0.5 * (grid.lower[d] + grid.upper[d]), 0.5 * fraction * (grid.upper[d] - grid.lower[d])
        mask &= np.abs(xd - centre) <= half + 1e-12
    return mask


def sample_points(grid, fraction, per_axis=SAMPLES):
    """The same points at every resolution: a lattice spanning the window, per axis."""
    return [0.5 * (a + b) + 0.5 * fraction * (b - a) * np.linspace(-1, 1, per_axis)
            for a, b in zip(grid.lower, grid.upper)]


def window_errors(solver, solution, reference, fraction):
    """Sup errors at the window's sample points (grid fields interpolated multilinearly,
    second order) at t = 0 and over all levels, per field; on every rank."""
    grids = {"0": solver.g0, "1": solver.g1}
    samples = {k: np.meshgrid(*sample_points(g, fraction), indexing="ij") for k, g in grids.items()}
    errors = {}
    for n in range(solver.leader.nt + 1):
        t = solver.leader.t[n]
        exact = {"V0": reference.V0(t, *samples["0"]), "u0": reference.u0(t, *samples["0"]),
                 "V1": reference.V1(t, *samples["1"]), "u1": reference.u1(t, *samples["1"])}
        for name, value in exact.items():
            grid = grids[name[-1]]
            full = grid.gather(getattr(solution, name)[n])
            e = None
            if grid.rank == 0:
                axes = [grid.coordinates(d) for d in range(grid.dim)]
                found = RegularGridInterpolator(axes, full)(np.stack([x.ravel() for x in samples[name[-1]]], axis=1))
                e = float(np.max(np.abs(found - value.ravel())))
            e = grid.comm.bcast(e, root=0)
            errors[f"{name}_all"] = max(errors.get(f"{name}_all", 0.0), e)
            if n == 0:
                errors[f"{name}_t0"] = e
    return errors


def fitted_gains(x0, x1, z, u0, u1, inside0, inside1):
    """Least-squares gains of the feedback fields (time first) on the window, per level."""
    X0, Z = np.meshgrid(x0, z, indexing="ij")
    Y0, Y1, Y2 = np.meshgrid(x0, x1, z, indexing="ij")
    a0 = np.stack([X0[inside0], Z[inside0], np.ones(inside0.sum())], axis=1)
    a1 = np.stack([Y0[inside1], Y1[inside1], Y2[inside1], np.ones(inside1.sum())], axis=1)
    k0 = np.linalg.lstsq(a0, u0[:, inside0].T, rcond=None)[0]
    k1 = np.linalg.lstsq(a1, u1[:, inside1].T, rcond=None)[0]
    return {"K00": k0[0], "K10": k0[1], "K0": k1[0], "K1": k1[1], "K2": k1[2]}


# A restart continues the backward recursion from the saved levels: model, grid and time
# must match (io/checkpoint.MUST_MATCH), and so must solver.coupling, which decides every
# level's equations.  solver.tolerance and max_iterations (of the Picard sweeps) and the
# PETSc options may change: the saved levels keep the accuracy they were solved to.
RESTART_MUST_MATCH = ("coupling",)


def checkpoints(cfg, out, solver, restart=None):
    """The checkpointer of the backward recursion: the completed levels n..nt (V0, V1 whole,
    the per-level counts of COUNTS as history), level n and the wall time as attributes."""
    g0, g1, nt, t = solver.g0, solver.g1, solver.leader.nt, solver.leader.t

    def save(k, n, V0, V1, counts, wall_time):
        V0, V1 = g0.gather(V0), g1.gather(V1)
        if g0.rank != 0:
            return None
        return {"axes": {name: g1.coordinates(d) for d, name in enumerate(g1.names)}, "t": t[n:],
                "fields": {"V0": V0, "V1": V1}, "field_axes": {"V0": ("x0", "z")},
                "history": {name: np.asarray(counts[name]) for name in COUNTS},
                "attrs": {"level": int(n), "wall_time": float(wall_time)}}

    noun = lambda k: f"time level {nt - k} of {nt} (t = {t[nt - k]:.6g}; {k} of {nt} steps solved)"  # noqa: E731
    return FamilyCheckpointer(g0.comm, cfg, checkpoint_path(out, cfg), "leader_follower", save, noun=noun,
                              unit="time level", restart=restart)


def load_levels(path, cfg, solver):
    """A checkpoint's completed levels as this run's owned blocks (any number of ranks)."""
    saved = load_family_state(path, cfg, "leader_follower", RESTART_MUST_MATCH)
    fields, nt = saved["fields"], solver.leader.nt
    level = nt + 1 - len(saved["t"])
    if int(saved["attrs"].get("level", -1)) != level or set(fields) != {"V0", "V1"}:
        raise ConfigError(f"restart: {path} is not a consistent leader-follower checkpoint")
    return {"level": level, "wall_time": float(saved["attrs"].get("wall_time", 0.0)),
            "V0": solver.g0.scatter(fields["V0"]), "V1": solver.g1.scatter(fields["V1"]),
            "counts": {name: saved["history"][name].astype(int) for name in COUNTS}}


def run(cfg, out, verbose=True, restart=None):
    """Solve backward, compare with the reference, write `out` (rank 0 gathers).  With
    `restart`, continue from that checkpoint; checkpoints go to <stem>.ckpt.h5 (or
    output.checkpoint_file) and are removed once `out` is written."""
    out = pathlib.Path(out)
    model, solver, reference = build(cfg, verbose=verbose)
    g0, g1 = solver.g0, solver.g1
    check_paths(out, g0.comm, checkpoint_path(out, cfg), restart=restart)
    state = load_levels(restart, cfg, solver) if restart else None
    checkpointer = checkpoints(cfg, out, solver, restart)
    start = time.perf_counter()
    try:
        solution = solver.solve(state, on_level=checkpointer)
    except StopRequested as stop:
        raise checkpointer.stopped(stop) from None
    fraction = cfg["grid"]["window"]
    errors = window_errors(solver, solution, reference, fraction) if reference is not None else {}
    kind = "error" if model.closed_form(cfg["time"]["T"]) is not None else "difference from LQ"
    if verbose and g0.rank == 0:
        print(f"leader-follower: {solution.status} in {time.perf_counter() - start:.1f} s", flush=True)
        if errors:
            print(f"leader-follower: {kind} on the window at t = 0: " +
                  ", ".join(f"{k[:-3]} {v:.3e}" for k, v in errors.items() if k.endswith("_t0")), flush=True)
    fields = {name: (g0 if name in LEADER_FIELDS else g1).gather(getattr(solution, name))
              for name in LEADER_FIELDS + FOLLOWER_FIELDS}
    inside0, inside1 = (g.gather(window(g, fraction).astype(float)) for g in (g0, g1))
    on_root(g0.comm, lambda: _write(out, cfg, model, solver, solution, fields, inside0 > 0, inside1 > 0,
                                    reference, errors, kind))
    clear_after_convergence(out, g0.comm, checkpointer)  # an unconverged level raised SolverError
    return solution, out


def _write(path, cfg, model, solver, solution, fields, inside0, inside1, reference, errors, kind):
    g1, t = solver.g1, solver.leader.t
    axes = {name: g1.coordinates(d) for d, name in enumerate(g1.names)}
    extra = {"gains": fitted_gains(axes["x0"], axes["x1"], axes["z"], fields["u0"], fields["u1"], inside0, inside1)}
    if reference is not None:
        rows = reference.table(t)
        extra["riccati"] = {"t": t, **{k: np.array([r[k] for r in rows]) for k in GAINS + COEFFS}}
    attrs = root_attributes(model, cfg, solution.status, solution.converged, solution.stats["sweeps"],
                            kind="leader_follower", reference=kind if reference is not None else "none",
                            **solution.stats, **{f"{kind.split()[0]}_{k}": v for k, v in errors.items()})
    write_result(path, axes=axes, t=t, fields=fields, attrs=attrs, extra=extra,
                 field_axes={name: ("x0", "z") for name in LEADER_FIELDS})
