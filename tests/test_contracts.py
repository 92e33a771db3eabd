"""Contracts under faults: a NaN inside Newton, restarts inside Newton, and
extreme inputs that must give exit 2 with one line naming the key (or a solution, or
exit 3 with one line), never a traceback or a page of warnings."""
import contextlib
import io
import warnings

import h5py
import numpy as np
import petsc4py
import pytest

petsc4py.init()
from conftest import RUNS  # noqa: E402
from mfgpde import cli  # noqa: E402
from mfgpde.config import load, validate  # noqa: E402
from mfgpde.pipelines.mfg import run  # noqa: E402
from mfgpde.solvers import SolverError  # noqa: E402


def _newton_cfg(calls):
    return validate({"model": {"name": "test_poisoned_lq", "calls": calls},
                     "grid": {"lower": [-2.5], "upper": [3.5], "n": [30]}, "time": {"T": 1.0, "nt": 8},
                     "solver": {"coupling": "newton"}})


# 100 calls of H: NaN already in the first Newton residual; 125: during Newton iteration 1
@pytest.mark.parametrize("calls, iteration", [(100, 0), (125, 1)])
def test_nan_inside_newton_names_iteration_level_and_field_and_writes_nothing(calls, iteration, tmp_path,
                                                                             poisoned_lq):
    cfg = _newton_cfg(calls)
    poisoned_lq.arm(cfg)
    with pytest.raises(SolverError, match=rf"Newton after {iteration} iterations: the HJB residual \(u\) is not finite "
                                          r"\(NaN or Inf\) at time level \d+ \(t = [\d.]+\)"):
        run(cfg, tmp_path / "x.h5", verbose=False)
    assert list(tmp_path.iterdir()) == []


class _Stop(Exception):
    pass


NEWTON_STUDY = ["solver.coupling='newton'", "output.checkpoint_every=1", "output.plots=false",
                "grid.n=[40]", "time.nt=10", "solver.picard_iterations=2"]


def _history(path):
    with h5py.File(path) as f:
        return f.attrs["status"], {k: f["history"][k][()] for k in f["history"]}, f["solution/u"][()]


@pytest.fixture(scope="module")
def newton_reference(tmp_path_factory):
    out = tmp_path_factory.mktemp("ref") / "ref.h5"
    run(load(RUNS / "congestion_1d.toml", NEWTON_STUDY), out, verbose=False)
    return _history(out)


# stopped at the hand-over to Newton (checkpoint 2), after Newton iterate 1 or 2
# (checkpoints 3, 4); restarted with the default picard_iterations = 1 (solver settings may
# change on a restart)
@pytest.mark.parametrize("stop_at, restart_set", [(2, []), (3, []), (4, []), (4, ["solver.picard_iterations=1"])])
def test_restart_inside_newton_gives_the_uninterrupted_history_and_status(stop_at, restart_set, tmp_path,
                                                                          newton_reference):
    out = tmp_path / "a.h5"

    def stop(k, u, m):
        checkpointer(k, u, m)
        if k == stop_at:
            raise _Stop

    import mfgpde.pipelines.mfg as runner
    real = runner.Checkpointer
    checkpointer = None

    def make(*args, **kwargs):
        nonlocal checkpointer
        checkpointer = real(*args, **kwargs)
        return stop

    runner.Checkpointer = make
    try:
        with pytest.raises(_Stop):
            run(load(RUNS / "congestion_1d.toml", NEWTON_STUDY), out, verbose=False)
    finally:
        runner.Checkpointer = real
    run(load(RUNS / "congestion_1d.toml", NEWTON_STUDY + restart_set), out, verbose=False,
        restart=tmp_path / "a.ckpt.h5")
    status, got, u = _history(out)
    ref_status, ref, ref_u = newton_reference
    assert status == ref_status
    assert np.max(np.abs(u - ref_u)) < 1e-12
    for key in ("iteration", "newton", "residual_u", "residual_m"):
        np.testing.assert_allclose(got[key], ref[key], rtol=1e-6, atol=1e-14, err_msg=key)


def _cli(tmp_path, runfile, *sets):
    """`mfgpde run` in-process on a tiny study: (exit code, stderr lines, warnings, files written)."""
    argv = ["run", str(RUNS / runfile), "-o", str(tmp_path / "x.h5"), "--set", "output.plots=false"]
    for item in sets:
        argv += ["--set", item]
    err = io.StringIO()
    with warnings.catch_warnings(record=True) as caught, contextlib.redirect_stderr(err), \
            contextlib.redirect_stdout(io.StringIO()):
        warnings.simplefilter("always")
        try:
            code = cli.main(argv)
        except SystemExit as e:
            code = e.code
    lines = [line for line in err.getvalue().splitlines() if line.strip()]
    return code, lines, [str(w.message) for w in caught], sorted(p.name for p in tmp_path.iterdir())


PDE_1D, PDE_2D = ["grid.n=[12]", "time.nt=4"], ["grid.n=[6, 6]", "time.nt=4"]
PDE_3D = ["grid.n=[4, 4, 4]", "time.nt=4"]
LF, DISCRETE = ["grid.n=8", "time.nt=8"], ["grid.n=6", "solver.leader_points=5"]
BAD_INPUT = [  # (run file, overrides, the key the one line must name)
    ("lq_mfg_1d.toml", PDE_1D + ["grid.lower=[0]", "grid.upper=[1e-300]"], "grid.upper"),
    ("lq_mfg_1d.toml", PDE_1D + ["grid.upper=[1e300]"], "grid.upper"),
    ("lq_mfg_2d.toml", PDE_2D + ["time.T=1e-300"], "time.T"),
    ("lq_mfg_1d.toml", PDE_1D + ["model.s0=1e300"], "model.s0"),
    ("lq_mfg_1d.toml", PDE_1D + ["model.s0=1e-300"], "model.s0"),
    ("lq_mfg_2d.toml", PDE_2D + ["model.mu0=[1e300, 0.0]"], "model.mu0"),
    ("congestion_1d.toml", PDE_1D + ["model.sigma=1e200"], "model.sigma"),
    ("congestion_1d.toml", PDE_1D + ["model.w=1e300"], "model.w"),
    ("congestion_2d.toml", PDE_2D + ["model.s0=1e-300"], "model.s0"),
    ("robust_designer_scalar.toml", PDE_1D + ["model.B=[[1e200]]"], "model.B"),
    ("robust_designer_scalar.toml", PDE_1D + ["model.mu0=1e300"], "model.mu0"),
    ("robust_designer_tu2.toml", PDE_3D + ["model.Gamma=inf"], "model.Gamma"),
    ("robust_designer_scalar.toml", PDE_1D + ["model.B=[[1e100]]", "model.R=1e-100"], "model.B"),
    ("stackelberg_lq.toml", LF + ["grid.window=0.95"], "grid.window"),  # above 1 - 1/n: no cell centre there
    ("stackelberg_lq.toml", LF + ["grid.x0=[-1e308, 1e308]"], "grid.x0"),
    ("stackelberg_saturated.toml", LF + ["grid.z=[0.0, 1e-300]"], "grid.z"),
    ("stackelberg_lq.toml", LF + ["time.T=1e300"], "time.T"),
    ("stackelberg_lq.toml", LF + ["model.R0=1e-300"], "model.R0"),
    ("stackelberg_lq.toml", LF + ["model.Gamma1=1e300"], "model.Gamma1"),
    ("stackelberg_saturated.toml", LF + ["model.sigma0=1e300"], "model.sigma0"),
    ("stackelberg_lq.toml", LF + ["model.A=1e100"], "time.T"),  # the Riccati solution blows up: no warnings
    ("stackelberg_lq.toml", LF + ["model.R=1e-100"], "time.T"),
    ("infection_vaccination.toml", DISCRETE + ["model.k=1e308"], "model.k"),  # a huge payoff
    ("infection_vaccination.toml", DISCRETE + ["model.lam=1e300"], "model.lam"),
    ("infection_vaccination.toml", DISCRETE + ["model.price=[0.0, 1e308]"], "model.price"),
    ("technology_adoption.toml", DISCRETE + ["model.price=[-1e308, 1e308]"], "model.price"),
    ("technology_adoption.toml", DISCRETE + ["model.competitor_price=1e308"], "model.competitor_price"),
]


def _ids(cases):
    """run-file stem and the overrides beyond the tiny-study ones, e.g. lq_mfg_1d:model.s0=1e300."""
    base = set(PDE_1D + PDE_2D + PDE_3D + LF + DISCRETE)
    return [f"{c[0][:-5]}:{' '.join(x for x in c[1] if x not in base)}" for c in cases]


@pytest.mark.parametrize("runfile, sets, key", BAD_INPUT, ids=_ids(BAD_INPUT))
def test_bad_input_is_one_line_naming_the_key(runfile, sets, key, tmp_path):
    code, lines, caught, files = _cli(tmp_path, runfile, *sets)
    assert (code, len(lines), caught, files) == (2, 1, [], []), (lines, caught)
    assert lines[0].startswith(f"mfgpde: error: {key}:"), lines


SOLVED = [  # (run file, overrides): extreme but meaningful inputs with a solution
    ("robust_designer_scalar.toml", PDE_1D + ["model.Q=0", "model.S=0", "model.Gamma=0.5"]),  # M < 0, φ ≡ 0
    ("stackelberg_lq.toml", LF + ["model.B=0.0"]),  # the followers' control moves nothing
    ("stackelberg_saturated.toml", LF + ["model.B=0.0"]),
    ("stackelberg_lq.toml", LF + ["model.B0=0.0"]),  # a leader with no effect
]


@pytest.mark.parametrize("runfile, sets", SOLVED, ids=_ids(SOLVED))
def test_extreme_input_with_a_solution_is_solved_quietly(runfile, sets, tmp_path):
    code, lines, caught, files = _cli(tmp_path, runfile, *sets)
    assert (code, lines, caught) == (0, [], []) and "x.h5" in files
