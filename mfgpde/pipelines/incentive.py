"""From a resolved configuration of an incentive-design game to its tables, checked
numerically and written: the glue behind `mfgpde run` for the incentive family.

The games are static and solved in closed form (closedforms/incentive.py).  The pipeline
tabulates them over the follower counts of study.N, runs the numerical best responses of
validation/incentive_check.py at those N up to check.max_N (each N on one rank, the ranks
taking them in turn, so that every rank count writes the same numbers), and writes one file
whose fields lie on an axis `N`, with the one stage of the game as its time (t = 0).  A
discrepancy above TOLERANCE makes the run unconverged (<stem>.unconverged.h5, exit 3).
"""
import math
import pathlib
import time
from dataclasses import dataclass

import numpy as np
from mpi4py import MPI

from .. import memory
from ..closedforms.incentive import comparison, gain_growth, log_slope, mean_field_errors
from ..config import ConfigError
from ..io import on_root, write_result
from ..stop import watch
from ..validation.incentive_check import NODES, TOLERANCE, followers_checks, major_minor_checks
from .common import build_model, output_path, peak_memory_mb, root_attributes, unconverged_path

MEASURED = ("uncontrolled_gap",)  # discrepancies that measure a departure, not an error


@dataclass
class IncentiveResult:
    converged: bool
    status: str
    tables: dict
    checks: dict


def run(cfg, out, verbose=True, restart=None):
    """Closed-form tables over study.N, the numerical checks up to check.max_N; written to
    `out` (or <stem>.unconverged.h5 when a check fails).  There is nothing to restart."""
    if restart:
        raise ConfigError(f"--restart {restart}: an incentive-design study is static (closed forms and one pass of "
                          "checks) and has nothing to restart; run it without --restart")
    comm, start = MPI.COMM_WORLD, time.perf_counter()
    model = build_model(cfg, guard=lambda m: _check_memory(cfg, m, comm))
    Ns = cfg["study"]["N"]
    tables, attrs, extra = (_major_minor if model.major else _followers)(model, Ns, cfg["study"])
    group, worst, checked = _checks(model, Ns, cfg["check"], comm)
    failed = {k: v for k, v in worst.items() if k not in MEASURED and not v <= TOLERANCE}
    converged = not failed
    if not checked:
        status = f"closed forms at {len(Ns)} follower counts; no numerical check (check.max_N = 0 or below N)"
    elif converged:
        status = (f"closed forms at {len(Ns)} follower counts, checked numerically at N = {_list(checked)}: largest "
                  f"discrepancy {max(v for k, v in worst.items() if k not in MEASURED):.1e} <= {TOLERANCE:g}")
    else:
        at = {k: checked[int(np.argmax(group[k]))] for k in failed}
        status = "not converged: numerical checks failed: " + ", ".join(f"{k} {v:.1e} > {TOLERANCE:g} at N = {at[k]}"
                                                                        for k, v in failed.items())
    if verbose and comm.Get_rank() == 0:
        for line in _summary(model, tables, attrs):
            print(f"incentive: {line}", flush=True)
    attrs.update({f"check_{k}": v for k, v in worst.items()}, check_tolerance=TOLERANCE, checked_N=checked,
                 check_samples=cfg["check"]["samples"], check_seed=cfg["check"]["seed"])
    target = output_path(out, converged)
    root = root_attributes(model, cfg, status, converged, None, kind="incentive", peak_memory_mb=peak_memory_mb(comm),
                           wall_time=time.perf_counter() - start, **attrs)
    extra = {**(extra or {}), **({"checks": group} if checked else {})}
    on_root(comm, lambda: write_result(target, axes={"N": np.asarray(Ns, float)}, t=np.zeros(1),
                                       fields={k: np.asarray(v, float)[None] for k, v in tables.items()},
                                       attrs=root, extra=extra))
    if converged and comm.Get_rank() == 0:  # a stale failure beside a good result would mislead
        unconverged_path(out).unlink(missing_ok=True)
    return IncentiveResult(converged, status, tables, worst), pathlib.Path(target)


def _list(values):
    return ", ".join(str(v) for v in values)


def _check_memory(cfg, model, comm):
    """Refuse checks whose samples cannot fit, before any is drawn."""
    Ns = [n for n in cfg["study"]["N"] if n <= cfg["check"]["max_N"]]
    if not Ns:
        return
    mine = max(Ns[comm.Get_rank()::comm.Get_size()], default=0)
    need = memory.incentive(cfg["check"]["samples"], mine, model.major, NODES, cfg["output"]["plots"])
    memory.check(need, f"the checks of {cfg['check']['samples']} samples at N = {mine}", "check.max_N", comm)


def _tail(N, y):
    """The log-log slope between the two largest N."""
    return log_slope(N[-2:], np.asarray(y)[-2:])


def _followers(model, Ns, study):
    """Fields over N, attributes and extra groups of the followers' game."""
    growth = gain_growth(model.game(Ns[0]), Ns)
    games = [model.game(N) for N in Ns]
    team, nash = np.array([g.team() for g in games]), np.array([g.nash() for g in games])
    gains = np.array([g.gain() for g in games])
    tables = {"gain": growth["gain"], "gain_k1": gains[:, 0], "gain_k0": gains[:, 1],
              "leader_optimal_g": team[:, 0], "leader_optimal_h": team[:, 1], "nash_g": nash[:, 0],
              "nash_h": nash[:, 1], "leader_optimal_J0": [g.leader_cost(*t) for g, t in zip(games, team)],
              "nash_J0": [g.leader_cost(*n) for g, n in zip(games, nash)]}
    limit = model.game(math.inf)
    attrs = {"gain_slope": growth["slope"], "gain_tail_slope": _tail(Ns, growth["gain"]),
             "limit_leader_optimal_g": limit.team()[0], "limit_leader_optimal_h": limit.team()[1],
             "limit_nash_g": limit.nash()[0], "limit_nash_h": limit.nash()[1]}
    return tables, attrs, None


def _major_minor(model, Ns, study):
    """Fields over N, attributes and the comparison over b and p (N = inf) of the major-minor game."""
    best = [model.game(N).leader_major() for N in Ns]
    tables = {f"leader_major_{k}": [d[k] for d in best] for k in ("h_M", "k_M", "g", "h", "m", "J0")}
    tables["leader_optimal_J0"] = [model.game(N).leader_optimal()["J0"] for N in Ns]
    tables["nash_J0"] = [model.game(N).nash()["J0"] for N in Ns]
    errors = mean_field_errors(model.game(Ns[0]), Ns)
    names = ("loss", "cost_error", "major_error", "minor_error")
    tables.update({f"mean_field_{k}": errors[k] for k in names})
    limit = model.game(math.inf)
    attrs = {**{f"mean_field_slope_{k}": errors[f"slope_{k}"] for k in names},
             **{f"mean_field_tail_slope_{k}": _tail(Ns, errors[k]) for k in names},
             **{f"limit_{k}": v for k, v in limit.leader_major().items()},
             "limit_leader_optimal_J0": limit.leader_optimal()["J0"], "limit_nash_J0": limit.nash()["J0"]}
    table = comparison(limit, study["b"], study["p"])
    return tables, attrs, {"comparison": table}


def _checks(model, Ns, check, comm):
    """The discrepancies per N checked (a group: N and one dataset per discrepancy), their
    largest values, and the N checked.  The P ranks take the checked N P at a time, rank r
    the r-th of each batch, and poll the stop request together after each batch (a signal
    or the budget: StopRequested, nothing to continue from); all are gathered."""
    checked = [N for N in Ns if N <= check["max_N"]]
    run = major_minor_checks if model.major else followers_checks
    mine, rank, size = {}, comm.Get_rank(), comm.Get_size()
    for batch in range(0, len(checked), size):
        if batch + rank < len(checked):
            N = checked[batch + rank]
            mine[N] = run(model.game(N), check["samples"], check["seed"])
        watch.poll(comm)
    found = {N: d for part in comm.allgather(mine) for N, d in part.items()}
    names = list(found[checked[0]]) if checked else []
    group = {"N": np.asarray(checked, float), **{k: np.array([found[N][k] for N in checked]) for k in names}}
    return group, {k: float(group[k].max()) for k in names}, checked


def _summary(model, tables, attrs):
    """A few lines with the key numbers."""
    if not model.major:
        return [f"incentive gain sqrt(E k^2) {tables['gain'][0]:.4g} .. {tables['gain'][-1]:.4g}, log-log slope "
                f"{attrs['gain_slope']:.3f} (between the two largest N {attrs['gain_tail_slope']:.3f})",
                f"limit: leader-optimal g = {attrs['limit_leader_optimal_g']:.4g}, h = "
                f"{attrs['limit_leader_optimal_h']:.4g}; uncontrolled "
                f"g = {attrs['limit_nash_g']:.4g}, h = {attrs['limit_nash_h']:.4g}"]
    return [f"mean field limit: leader's cost {attrs['limit_leader_optimal_J0']:.4g} (leader-optimal) <= "
            f"{attrs['limit_J0']:.4g} (leader-major-optimal) <= {attrs['limit_nash_J0']:.4g} (uncontrolled); "
            f"major's incentive k_M = {attrs['limit_k_M']:.4g}",
            "mean field design in the game of N minors, slopes between the two largest N: "
            + ", ".join(f"{k} {attrs[f'mean_field_tail_slope_{k}']:.3f}"
                        for k in ("loss", "cost_error", "major_error", "minor_error"))]
