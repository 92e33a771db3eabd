"""`mfgpde validate`: the closed-form cases, each at three resolutions (h and dt halved)."""
import copy
import math

from ..config import validate
from ..pipelines.mfg import build_problem, build_solver
from .study import QUANTITIES, closed_form_errors, observed_orders

LQ_MODEL = {"name": "lq_mfg", "q": 1.0, "kappa": 0.5, "s": 1.0, "sigma": 0.5, "rho": 0.1, "s0": 0.3}
CASES = {
    "lq_mfg_1d": {"model": {**LQ_MODEL, "mu0": 0.5},
                  "grid": {"lower": [-2.5], "upper": [3.5]},
                  "resolutions": [(100, 50), (200, 100), (400, 200)]},
    "lq_mfg_2d": {"model": {**LQ_MODEL, "mu0": [0.5, -0.4]},
                  "grid": {"lower": [-1.5, -2.4], "upper": [2.5, 1.6]},
                  "resolutions": [(32, 8), (64, 16), (128, 32)]},
    # the scalar designer game (Theorem 1): the mean stays at mu0
    "robust_scalar": {"model": {"name": "robust_designer", "mu0": 0.3, "s0": 0.25, "sigma": 0.3, "Gamma": 4.0},
                      "grid": {"lower": [-1.2], "upper": [1.8]},
                      "resolutions": [(100, 50), (200, 100), (400, 200)]},
    # M = 1 − 1/0.5 = −1 < 0: an adversary's (concave) axis, conjugate time π/4 > T; the box
    # is wide because the drift pushes the excess outwards
    "robust_indefinite": {"model": {"name": "robust_designer", "mu0": 0.3, "s0": 0.25, "sigma": 0.3, "Gamma": 0.5},
                          "grid": {"lower": [-2.7], "upper": [3.3]}, "T": 0.5, "damping": 0.5,
                          "resolutions": [(100, 50), (200, 100), (400, 200)]},
    # the 2-player TU game (q = 3, B = coalitions): M = BBᵀ − 1/4 has eigenvalues −0.25, 0.75,
    # 2.75 along the grid axes y1 (indefinite: the drift pushes the excess outwards), y2, y3;
    # conjugate time 2 atan 2 = 2.2143 > T = 0.5.  The box is centred on the mean Vᵀmu0 = (0, 0.3/√2, 0.3/√6)
    # (so the constant mean is met to round-off) and adapted to the directions: wide along y1,
    # narrower along y2 and narrowest along y3, where the density contracts (std at T: 0.48,
    # 0.34, 0.24); σ = 0.5 keeps it wide enough for these cells.  cells: per-axis multipliers
    # of n (h = 0.167, 0.18, 0.075 at n = 16)
    "robust_tu2": {"model": {"name": "robust_designer", "players": 2, "mu0": [0.2, -0.1, 0.1], "s0": 0.25,
                             "sigma": 0.5, "Gamma": 4.0},
                   "grid": {"lower": [-2.5, 0.3 / math.sqrt(2) - 1.8, 0.3 / math.sqrt(6) - 1.2],
                            "upper": [2.5, 0.3 / math.sqrt(2) + 1.8, 0.3 / math.sqrt(6) + 1.2]},
                   "cells": [1.875, 1.25, 2.0], "T": 0.5,
                   "resolutions": [(16, 6), (32, 12), (64, 24)]},
    # five populations on a chain (Theorem 3): consensus of the means
    "robust_chain": {"model": {"name": "robust_designer", "graph": "chain", "populations": 5,
                               "mu0": [-1.0, -0.5, 0.0, 0.5, 1.0], "s0": 0.2, "sigma": 0.3,
                               "Q": 4.0, "Gamma": 4.0},
                     "grid": {"lower": [-2.0], "upper": [2.0]}, "T": 2.0, "damping": 0.5,
                     "resolutions": [(50, 25), (100, 50), (200, 100)]},
    # the LQ mean field Stackelberg game with Huang & Yang's (2020) parameters: V0, V1 and the
    # feedbacks against the Riccati solution on [-1, 1] (the central third of the box)
    "stackelberg_lq": {"model": {"name": "stackelberg_lq"}, "leader_follower": True,
                       "grid": {"x0": [-3.0, 3.0], "z": [-3.0, 3.0], "window": 1 / 3}, "T": 1.0,
                       "resolutions": [(16, 16), (32, 32), (64, 64)]},
}
LEADER_FOLLOWER_QUANTITIES = ("V0_t0", "V1_t0", "u0_t0", "u1_t0", "V0_all", "V1_all", "u0_all", "u1_all")
MIN_ORDER = 0.8
SOLVER_TOLERANCE = 1e-9  # of every PDE case's solve (case_config)
MEAN_TOLERANCE = 100 * SOLVER_TOLERANCE  # a mean error at most this is round-off, whatever its "order"


def case_config(case, n, nt):
    c = CASES[case]
    cells = c.get("cells", [1] * len(c["grid"]["lower"]))  # per-axis multipliers of n
    return validate({"model": copy.deepcopy(c["model"]),
                     "grid": {**c["grid"], "n": [round(n * k) for k in cells]},
                     "time": {"T": c.get("T", 1.0), "nt": nt},
                     "solver": {"tolerance": SOLVER_TOLERANCE, "damping": c.get("damping", 1.0),
                                "max_iterations": 500}})


def leader_follower_study(case):
    """Rows {n, nt, h, errors of V0, V1, u0, u1 at t = 0 and over all levels} and orders."""
    from ..pipelines.leader_follower import build, window_errors
    c, rows = CASES[case], []
    for n, nt in c["resolutions"]:
        cfg = validate({"model": copy.deepcopy(c["model"]), "grid": {**c["grid"], "n": n},
                        "time": {"T": c["T"], "nt": nt}})
        _, solver, reference = build(cfg)
        errors = window_errors(solver, solver.solve(), reference, cfg["grid"]["window"])
        rows.append({"n": n, "nt": nt, "h": max(solver.g1.h), **errors})
    h = [r["h"] for r in rows]
    return rows, {q: observed_orders(h, [r[q] for r in rows]) for q in LEADER_FOLLOWER_QUANTITIES}


def convergence_study(case):
    """Rows {n, nt, h, errors...} and the observed orders per quantity."""
    if CASES[case].get("leader_follower"):
        return leader_follower_study(case)
    rows = []
    for n, nt in CASES[case]["resolutions"]:
        cfg = case_config(case, n, nt)
        problem = build_problem(cfg)
        solver, _ = build_solver(problem, cfg, verbose=False)
        solution = solver.solve()
        if not solution.converged:
            raise RuntimeError(f"{case} at n={n}: {solution.status}")
        errors = closed_form_errors(solution, problem.model.closed_form(problem.T))
        rows.append({"n": n, "nt": nt, "h": max(problem.grid.h), **errors})
    h = [r["h"] for r in rows]
    orders = {q: observed_orders(h, [r[q] for r in rows]) for q in QUANTITIES + ("feedback",) if q in rows[0]}
    return rows, orders


def format_table(case, rows, orders):
    quantities = list(orders)
    head = f"{case:<14}{'n':>6}{'nt':>6}" + "".join(f"{'err ' + q:>13}{'order':>7}" for q in quantities)
    lines = [head, "-" * len(head)]
    for k, r in enumerate(rows):
        cells = "".join(f"{r[q]:13.3e}" + (f"{orders[q][k - 1]:7.2f}" if k else f"{'':>7}") for q in quantities)
        lines.append(f"{'':<14}{r['n']:>6}{r['nt']:>6}" + cells)
    return "\n".join(lines)


def _listed(values, spec):
    return ", ".join(format(v, spec) for v in values)


def gate(rows, orders, leader_follower=False):
    """(passed, verdict) of a case from its rows and observed orders.

    The leader-follower case passes when the orders of V0, V1, u0 and u1 at t = 0 are all at
    least MIN_ORDER.  A PDE case passes when
    - the orders of u(0) and m(T), and of the feedbacks where the closed form gives them,
      are all at least MIN_ORDER;
    - the mean passes at each refinement k → k+1 whose finer error is at most MEAN_TOLERANCE
      (100 × the solver tolerance: a constant exact mean is met to round-off, where an
      order is noise), and otherwise by its order, at least MIN_ORDER.
    A NaN order (an error of 0 beside a nonzero one) fails where an order is asked for."""
    if leader_follower:
        ordered, mean = ("V0_t0", "V1_t0", "u0_t0", "u1_t0"), False
    else:
        ordered, mean = ("u0", "mT") + (("feedback",) if "feedback" in orders else ()), "mean" in orders
    failed = [f"{q}: orders {_listed(orders[q], '.2f')} (asked: >= {MIN_ORDER})" for q in ordered
              if not all(o >= MIN_ORDER for o in orders[q])]
    if mean:
        errors, steps = [r["mean"] for r in rows], orders["mean"]
        if not all(errors[k + 1] <= MEAN_TOLERANCE or o >= MIN_ORDER for k, o in enumerate(steps)):
            failed.append(f"mean: errors {_listed(errors, '.2e')}, orders {_listed(steps, '.2f')} (asked at each "
                          f"refinement: the finer error <= {MEAN_TOLERANCE:g} or the order >= {MIN_ORDER})")
    rule = f"observed orders of {', '.join(ordered)} >= {MIN_ORDER}"
    if mean:
        rule += f"; mean error <= {MEAN_TOLERANCE:g} or order >= {MIN_ORDER}"
    if failed:
        return False, f"FAIL ({'; '.join(failed)})"
    return True, f"PASS ({rule})"


def run_validation(cases=None, stream=None):
    """Print a table per case and its verdict (gate); True when every case passes."""
    from mpi4py import MPI
    rank0 = MPI.COMM_WORLD.Get_rank() == 0
    ok = True
    for case in cases or CASES:
        rows, orders = convergence_study(case)
        passed, verdict = gate(rows, orders, leader_follower=bool(CASES[case].get("leader_follower")))
        ok &= passed
        if rank0:
            print(format_table(case, rows, orders), file=stream)
            print(f"{case}: {verdict}\n", file=stream, flush=True)
    return ok
