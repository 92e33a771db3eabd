"""From a resolved configuration of a discrete-time Stackelberg game whose leader has a
private type to a solved, checked and written study: the master equation over (π, z)
(solvers/private_type.py), the two types' equilibrium paths from (prior, z1), and the
checks that do not use the solver's routines."""
import pathlib
import time

import numpy as np
from mpi4py import MPI

from .. import memory
from ..config import ConfigError
from ..grids import SimplexGrid
from ..io import on_root, write_result
from ..restart import FamilyCheckpointer, checkpoint_path, load_family_state
from ..solvers.private_type import FIELDS, PrivateTypeSolver, TypedStage, beliefs, follower_exploitability, \
    prescription_gain
from ..stop import StopRequested, poll
from .common import build_model, check_paths, clear_after_convergence, output_path, root_attributes

STAGE_AXES = {"leader": ("belief", "point", "type"), "pooling": ("belief", "point"),
              "policy": ("belief", "point", "type", "state", "action"), "Vf": ("belief", "point", "state"),
              "Vl": ("belief", "point", "type"), "mimicry": ("belief", "point", "type")}
RESTART_MUST_MATCH = ("leader", "leader_points")


def build(cfg):
    """Model, simplex lattice, belief grid and solver; refuses what this solver does not do."""
    s, t = cfg["solver"], cfg["time"]
    if t["T"] == "infinite":
        raise ConfigError("time.T: a leader with a private type needs a finite horizon (a number of steps)")
    if s["epsilon"]:
        raise ConfigError("solver.epsilon: the ε-pessimistic leader is not built for a leader with a private type")
    if s["commitment_steps"] > 1:
        raise ConfigError("solver.commitment_steps: 0 or 1 for a leader with a private type (1: its prescription "
                          "at every step of the paths is checked against every pair of actions; 0: not checked)")

    def guard(model):
        if len(t["z1"]) != len(model.states):
            raise ConfigError(f"time.z1: one share per follower state {model.states}, got {t['z1']!r}")
        S, A, n = len(model.states), len(model.actions), cfg["grid"]["n"]
        points = (n + 1) if S == 2 else (n + 1) * (n + 2) // 2
        nodes = len(beliefs(cfg["grid"]["beliefs"], t["prior"]))
        actions = model.leader_actions()
        trials = s["leader_points"] if isinstance(actions, tuple) else len(actions)
        comm = MPI.COMM_WORLD
        need = memory.master(points * nodes, S, A, trials, t["T"], comm.Get_size(), cfg["output"]["plots"])
        memory.check(need, f"{points} simplex points × {nodes} beliefs with {trials} leader actions", "grid.n", comm)
    model = build_model(cfg, guard=guard)
    grid = SimplexGrid(len(model.states), cfg["grid"]["n"])
    solver = PrivateTypeSolver(model, grid, beliefs(cfg["grid"]["beliefs"], t["prior"]), selection=s["leader"],
                               leader_points=s["leader_points"])
    return model, grid, solver


def checkpoints(cfg, out, model, grid, solver, restart=None):
    """The checkpointer of the recursion: the levels computed so far (times T − k + 1..T)."""
    T, S, A = cfg["time"]["T"], len(model.states), len(model.actions)
    axes = {"belief": solver.pi, "point": np.arange(grid.size, dtype=float), "type": np.arange(2.0),
            "state": np.arange(S, dtype=float), "action": np.arange(A, dtype=float)}

    def save(k, levels):
        if grid.comm.Get_rank() != 0:
            return None
        stages = levels[::-1]
        fields = {name: np.array([getattr(st, name) for st in stages], dtype=float) for name in FIELDS}
        return {"axes": axes, "t": np.arange(T - k + 1.0, T + 1.0), "fields": fields, "field_axes": STAGE_AXES,
                "history": None}
    return FamilyCheckpointer(grid.comm, cfg, checkpoint_path(out, cfg), "private_type", save,
                              noun=lambda k: f"level t = {T - k + 1} ({k} of {T} levels solved)", unit="level",
                              restart=restart)


def load_levels(path, cfg):
    """A checkpoint's levels in the order of computation (t = T first)."""
    saved = load_family_state(path, cfg, "private_type", RESTART_MUST_MATCH)
    fields = saved["fields"]
    if set(fields) != set(FIELDS) or len(saved["t"]) != saved["iteration"]:
        raise ConfigError(f"restart: {path} is not a consistent private-type checkpoint")
    levels = [TypedStage(*(fields[name][j] for name in FIELDS)) for j in range(len(saved["t"]))]
    for st in levels:
        st.pooling = st.pooling > 0.5
    return levels[::-1]


def run(cfg, out, verbose=True, restart=None):
    """Backward recursion over (π, z), the two types' paths, the checks; written to `out`.
    Checkpoints as for the master equation (pipelines/discrete.py)."""
    out = pathlib.Path(out)
    model, grid, solver = build(cfg)
    check_paths(out, grid.comm, checkpoint_path(out, cfg), restart=restart)
    done = load_levels(restart, cfg) if restart else ()
    checkpointer = checkpoints(cfg, out, model, grid, solver, restart)
    T, start = cfg["time"]["T"], time.perf_counter()
    try:
        levels = solver.finite(T, done=done, on_level=checkpointer)
    except StopRequested as stop:
        raise checkpointer.stopped(stop) from None
    try:  # the levels are complete: a stop in the checks saves them all
        paths, checks = _checks(cfg, model, grid, solver, levels)
    except StopRequested as stop:
        stop.state = (T, levels[::-1])
        raise checkpointer.stopped(stop) from None
    checks["wall_time"] = time.perf_counter() - start
    status = f"solved {T} levels of the master equation over {len(solver.pi)} beliefs"
    if verbose and grid.comm.Get_rank() == 0:
        print(f"private type: {status}; followers' best deviation gains {checks['follower_exploitability']:.2e}, "
              f"the leader's best other prescription {checks['leader_prescription_gain']:.2e}; at (prior, z1) "
              f"ex-ante value {checks['leader_value']:.6g}, complete information {checks['complete_information']:.6g}",
              flush=True)
    on_root(grid.comm, lambda: _write(out, cfg, model, grid, solver, levels, paths, checks, status))
    clear_after_convergence(out, grid.comm, checkpointer)
    return _Result(True, status, paths, checks), output_path(out, True)


class _Result:
    def __init__(self, converged, status, paths, checks):
        self.converged, self.status, self.paths, self.checks = converged, status, paths, checks


def _checks(cfg, model, grid, solver, levels):
    """The paths of both types, the followers' exploitability over them, the leader's best
    other prescription along them minus the chosen value (every pair of actions, the
    followers answered by commitment.Answers; 0 when right, NaN with commitment_steps = 0),
    and the leader's values at (prior, z1)."""
    t, s = cfg["time"], cfg["solver"]
    paths = solver.forward(t["z1"], t["prior"], levels)
    zero = (np.zeros_like(levels[0].Vf), np.zeros_like(levels[0].Vl))
    # signed: the chosen prescription is among the pairs, so a value it does not reach shows as < 0
    gain = -np.inf if s["commitment_steps"] else float("nan")
    for path in paths if s["commitment_steps"] else ():
        for step in range(len(levels)):
            poll(grid.comm)
            j = int(np.flatnonzero(solver.pi == path["belief"][step])[0])
            nxt = (levels[step + 1].Vf, levels[step + 1].Vl) if step + 1 < len(levels) else zero
            gain = max(gain, float(prescription_gain(model, grid, s["leader"], solver.candidates, solver.pi, j,
                                                     path["z"][step:step + 1], *nxt, path["value"][step:step + 1])[0]))
    j, J, p = int(np.flatnonzero(solver.pi == t["prior"])[0]), len(solver.pi) - 1, t["prior"]
    first = solver.stage(np.atleast_2d(np.asarray(t["z1"], float)), [0, j, J],
                         *((levels[1].Vf, levels[1].Vl) if len(levels) > 1 else zero))
    value = (1 - p) * first.Vl[1, 0, 0] + p * first.Vl[1, 0, 1]
    complete = (1 - p) * first.Vl[0, 0, 0] + p * first.Vl[2, 0, 1]
    checks = {"follower_exploitability": follower_exploitability(model, paths, p), "leader_prescription_gain": gain,
              "leader_value": float(value), "complete_information": float(complete),
              "leader_value_types": first.Vl[1, 0].tolist(),
              "mimicry_gain": float(max(np.max(path["mimicry"]) for path in paths))}
    return paths, checks


def _write(path, cfg, model, grid, solver, levels, paths, checks, status):
    """Fields per level over (belief, point), each type's path in trajectory_<type>."""
    stack = lambda name: np.array([getattr(lv, name) for lv in levels], dtype=float)  # noqa: E731
    fields = {"pooling": stack("pooling")}
    leader, Vl, mimicry, policy, Vf = (stack(n) for n in ("leader", "Vl", "mimicry", "policy", "Vf"))
    for i, theta in enumerate(model.leader_types):
        fields[f"leader_action_{theta}"] = leader[..., i]
        fields[f"V_leader_{theta}"] = Vl[..., i]
        fields[f"mimicry_gain_{theta}"] = mimicry[..., i]
        for x, state in enumerate(model.states):
            for a, action in enumerate(model.actions):
                fields[f"policy_{action}_given_{state}_after_{theta}"] = policy[:, :, :, i, x, a]
    for x, state in enumerate(model.states):
        fields[f"V_{state}"] = Vf[..., x]
    second = f"z_{model.states[1]}"
    axes = {"belief": solver.pi, **({second: grid.points[:, 1]} if grid.states == 2
                                    else {"point": np.arange(grid.size, dtype=float)})}
    attrs = root_attributes(model, cfg, status, True, len(levels), kind="stackelberg_private_type",
                            states=list(model.states), actions=list(model.actions),
                            leader_types=list(model.leader_types), leader_action=model.leader_action,
                            prior=cfg["time"]["prior"], **checks)
    extra = {"simplex": {"points": grid.points}}
    for theta, p in zip(model.leader_types, paths):
        extra[f"trajectory_{theta}"] = {"z": p["z"], "belief": p["belief"], "leader_action": p["leader"],
                                        "pooling": p["pooling"].astype(float), "policy": p["policy"],
                                        "mimicry_gain": p["mimicry"]}
    write_result(path, axes=axes, t=np.arange(1.0, len(levels) + 1.0), fields=fields, attrs=attrs, extra=extra)
