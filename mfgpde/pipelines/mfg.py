"""The MFG pipeline: from a resolved configuration of an MFG study to a solved, written
one, with its exploitability, closed form and XDMF sidecar."""
import pathlib
import re
import time

import numpy as np
from petsc4py import PETSc

from .. import memory
from ..config import ConfigError
from ..grids import Grid
from ..io import OutputError, on_root, write_result
from ..io.xdmf import mesh_points, xdmf_path, xdmf_text
from ..models import MFGModel, parameters
from ..restart import Checkpointer, Interrupted, checkpoint_path, load_state
from ..stop import StopRequested, poll, watch
from ..solvers import (AndersonSolver, HistoryMonitor, MassMonitor, MFGProblem, NewtonCoupling, PicardSolver,
                      ProgressMonitor, SolverError, check_finite, exploitability)
from ..solvers.exploitability import summary as exploitability_summary
from .common import (build_model, check_paths, clear_after_convergence, output_path, peak_memory_mb, root_attributes,
                     split_grid)


def build_problem(cfg, comm=None):
    """Grid, model and problem from the configuration; bad values raise ConfigError."""
    g = cfg["grid"]
    _check_memory(cfg, comm, _populations(parameters(cfg["model"])))  # before the model: its populations' weights
    model = build_model(cfg, len(g["n"]), prepare=lambda model: model.set_horizon(cfg["time"]["T"]),
                        guard=lambda model: _check_memory(cfg, comm, model.populations, model))
    grid = split_grid(lambda: Grid(g["lower"], g["upper"], g["n"], boundary=g["boundary"], names=g["axes"],
                                   comm=comm), g["n"], comm)
    problem = MFGProblem(grid, model, cfg["time"]["T"], cfg["time"]["nt"])
    try:
        problem.initial_density()
    except ValueError as e:
        raise ConfigError(str(e)) from None
    return problem


def _populations(params):
    """The populations a run file asks for (model.populations, or a graph's list), before the
    model checks them."""
    p, graph = params.get("populations", 1), params.get("graph")
    p = p if isinstance(p, int) and not isinstance(p, bool) and p > 0 else 1
    return max(p, len(graph) if isinstance(graph, list) else 1)


def _check_memory(cfg, comm, populations, model=None):
    """Refuse a study whose estimated peak memory exceeds the limits, before allocating."""
    pcomm = comm or PETSc.COMM_WORLD
    ranks, rank = pcomm.getSize(), pcomm.getRank()
    g, nt, s = cfg["grid"], cfg["time"]["nt"], cfg["solver"]
    kw = {"coupling": s["coupling"], "linear": _newton_linear(s["newton_linear"], len(g["n"])),
          "plots": cfg["output"]["plots"], "populations": populations}
    if model is not None:
        kw["closed_form"] = type(model).closed_form is not MFGModel.closed_form
        kw["density_unknown"] = bool(model.couples_locally or not model.couples_through_mean)
        try:
            kw["feedbacks"] = len(model.feedbacks([np.zeros(1)] * len(g["n"])))
        except Exception:  # a user model's feedbacks need real fields: count one per axis
            kw["feedbacks"] = len(g["n"])
    need = memory.mfg(g["n"], nt, ranks, rank, **kw)
    if populations > 1 and memory.fits(memory.mfg(g["n"], nt, 1, 0, **{**kw, "populations": 1})):
        key = "model.populations"
    elif kw["coupling"] == "newton" and kw["linear"] != "marching" and \
            memory.fits(memory.mfg(g["n"], nt, 1, 0, **{**kw, "linear": "marching"})):
        key = "solver.newton_linear"
    else:
        key = "time.nt" if memory.fits(memory.mfg(g["n"], 1, 1, 0, **kw)) else "grid.n"
    what = f"{nt} steps on {list(g['n'])} cells" + (f" for {populations} populations" if populations > 1 else "")
    memory.check(need, what, key, pcomm.tompi4py())


def population_problems(problem):
    """One problem per population of the model (the given one is population 1)."""
    return [problem] + [MFGProblem(problem.grid, problem.model, problem.T, problem.nt, population=k)
                        for k in range(1, problem.model.populations)]


def build_solver(problem, cfg, verbose=True, history=None, on_state=None):
    s = cfg["solver"]
    populations = problem.model.populations
    if populations > 1 and s["coupling"] not in ("auto", "picard"):
        raise ConfigError(f"solver.coupling: model '{problem.model.name}' with {populations} populations "
                          "is solved by Picard only (coupling = \"picard\")")
    history = history or HistoryMonitor()
    monitors = [check_finite, MassMonitor(s["mass_tolerance"]), history]
    if verbose:
        monitors.insert(0, ProgressMonitor(problem.grid.comm))
    try:
        if s["coupling"] == "newton":
            solver = NewtonCoupling(problem, damping=s["damping"], picard_iterations=s["picard_iterations"],
                                    tol=s["newton_tolerance"], max_iterations=s["newton_max_iterations"],
                                    mass_tol=s["mass_tolerance"], monitors=monitors, on_state=on_state,
                                    linear=_newton_linear(s["newton_linear"], problem.grid.dim))
        elif s["coupling"] == "anderson" or s["coupling"] == "auto" and populations == 1:
            fallback = (lambda: PicardSolver(problem, damping=s["damping"], tol=s["tolerance"],  # noqa: E731
                                             max_iterations=s["max_iterations"], monitors=monitors,
                                             on_state=on_state)) if s["coupling"] == "auto" else None
            solver = AndersonSolver(problem, tol=s["tolerance"], max_iterations=s["max_iterations"],
                                    monitors=monitors, on_state=on_state, fallback=fallback)
        else:
            solver = PicardSolver(population_problems(problem), damping=s["damping"], tol=s["tolerance"],
                                  max_iterations=s["max_iterations"], monitors=monitors, on_state=on_state)
    except ValueError as e:
        raise ConfigError(str(e)) from None
    except PETSc.Error as e:
        raise ConfigError(f"petsc: PETSc rejected a solver option (an unknown type or a bad value; "
                          f"PETSc error code {e.ierr})") from None
    return solver, history


def _newton_linear(choice, dim):
    """auto: the field-split block Gauss–Seidel with time-marching field inverses, measured
    fastest in 1-D and 2-D (LQ 64²x16: 0.7 s against 5.5 s with MUMPS on the fields and
    7.7 s with MUMPS on the whole system; 1-D 400x200: 1.7 s against 3.5 s direct), unless
    the user names a -newton_pc_type: PETSc's own preconditioners need the assembled matrix."""
    if choice != "auto":
        return choice
    return "direct" if PETSc.Options().hasName("newton_pc_type") else "marching"


def _fields(model, u, m, h):
    """u, m and the model's feedback fields (from centred differences of u), whole; with
    several populations every name gets the suffix _pop<k>."""
    us, ms = (u, m) if model.populations > 1 else (u[None], m[None])
    fields = {}
    for k, (uk, mk) in enumerate(zip(us, ms)):
        tag = f"_pop{k + 1}" if model.populations > 1 else ""
        grad = [np.gradient(uk, h[d], axis=d + 1) if uk.shape[d + 1] > 1 else np.zeros_like(uk)
                for d in range(len(h))]
        fields.update({"u" + tag: uk, "m" + tag: mk})
        fields.update({name + tag: value for name, value in model.feedbacks(grad).items()})
    return fields


def gathered_fields(solution):
    """u, m and the feedbacks, whole on rank 0 (None elsewhere)."""
    grid = solution.problem.grid
    u, m = grid.gather(solution.u), grid.gather(solution.m)
    return _fields(solution.problem.model, u, m, grid.h) if grid.rank == 0 else None


def _attrs(solution, cfg, peak_mb):
    model = solution.problem.model
    return root_attributes(model, cfg, solution.status, solution.converged, solution.iterations,
                           peak_memory_mb=peak_mb, notes="\n".join(model.notes()), **solution.stats)


def write_solution(solution, cfg, path, history, fields, peak_mb, extra=None):
    """Write the HDF5 file (complete or absent) on rank 0, and with `extra` (the closed
    form and the mesh) its XDMF sidecar beside it; without, a sidecar of an earlier file goes."""
    grid, t = solution.problem.grid, solution.problem.t
    axes = {name: grid.coordinates(d) for d, name in enumerate(grid.names)}
    text = xdmf_text(path, axes, t, fields) if extra is not None else None
    write_result(path, axes=axes, t=t, fields=fields, attrs=_attrs(solution, cfg, peak_mb),
                 history=history.arrays(), extra=extra, companions={xdmf_path(path): text} if text else None)
    if extra is None:
        xdmf_path(path).unlink(missing_ok=True)


def write_extras(solution, cfg, path, history, fields, peak_mb):
    """Rewrite the file (atomically) with the closed form, the mesh and its XDMF sidecar, on
    rank 0; a signal on the way (StopRequested at once) leaves the file as it was.  Returns
    the closed form on the grid (None without one, and on the other ranks)."""
    grid = solution.problem.grid
    if grid.rank != 0:
        return None
    axes = {name: grid.coordinates(d) for d, name in enumerate(grid.names)}
    with watch.immediate():
        closed = _closed_form(solution.problem, axes)
        extra = {**(closed or {}), "mesh": {"points": mesh_points(axes)}}
        poll()  # the wall-time budget
        write_solution(solution, cfg, path, history, fields, peak_mb, extra)
    return closed["closed_form"] if closed else None


WALL_BAND, WALL_MASS = 0.02, 1e-3  # the outer 2 % of an axis holding 0.1 % of the mass: a wall the crowd feels


def wall_warnings(fields, grid, t, boundary):
    """Lines saying where a density reaches a reflecting wall: at some time more than
    WALL_MASS of the mass lies within WALL_BAND of the axis' length of the wall (axes of at
    least 1 / WALL_BAND cells)."""
    lines = []
    for name, m in fields.items():
        if name != "m" and not name.startswith("m_pop"):
            continue
        for d, axis in enumerate(grid.names):
            width = int(WALL_BAND * grid.n[d])
            if boundary[d] != "reflecting" or width == 0:
                continue
            for side, cells, edge in (("lower", slice(0, width), grid.lower[d]),
                                      ("upper", slice(grid.n[d] - width, None), grid.upper[d])):
                band = np.moveaxis(m, d + 1, 1)[:, cells].reshape(len(t), -1).sum(axis=1) * grid.cell_volume
                k = int(np.argmax(band))
                if band[k] > WALL_MASS:
                    lines.append(f"{band[k]:.1%} of the mass{name[1:].replace('_pop', ' of population ')} lies "
                                 f"within {width * grid.h[d]:.3g} of the wall {axis} = {edge:g} at t = {t[k]:g}: "
                                 f"the box may be too small for the model (widen grid.{side})")
    return lines


def closed_form_lines(fields, closed, grid):
    """The errors against the closed form: relative sup error of u(0) (absolute where the
    closed form's u(0) is 0), L¹ error of m(T)."""
    lines = []
    for tag in (n[1:] for n in fields if re.fullmatch(r"u(_pop\d+)?", n) and n in closed):
        cu = closed["u" + tag][0]
        m, cm = fields["m" + tag][-1], closed["m" + tag][-1]
        error, scale = np.max(np.abs(fields["u" + tag][0] - cu)), np.max(np.abs(cu))
        what = f"relative sup error {error / scale:.3e}" if scale > 0 else f"sup error {error:.3e} (u ≡ 0)"
        lines.append(f"closed form{tag.replace('_pop', ', population ')}: u(0) {what}, "
                     f"m(T) L1 error {np.sum(np.abs(m - cm)) * grid.cell_volume:.3e}")
    return lines


def _closed_form(pb, axes):
    """The model's closed form on the grid, stored beside the solution where one exists
    (u, m, and where the closed form has them, the feedbacks and the mean path)."""
    try:
        cf = pb.model.closed_form(pb.T)
    except (ValueError, RuntimeError, ArithmeticError):  # no closed form here; the solution stands
        return None
    if cf is None:
        return None
    x = np.meshgrid(*axes.values(), indexing="ij", sparse=True)
    out, P = {}, pb.model.populations
    for k in range(P):
        poll()
        tag, kw = (f"_pop{k + 1}", {"population": k}) if P > 1 else ("", {})
        out["u" + tag] = np.array([cf.u(t, *x, **kw) for t in pb.t])
        out["m" + tag] = np.array([cf.m(t, *x, **kw) for t in pb.t])
        if hasattr(cf, "feedbacks"):
            levels = [cf.feedbacks(t, *x, **kw) for t in pb.t]
            out.update({name + tag: np.array([np.broadcast_to(f[name], out["u" + tag].shape[1:]) for f in levels])
                        for name in levels[0]})
    if hasattr(cf, "feedbacks"):
        out["mean"] = np.array([[cf.mean(t, k) for k in range(P)] for t in pb.t])
    return {"closed_form": out}


def _add_exploitability(solution, verbose):
    """The exploitability of the computed solution (mfgpde/solvers/exploitability.py) into
    its root attributes (written by write_extras, the solution being on disk already: a stop
    request meanwhile leaves it there without them); NaN, with a warning, where a
    best-response sweep fails."""
    start = time.perf_counter()
    try:
        with np.errstate(all="ignore"):
            values = exploitability(solution)
    except SolverError as e:
        values = {"exploitability": float("nan")}
        if verbose and solution.problem.grid.rank == 0:
            print(f"warning: {e}; exploitability not computed", flush=True)
    solution.stats.update(values)
    if verbose and solution.problem.grid.rank == 0 and np.isfinite(values["exploitability"]):
        print(f"{exploitability_summary(values)} ({time.perf_counter() - start:.3g} s)", flush=True)


def run(cfg, out, verbose=True, restart=None):
    """Solve and write.  Returns (solution, written path); an unconverged solve is written
    to <stem>.unconverged.h5 with its status, never to `out`.  With `restart`, continue
    from that checkpoint.  Checkpoints go to <stem>.ckpt.h5 (or output.checkpoint_file)
    and are removed once the run has converged."""
    out = pathlib.Path(out)
    problem = build_problem(cfg)
    check_paths(out, problem.grid.comm, checkpoint_path(out, cfg), restart=restart)
    state = load_state(restart, cfg, problem) if restart else None
    history = HistoryMonitor(state["history"] if state else None)
    checkpointer = Checkpointer(problem, cfg, checkpoint_path(out, cfg), history, restart=restart)
    solver, history = build_solver(problem, cfg, verbose, history, on_state=checkpointer)
    if verbose and problem.grid.rank == 0:
        for line in problem.model.notes():
            print(f"note: {line}", flush=True)
    try:
        with np.errstate(all="ignore"):  # non-finite values are caught by the monitors, not warned about
            solution = solver.solve(state)
    except StopRequested as stop:
        raise checkpointer.stopped(stop) from None
    target = output_path(out, solution.converged)
    fields, peak_mb = gathered_fields(solution), peak_memory_mb(problem.grid.comm)
    warnings = wall_warnings(fields, problem.grid, problem.t, cfg["grid"]["boundary"]) if fields else []
    if warnings:
        solution.stats["warnings"] = "\n".join(warnings)
        if verbose:
            for line in warnings:
                print(f"warning: {line}", flush=True)
    on_root(problem.grid.comm, lambda: write_solution(solution, cfg, target, history, fields, peak_mb))
    if solution.converged:
        clear_after_convergence(out, problem.grid.comm, checkpointer)
    try:  # the solution is safe on disk; the extras follow, and a stop request skips them
        _add_exploitability(solution, verbose)
        closed = write_extras(solution, cfg, target, history, fields, peak_mb)
        if verbose and closed is not None:
            for line in closed_form_lines(fields, closed, problem.grid):
                print(line, flush=True)
    except StopRequested as stop:
        raise Interrupted(f"{stop.reason} during post-processing; {target} holds the solution without its "
                          "exploitability, closed form and XDMF", stop.code) from None
    except OutputError as e:
        raise OutputError(f"{e}; the solution is in {target}, without its exploitability, closed form and XDMF") \
            from None
    return solution, target
