"""`mfgpde bench --peer PYTHON`: the 1-D default study (runs/lq_mfg_1d.toml, the one
`make run` solves, with ρ = 0 since the peer has no discount) against the peer package
mfgsolver (PyPI, policy iteration), whole process each, the same grid, horizon and
tolerance; PYTHON is an interpreter that imports mfgsolver (it is not a dependency of
mfgpde).  Errors against the closed form for every row."""
import pathlib
import subprocess
import tempfile
import time

import numpy as np

from .run import RUNS, petsc_run

RUNFILE, SETS = "lq_mfg_1d.toml", ["model.rho=0.0"]
SCRIPT = pathlib.Path(__file__).with_name("peer_mfgsolver.py")


def _closed_form(cfg):
    from ..models import registry
    model = registry.from_config(cfg)
    return model.closed_form(cfg["time"]["T"])


def peer_run(python, cfg, workdir):
    """mfgsolver in `python`, whole process: wall, iterations, errors (its node grid)."""
    p, g, t = cfg["model"], cfg["grid"], cfg["time"]
    out = pathlib.Path(workdir) / "peer.npz"
    args = [p["q"], p["kappa"], p["s"], p["sigma"], p["mu0"], p["s0"], g["lower"][0], g["upper"][0], g["n"][0],
            t["nt"], t["T"], cfg["solver"]["tolerance"], cfg["solver"]["max_iterations"], out]
    start = time.perf_counter()
    proc = subprocess.run([python, str(SCRIPT), *map(str, args)], capture_output=True, text=True)
    elapsed = time.perf_counter() - start
    if proc.returncode != 0:
        return {"error": (proc.stderr.strip().splitlines() or ["failed"])[-1]}
    r = np.load(out)
    cf, xs = _closed_form(cfg), r["xs"]
    cu, cm = cf.u(0.0, xs), cf.m(t["T"], xs)
    return {"process": elapsed, "wall": float(r["wall"]), "iterations": int(r["iterations"]),
            "converged": bool(r["converged"]), "error_u0": float(np.max(np.abs(r["u0"] - cu)) / np.max(np.abs(cu))),
            "error_mT": float(np.sum(np.abs(r["mT"] - cm)) * (xs[1] - xs[0]))}


def peer(python, ranks=(1, 2), couplings=("auto",), stream=None):
    """The rows: mfgsolver, then mfgpde with the run file's coupling and each of `couplings`."""
    from ..config import load
    cfg = load(RUNS / RUNFILE, SETS)
    n, nt = cfg["grid"]["n"], cfg["time"]["nt"]
    print(f"peer: {RUNFILE} ({'x'.join(map(str, n))}x{nt}, tolerance {cfg['solver']['tolerance']:g}, "
          f"{', '.join(SETS)}) against mfgsolver in {python}; whole process each", file=stream, flush=True)
    print(f"{'solver':<26}{'P':>2}{'process s':>11}{'solve s':>9}{'its':>5}{'err u0':>9}{'err mT':>9}{'x peer':>8}",
          file=stream, flush=True)
    with tempfile.TemporaryDirectory() as work:
        rows = [{"solver": "mfgsolver (policy it.)", "ranks": 1, **peer_run(python, cfg, work)}]
        for coupling in dict.fromkeys([cfg["solver"]["coupling"], *couplings]):
            for p in ranks:
                rows.append({"solver": f"mfgpde {coupling}", "ranks": p,
                             **petsc_run(RUNFILE, n, nt, coupling, p, work, sets=SETS)})
    base = rows[0].get("process", np.nan)
    for r in rows:
        if "error" in r:
            print(f"{r['solver']:<26}{r['ranks']:>2}  {r['error']}", file=stream, flush=True)
            continue
        r["vs_peer"] = base / r["process"]
        note = "" if r.get("converged", True) else "  (not converged)"
        print(f"{r['solver']:<26}{r['ranks']:>2}{r['process']:11.2f}{r['wall']:9.2f}{r['iterations']:5d}"
              f"{r['error_u0']:9.1e}{r['error_mT']:9.1e}{r['vs_peer']:8.1f}{note}", file=stream, flush=True)
    return rows

