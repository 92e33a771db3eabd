"""`mfgpde bench`: wall time, iterations, linear iterations, time per iteration and peak
memory of the PETSc solvers (Picard and Newton, 1 and 2 ranks), each as a ratio measured in
the same run against

- the scipy baseline: the same discretisation and Picard iteration, scipy `spsolve`, one
  process (`baseline.scipy_picard`);
- the linear-algebra bound: the time of the same number of PETSc solves of the grid's
  operator I/dt − νΔ_h with GMRES + algebraic multigrid (GAMG).

Each PETSc configuration runs as `mpirun -n P python -m mfgpde run ...` in a subprocess.
"""
import json
import os
import pathlib
import shutil
import subprocess
import sys
import tempfile
import time

import numpy as np


ROOT = pathlib.Path(__file__).resolve().parents[2]
RUNS = ROOT / "runs"
# case -> (run file, {size name: (n per axis, nt)})
CASES = {
    "lq_1d": ("lq_mfg_1d.toml", {"small": ([200], 50), "large": ([1000], 200)}),
    "lq_2d": ("lq_mfg_2d.toml", {"small": ([64, 64], 16), "large": ([257, 257], 100)}),
    "congestion_1d": ("congestion_1d.toml", {"small": ([200], 50), "large": ([1000], 200)}),
    "congestion_2d": ("congestion_2d.toml", {"small": ([64, 64], 16), "large": ([257, 257], 100)}),
}
MPI_ENV = {"OMPI_ALLOW_RUN_AS_ROOT": "1", "OMPI_ALLOW_RUN_AS_ROOT_CONFIRM": "1",
           "OMPI_MCA_rmaps_base_oversubscribe": "1", "OMP_NUM_THREADS": "1", "MPLBACKEND": "Agg"}


def _overrides(n, nt):
    return ["--set", f"grid.n={list(n)}", "--set", f"time.nt={nt}", "--set", "output.plots=false"]


def petsc_run(runfile, n, nt, coupling, ranks, workdir):
    """One PETSc configuration in a subprocess; figures read back from its output file."""
    out = pathlib.Path(workdir) / f"bench_{coupling}_{ranks}.h5"
    cmd = [sys.executable, "-m", "mfgpde", "run", str(RUNS / runfile), *_overrides(n, nt),
           "--set", f"solver.coupling='{coupling}'", "-o", str(out)]
    if ranks > 1:
        cmd = [shutil.which("mpirun"), "-n", str(ranks), sys.executable, "-m", "mpi4py", *cmd[1:]]
    start = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, env={**os.environ, **MPI_ENV})
    elapsed = time.perf_counter() - start
    if proc.returncode != 0:
        return {"error": (proc.stderr.strip().splitlines() or ["failed"])[-1]}
    import h5py
    with h5py.File(out, "r") as f:
        a = dict(f.attrs)
    out.unlink()
    its = int(a["iterations"])
    # linear systems of grid size: per-step HJB Newton solves, FP solves, and the time
    # marching's level solves (a space–time Newton step solved otherwise counts 2 nt)
    marching = int(a.get("newton_grid_solves", 0))
    solves = (int(a["hjb_newton_iterations"]) + int(a["fp_solves"])
              + (marching or 2 * nt * int(a.get("newton_iterations", 0))))
    linear = int(a.get("newton_linear_iterations", 0)) + int(a["hjb_linear_iterations"]) + int(a["fp_linear_iterations"])
    return {"wall": float(a["wall_time"]), "process": elapsed, "iterations": its,
            "newton_iterations": int(a.get("newton_iterations", 0)), "linear_iterations": linear,
            "grid_solves": solves, "per_iteration": float(a["wall_time"]) / its,
            "peak_mb": float(a.get("peak_memory_mb", np.nan))}


def baseline_run(runfile, n, nt, iterations=None):
    """The scipy baseline in this process (Picard, spsolve); with `iterations`, only that
    many Picard iterations (for sizes where the whole baseline takes too long)."""
    from ..config import load
    from ..runner import build_problem
    from .baseline import scipy_picard
    cfg = load(RUNS / runfile, [f"grid.n={list(n)}", f"time.nt={nt}"])
    s = cfg["solver"]
    result = scipy_picard(build_problem(cfg), damping=s["damping"], tol=s["tolerance"],
                          max_iterations=iterations or s["max_iterations"])
    return {"wall": result["wall_time"], "iterations": result["iterations"],
            "per_iteration": result["wall_time"] / result["iterations"], "converged": result["converged"],
            "estimated": bool(iterations)}


def laplacian_solve_time(runfile, n, nt, repeats=5):
    """Seconds per PETSc solve of (I/dt − νΔ_h) u = b with GMRES + GAMG (rtol 1e-8), serial."""
    from petsc4py import PETSc

    from ..config import load
    from ..runner import build_problem
    pb = build_problem(load(RUNS / runfile, [f"grid.n={list(n)}", f"time.nt={nt}"]))
    st = pb.stencil
    c = -pb.model.nu * pb.laplacian
    c[0] += 1.0 / pb.dt
    A = st.assemble(st.matrix(), c)
    ksp = PETSc.KSP().create(comm=pb.grid.da.getComm())
    ksp.setOperators(A)
    ksp.setType("gmres")
    ksp.getPC().setType("gamg")
    ksp.setTolerances(rtol=1e-8)
    b, x = pb.grid.create_vec(), pb.grid.create_vec()
    b.setRandom()
    ksp.solve(b, x)  # set-up outside the timing, as a time-stepping code reuses it per matrix
    start = time.perf_counter()
    for _ in range(repeats):
        A.assemble()
        ksp.setOperators(A)
        ksp.solve(b, x)
    return (time.perf_counter() - start) / repeats


def bench(sizes=("small",), ranks=(1, 2), cases=None, stream=sys.stdout, baseline_iterations=None, repeat=1):
    """Run the benchmark; returns the records and prints the table.  With
    `baseline_iterations`, the baseline runs that many Picard iterations and its total is
    estimated as its time per iteration times the Picard iteration count of mfgpde (the
    same discretisation and iteration, so the same count).  With `repeat` k, every PETSc
    configuration runs k times, in k rounds, and its fastest run is reported (on a shared
    machine, noise only ever adds time)."""
    records = []
    with tempfile.TemporaryDirectory() as work:
        for case in cases or CASES:
            runfile, size_table = CASES[case]
            if not (RUNS / runfile).exists():
                continue
            for size in sizes:
                n, nt = size_table[size]
                t_lap = laplacian_solve_time(runfile, n, nt)
                configs = [(coupling, p) for coupling in ("picard", "newton") for p in ranks]
                best = [None] * len(configs)
                for _ in range(repeat):  # rounds over all configurations: a busy spell hits them alike
                    for i, (coupling, p) in enumerate(configs):
                        if best[i] is None or "error" not in best[i]:
                            result = petsc_run(runfile, n, nt, coupling, p, work)
                            if best[i] is None or "error" in result or result["wall"] < best[i]["wall"]:
                                best[i] = result
                rows = [{"case": case, "size": size, "n": n, "nt": nt, "coupling": coupling, "ranks": p, **b}
                        for (coupling, p), b in zip(configs, best)]
                base = baseline_run(runfile, n, nt, baseline_iterations)
                picard_its = next((r["iterations"] for r in rows if r["coupling"] == "picard" and "wall" in r),
                                  base["iterations"])
                base_wall = base["per_iteration"] * picard_its if base["estimated"] else base["wall"]
                for rec in rows:
                    rec["baseline_wall"], rec["baseline_estimated"] = base_wall, base["estimated"]
                    if "wall" in rec:
                        rec["vs_baseline"] = base_wall / rec["wall"]
                        rec["bound"] = rec["grid_solves"] * t_lap
                        rec["vs_bound"] = rec["wall"] / rec["bound"]
                    print(format_row(rec), file=stream, flush=True)
                records += rows
    return records


HEADER = (f"{'case':<14}{'size':<16}{'coupling':<8}{'P':>2}{'wall s':>9}{'its':>5}{'lin its':>9}"
          f"{'s/it':>8}{'MB':>7}{'scipy s':>9}{'speed-up':>9}{'bound s':>9}{'x bound':>8}")


def format_row(r):
    size = f"{'x'.join(map(str, r['n']))}x{r['nt']}"
    if "error" in r:
        return f"{r['case']:<14}{size:<16}{r['coupling']:<8}{r['ranks']:>2}  {r['error']}"
    return (f"{r['case']:<14}{size:<16}{r['coupling']:<8}{r['ranks']:>2}{r['wall']:9.2f}{r['iterations']:5d}"
            f"{r['linear_iterations']:9d}{r['per_iteration']:8.3f}{r['peak_mb']:7.0f}"
            f"{r['baseline_wall']:8.1f}{'*' if r['baseline_estimated'] else ' '}"
            f"{r['vs_baseline']:9.2f}{r['bound']:9.2f}{r['vs_bound']:8.2f}")


def main(args):
    print(f"machine: {os.cpu_count()} cores, load {os.getloadavg()[0]:.2f} {os.getloadavg()[1]:.2f}, "
          f"{os.uname().machine}")
    print(HEADER)
    records = bench(sizes=args.sizes, ranks=args.ranks, cases=args.case,
                    baseline_iterations=args.baseline_iterations, repeat=args.repeat)
    print(f"load after: {os.getloadavg()[0]:.2f}" + ("   (* scipy time estimated from "
          f"{args.baseline_iterations} iterations)" if args.baseline_iterations else "")
          + (f"   (PETSc rows: fastest of {args.repeat} runs)" if args.repeat > 1 else ""))
    if args.json:
        pathlib.Path(args.json).write_text(json.dumps(records, indent=1))
    return 0
