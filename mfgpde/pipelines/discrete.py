"""From a resolved configuration of a discrete-time Stackelberg game to a solved, checked
and written study: the glue behind `mfgpde run` for the master equation."""
import pathlib
import time
from dataclasses import dataclass

import numpy as np
from mpi4py import MPI

from .. import memory, schema
from ..config import ConfigError
from ..grids import SimplexGrid
from ..io import on_root, write_result
from ..restart import FamilyCheckpointer, checkpoint_path, load_family_state
from ..solvers.commitment import commitment_gain
from ..solvers.master import MasterSolver, Stage, follower_exploitability, leader_gain
from ..stop import StopRequested
from .common import build_model, check_paths, clear_after_convergence, output_path, root_attributes

STAGE_FIELDS = {"leader": ("point",), "policy": ("point", "state", "action"), "z_next": ("point", "state"),
                "Vf": ("point", "state"), "Vl": ("point",), "equilibria": ("point",), "low": ("point",),
                "high": ("point",)}
# A restart continues the recursion (or the iteration of the master map) from the saved
# levels: model, grid and time must match (io/checkpoint.MUST_MATCH), and so must the
# leader's selection and candidate actions, which decide every level.  solver.tolerance and
# max_iterations (of the infinite horizon) may change: the iteration goes on to the new ones.
RESTART_MUST_MATCH = ("leader", "epsilon", "leader_points")


@dataclass
class MasterResult:
    converged: bool
    status: str
    path: dict
    checks: dict


def build(cfg):
    """Model, simplex lattice and master solver of a discrete game's study."""
    def guard(model):
        z1 = cfg["time"]["z1"]
        if len(z1) != len(model.states):
            raise ConfigError(f"time.z1: one share per follower state {model.states}, got {z1!r}")
        _check_memory(cfg, model)
    model = build_model(cfg, guard=guard)
    grid = SimplexGrid(len(model.states), cfg["grid"]["n"])
    s = cfg["solver"]
    try:
        solver = MasterSolver(model, grid, selection=s["leader"], leader_points=s["leader_points"],
                              epsilon=float(s["epsilon"]))
    except ValueError as e:
        raise ConfigError(str(e)) from None
    return model, grid, solver


def _check_memory(cfg, model):
    """Refuse a lattice whose stage evaluations cannot fit, before building it."""
    S, A, n, s = len(model.states), len(model.actions), cfg["grid"]["n"], cfg["solver"]
    points = (n + 1) if S == 2 else (n + 1) * (n + 2) // 2
    actions = model.leader_actions()
    trials = s["leader_points"] if isinstance(actions, tuple) else len(actions)
    T = cfg["time"]["T"]
    levels = 1 if T == "infinite" else T
    comm = MPI.COMM_WORLD
    need = memory.master(points, S, A, trials, levels, comm.Get_size(), cfg["output"]["plots"])
    default = schema.defaults("discrete")["solver"]["leader_points"]
    key = "solver.leader_points" if memory.fits(memory.master(points, S, A, min(trials, default), levels, 1)) \
        else "grid.n"
    memory.check(need, f"{points} simplex points with {trials} leader actions", key, comm)


def checkpoints(cfg, out, model, grid, restart=None):
    """The checkpointer of the recursion: the levels computed so far (finite horizon, times
    T − k + 1..T) or the current iterate of the master map and its sup-changes (infinite),
    every Stage field whole over (point, state, action)."""
    T, S, A = cfg["time"]["T"], len(model.states), len(model.actions)
    axes = {"point": np.arange(grid.size, dtype=float), "state": np.arange(S, dtype=float),
            "action": np.arange(A, dtype=float)}

    def save(k, *state):
        if grid.comm.Get_rank() != 0:
            return None
        if T == "infinite":  # state: the iterate (a Stage) and the sup-changes so far
            stages, t, history = [state[0]], np.array([float(k)]), {"value_change": state[1]}
        else:  # state: the levels in the order computed
            stages, t, history = state[0][::-1], np.arange(T - k + 1.0, T + 1.0), None
        fields = {name: np.array([getattr(st, name) for st in stages]) for name in STAGE_FIELDS}
        return {"axes": axes, "t": t, "fields": fields, "field_axes": STAGE_FIELDS, "history": history}

    if T == "infinite":
        noun, unit = (lambda k: f"iteration {k} of the master map"), "iteration"
    else:
        noun, unit = (lambda k: f"level t = {T - k + 1} ({k} of {T} levels solved)"), "level"
    return FamilyCheckpointer(grid.comm, cfg, checkpoint_path(out, cfg), "master", save, noun=noun, unit=unit,
                              restart=restart)


def load_levels(path, cfg):
    """A checkpoint's levels, in the order of computation (finite horizon), or its iterate
    and history (infinite): the arguments that continue MasterSolver.finite or stationary."""
    saved = load_family_state(path, cfg, "master", RESTART_MUST_MATCH)
    fields = saved["fields"]
    if set(fields) != set(STAGE_FIELDS):
        raise ConfigError(f"restart: {path} is not a consistent master-equation checkpoint")
    stages = [Stage(*(fields[name][j] for name in STAGE_FIELDS)) for j in range(len(saved["t"]))]
    if cfg["time"]["T"] == "infinite":
        history = saved["history"].get("value_change", np.array([]))
        if len(stages) != 1 or len(history) != saved["iteration"]:
            raise ConfigError(f"restart: {path} is not a consistent master-equation checkpoint")
        return {"start": (stages[0], history)}
    if len(stages) != saved["iteration"]:
        raise ConfigError(f"restart: {path} is not a consistent master-equation checkpoint")
    return {"done": stages[::-1]}


def run(cfg, out, verbose=True, restart=None):
    """Backward recursion (or the stationary master value), the forward path from z1, the
    equilibrium checks; written to `out` (or <stem>.unconverged.h5 if not converged).  With
    `restart`, continue from that checkpoint; checkpoints go to <stem>.ckpt.h5 (or
    output.checkpoint_file), are removed once `out` is written and kept (the last iterate
    written where checkpoints are on) if the master map did not converge."""
    out = pathlib.Path(out)
    model, grid, solver = build(cfg)
    check_paths(out, grid.comm, checkpoint_path(out, cfg), restart=restart)
    state = load_levels(restart, cfg) if restart else {}
    checkpointer = checkpoints(cfg, out, model, grid, restart)
    try:
        solution, final = _solve(cfg, out, model, grid, solver, state, checkpointer, verbose)
    except StopRequested as stop:
        raise checkpointer.stopped(stop) from None
    target = output_path(out, solution.converged)
    if solution.converged:
        clear_after_convergence(out, grid.comm, checkpointer)
    elif checkpointer.enabled:
        if checkpointer.written != final[0]:
            checkpointer.write(*final)
        if verbose and grid.comm.Get_rank() == 0:
            print(f"master: the last iterate is in {checkpointer.path}; continue with --restart {checkpointer.path} "
                  "and a larger solver.max_iterations", flush=True)
    return solution, target


PROGRESS_SECONDS = 1.0  # at most one progress line per this many seconds


def _progress(checkpointer, T, start):
    """The checkpointer, printing a progress line at most every PROGRESS_SECONDS."""
    last = [start]

    def step(k, *state):
        now = time.perf_counter()
        if now - last[0] >= PROGRESS_SECONDS:
            last[0] = now
            what = (f"iteration {k}  sup change {state[1][-1]:.3e}" if T == "infinite" else
                    f"level t = {T - k + 1} ({k} of {T})")
            print(f"master {what}  {now - start:8.2f} s", flush=True)
        return checkpointer(k, *state)
    return step


def _solve(cfg, out, model, grid, solver, state, checkpointer, verbose):
    """The solve, the checks and the written result; (MasterResult, the final state)."""
    T, s = cfg["time"]["T"], cfg["solver"]
    start = time.perf_counter()
    zero = (np.zeros((grid.size, len(model.states))), np.zeros(grid.size))
    step = _progress(checkpointer, T, start) if verbose and grid.comm.Get_rank() == 0 else checkpointer
    if T == "infinite":
        stage, history, converged = solver.stationary(s["tolerance"], s["max_iterations"], start=state.get("start"),
                                                      on_iteration=step)
        final = (len(history), stage, history)
        levels, values = [stage], (lambda t: (stage.Vf, stage.Vl))
        steps, times = cfg["time"]["steps"], np.array([0.0])
        status = (f"stationary master value in {len(history)} iterations (sup change {history[-1]:.1e})" if converged
                  else f"not converged: {len(history)} iterations of the master map, sup change "
                       f"{history[-1]:.1e} > tol {s['tolerance']:.0e}")
        terminal = lambda z: grid.interpolate(stage.Vf, z[None])[0]  # noqa: E731
    else:
        levels = solver.finite(T, done=state.get("done", ()), on_level=step)
        final = (T, levels[::-1])
        values = lambda t: (levels[t + 1].Vf, levels[t + 1].Vl) if t + 1 < T else zero  # noqa: E731
        history, converged, steps = np.array([]), True, T
        times = np.arange(1.0, T + 1.0)
        status = f"solved {T} levels of the master equation"
        terminal = lambda z: np.zeros(len(model.states))  # noqa: E731
    try:  # the levels are complete: a stop in the checks saves them all
        path = solver.forward(cfg["time"]["z1"], values, steps)
        checks = {"follower_exploitability": follower_exploitability(model, path, terminal(path["z"][-1])),
                  "leader_gain": leader_gain(solver, path, values)}
        k = s["commitment_steps"]
        path["commitment"] = (commitment_gain(model, grid, s["leader"], solver.candidates, path, values, k,
                                              horizon=None if T == "infinite" else T)
                              if k and not s["epsilon"] else np.full(steps, np.nan))
        checks.update(commitment_steps=k, leader_commitment_gain=float(np.max(path["commitment"])),
                      wall_time=time.perf_counter() - start)
    except StopRequested as stop:
        stop.state = final
        raise
    if verbose and grid.comm.Get_rank() == 0:
        print(f"master: {status}; followers' best deviation gains {checks['follower_exploitability']:.2e}, "
              f"the leader's best one-step deviation {checks['leader_gain']:.2e}, "
              f"its best {checks['commitment_steps']}-step commitment {checks['leader_commitment_gain']:.2e}",
              flush=True)
    target = output_path(out, converged)
    on_root(grid.comm, lambda: _write(target, cfg, model, grid, levels, times, history, path, checks, status,
                                      converged))
    return MasterResult(converged, status, path, checks), final


def _write(path, cfg, model, grid, levels, times, history, traj, checks, status, converged):
    """Fields per level (time first, then the simplex points), the trajectory and checks."""
    stack = lambda name: np.array([getattr(lv, name) for lv in levels])  # noqa: E731
    fields = {"V_leader": stack("Vl"), "leader_action": stack("leader"), "leader_action_low": stack("low"),
              "leader_action_high": stack("high"), "equilibria": stack("equilibria")}
    Vf, policy = stack("Vf"), stack("policy")
    for i, x in enumerate(model.states):
        fields[f"V_{x}"] = Vf[:, :, i]
        for j, a in enumerate(model.actions):
            fields[f"policy_{a}_given_{x}"] = policy[:, :, i, j]
    axes = ({f"z_{model.states[1]}": grid.points[:, 1]} if grid.states == 2
            else {"point": np.arange(grid.size, dtype=float)})
    attrs = root_attributes(model, cfg, status, converged, len(history) or len(levels), kind="stackelberg",
                            states=list(model.states), actions=list(model.actions),
                            leader_action=model.leader_action, **checks)
    extra = {"simplex": {"points": grid.points},
             "trajectory": {"z": traj["z"], "leader_action": traj["leader"], "leader_action_low": traj["low"],
                            "leader_action_high": traj["high"], "policy": traj["policy"],
                            "leader_commitment_gain": traj["commitment"]}}
    write_result(path, axes=axes, t=times, fields=fields, attrs=attrs,
                 history={"value_change": history} if len(history) else None, extra=extra)
