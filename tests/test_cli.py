"""The `mfgpde` command end to end: in subprocesses (serial and under mpirun) where the
process is part of the claim (PETSc options, which petsc4py reads once per process; the
bare command's exit status), in this process (cli.main, conftest.run_in_process: what a
subprocess would show on stdout, stderr and as status) for the rest.

Contract: bad input gives one line on stderr naming the key and the problem, exit
status 2, no traceback, and no output file written or overwritten; an unconverged
solve exits 3 and writes only <stem>.unconverged.h5; `--set` values are TOML;
PETSc options come from the command line and from the [petsc] table.
"""
import json
import shutil

import h5py
import pytest

from conftest import RUNS, mfgpde, run_in_process

RUN1D = RUNS / "lq_mfg_1d.toml"
LQ2D = (RUNS / "lq_mfg_2d.toml").read_text()
DESIGNER = (RUNS / "robust_designer_scalar.toml").read_text()
CONGESTION = (RUNS / "congestion_1d.toml").read_text()
SMALL = ["--set", "grid.n=[40]", "--set", "time.nt=10"]
NOPLOTS = ["--set", "output.plots=false"]
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
KNOWN_BYTES = b"previous output: must survive a failed run\n"


# --- helpers ------------------------------------------------------------------------------

def _lines(text):
    return [line for line in text.splitlines() if line.strip()]


def _no_traceback(proc):
    assert "Traceback" not in proc.stdout, proc.stdout
    assert "Traceback" not in proc.stderr, proc.stderr


def _one_line_error(proc, *keys):
    """stderr is exactly one non-empty line, naming one of `keys`; no traceback anywhere."""
    _no_traceback(proc)
    lines = _lines(proc.stderr)
    assert len(lines) == 1, f"expected one line on stderr, got {proc.stderr!r}"
    assert lines[0].startswith("mfgpde: error:"), lines[0]
    assert any(k in lines[0] for k in keys), f"{lines[0]!r} names none of {keys}"
    return lines[0]


def _snapshot(root):
    """Every file and folder under root, with the bytes of the files."""
    return {str(p.relative_to(root)): (p.read_bytes() if p.is_file() else "<dir>")
            for p in sorted(root.rglob("*"))}


def _runfile(tmp_path, text=None, append=None):
    """A run file in tmp_path: `text` verbatim, or the 1-D run file with `append` added."""
    path = tmp_path / "study.toml"
    path.write_text(text if text is not None else RUN1D.read_text() + (append or ""))
    return path


def _attrs(path):
    with h5py.File(path, "r") as f:
        return {k: (v.decode() if isinstance(v, bytes) else v) for k, v in f.attrs.items()}


# --- 1. bad input -------------------------------------------------------------------------

# id -> (how to build the command: "sets" (extra --set values), "argv" (raw extra arguments),
#        "text" (a run file verbatim), "append" (added to the 1-D run file),
#        "runfile" (a path relative to tmp_path), "outdir" (-o names a directory)),
#       keys of which the message must name one
BAD = {
    "malformed-toml": ({"text": "[model\nname = 'lq_mfg'\n"}, ["study.toml"]),
    "missing-runfile": ({"runfile": "no_such_study.toml"}, ["no_such_study.toml"]),
    "empty-runfile": ({"text": ""}, ["model.name"]),
    "unknown-section": ({"append": "\n[solvr]\ndamping = 0.5\n"}, ["[solvr]"]),
    "unknown-section-set": ({"sets": ["solvr.damping=0.5"]}, ["solvr"]),
    "unknown-key-grid": ({"sets": ["grid.nn=[40]"]}, ["grid.nn"]),
    "unknown-key-time": ({"sets": ["time.ntt=10"]}, ["time.ntt"]),
    "unknown-key-solver": ({"sets": ["solver.dampin=0.5"]}, ["solver.dampin"]),
    "unknown-model": ({"sets": ['model.name="lq_mgf"']}, ["model.name"]),
    "unknown-model-parameter": ({"sets": ["model.sigmaa=0.5"]}, ["model.sigmaa"]),
    "sigma-negative": ({"sets": ["model.sigma=-0.1"]}, ["model.sigma"]),
    "sigma-not-a-number": ({"sets": ["model.sigma=abc"]}, ["model.sigma"]),
    "n-zero": ({"sets": ["grid.n=[0]"]}, ["grid.n"]),
    "n-negative": ({"sets": ["grid.n=[-5]"]}, ["grid.n"]),
    "n-fractional": ({"sets": ["grid.n=[2.5]"]}, ["grid.n"]),
    "n-string": ({"sets": ['grid.n="abc"']}, ["grid.n"]),
    "n-empty": ({"sets": ["grid.n=[]"]}, ["grid.n"]),
    "lower-above-upper": ({"sets": ["grid.lower=[4.0]"]}, ["grid.upper", "grid.lower"]),
    "lower-equals-upper": ({"sets": ["grid.lower=[3.5]"]}, ["grid.upper", "grid.lower"]),
    "lower-two-entries": ({"sets": ["grid.lower=[-2.5, 0.0]"]}, ["grid.lower"]),
    "n-two-entries": ({"sets": ["grid.n=[40, 40]"]}, ["grid.lower", "grid.n"]),
    "n-four-axes": ({"sets": ["grid.n=[4, 4, 4, 4]"]}, ["grid.n"]),
    "T-zero": ({"sets": ["time.T=0"]}, ["time.T"]),
    "T-negative": ({"sets": ["time.T=-1.0"]}, ["time.T"]),
    "T-string": ({"sets": ['time.T="abc"']}, ["time.T"]),
    "nt-zero": ({"sets": ["time.nt=0"]}, ["time.nt"]),
    "nt-negative": ({"sets": ["time.nt=-3"]}, ["time.nt"]),
    "nt-fractional": ({"sets": ["time.nt=1.5"]}, ["time.nt"]),
    "s0-zero": ({"sets": ["model.s0=0"]}, ["model.s0"]),
    # exp(-(1e6 - x)^2 / (2 s0^2)) underflows to 0 at every grid point: no mass to normalise
    "m0-no-mass": ({"sets": ["model.mu0=1e6"]}, ["initial density"]),
    "damping-zero": ({"sets": ["solver.damping=0"]}, ["solver.damping"]),
    "damping-above-one": ({"sets": ["solver.damping=1.5"]}, ["solver.damping"]),
    "set-without-equals": ({"argv": ["--set", "gridn40"]}, ["gridn40"]),
    # a run file is data: a Python expression is a string, never evaluated
    "runfile-is-data": ({"sets": ["""model.sigma="__import__('os').system('touch pwned') or 0.5\""""]},
                        ["model.sigma"]),
    "output-is-directory": ({"outdir": True}, ["output.file"]),
    "sigma-overflows": ({"sets": ["model.sigma=1e200"]}, ["model.sigma"]),
    "nt-beyond-memory": ({"sets": ["time.nt=1000000000000"]}, ["time.nt"]),
    "box-not-representable": ({"sets": ["grid.lower=[-1e308]", "grid.upper=[1e308]"]}, ["grid.upper"]),
    "tolerance-below-precision": ({"sets": ["solver.tolerance=1e-300"]}, ["solver.tolerance"]),
    "axis-count-in-n": ({"sets": ["grid.lower=[-1, -1]", "grid.upper=[1, 1]"]}, ["grid.n: one cell count per axis"]),
    "plot-time-before-zero": ({"sets": ["output.plot_times=[-0.1]"]}, ["output.plot_times"]),
    "newton-too-large": ({"sets": ["solver.coupling='newton'", "solver.newton_linear='direct'", "grid.n=[200000]",
                                   "time.nt=100"]},
                         ["solver.newton_linear", "(estimate)"]),
    # fieldsplit's two factorisations: refused by the memory guard, naming the choice
    "newton-fieldsplit-too-large": ({"sets": ["solver.coupling='newton'", "solver.newton_linear='fieldsplit'",
                                              "grid.n=[200000]", "time.nt=100"]}, ["solver.newton_linear"]),
    # 2-D, 1.02e6 space-time unknowns: within the memory estimate on a ~24 GB machine (then the
    # factorisation limit names solver.coupling), beyond it on a smaller one (solver.newton_linear)
    "newton-beyond-factorisation-limit": ({"text": LQ2D, "sets": ["solver.coupling='newton'",
                                                                   "solver.newton_linear='fieldsplit'",
                                                                   "grid.n=[100,100]", "time.nt=51"]},
                                          ["solver.coupling", "solver.newton_linear"]),
    "picard-iterations-zero": ({"sets": ["solver.picard_iterations=0"]}, ["solver.picard_iterations"]),
    "single-dash-output": ({"argv": ["-output", "y.h5"]}, ["--output"]),
    "single-dash-set": ({"argv": ["-set", "grid.n=[40]"]}, ["did you mean --set?"]),
    "petsc-bad-type": ({"argv": ["-fp_ksp_type", "nonsense"]}, ["petsc"]),
    # a value PETSc cannot read, for an option a solver reads (in 1-D the Fokker-Planck solve is
    # a direct one unless -fp_ksp_type asks for a Krylov method)
    "petsc-bad-value": ({"argv": ["-fp_ksp_type", "gmres", "-fp_ksp_gmres_restart", "abc"]}, ["petsc"]),
    # accepted one by one, refused together once a solve sets the KSP up (in Picard's
    # Fokker-Planck sweep; inside Newton's Python preconditioner)
    "petsc-clash-in-solve": ({"argv": ["-fp_ksp_type", "richardson", "-fp_ksp_pc_side", "right",
                                       "-fp_ksp_norm_type", "none"]}, ["KSP richardson does not support"]),
    "petsc-clash-in-newton": ({"sets": ["solver.coupling='newton'"],
                               "argv": ["-newton_march_ksp_type", "richardson", "-newton_march_ksp_pc_side", "right",
                                        "-newton_march_ksp_norm_type", "none"]}, ["KSP richardson does not support"]),
    "congestion-alpha-zero": ({"text": CONGESTION, "sets": ["model.alpha=0.0"]}, ["model.alpha"]),
    "congestion-unknown-coupling": ({"text": CONGESTION, "sets": ["model.coupling='quadratic'"]}, ["model.coupling"]),
    # the robust designer game (runs/robust_designer_scalar.toml): an ill-posed horizon and bad parameters
    "designer-beyond-conjugate-time": ({"text": DESIGNER, "sets": ["model.Gamma=0.5"]},
                                       ["time.T: 1 is beyond the conjugate time 0.785398"]),
    "designer-R-not-positive": ({"text": DESIGNER, "sets": ["model.R=-1.0"]}, ["model.R"]),
    "designer-Gamma-not-positive": ({"text": DESIGNER, "sets": ["model.Gamma=-1.0"]},
                                    ["model.Gamma: must be positive definite"]),
    "designer-Gamma-wrong-shape": ({"text": DESIGNER, "sets": ["model.Gamma=[[1.0, 0.0], [0.0, 1.0]]"]},
                                   ["model.Gamma"]),
    "designer-Q-not-symmetric": ({"text": DESIGNER.replace('players = 1', 'players = 2'),
                                  "sets": ["grid.n=[4,4,4]", "grid.lower=[-1.0,-1.0,-1.0]", "grid.upper=[1.0,1.0,1.0]",
                                           "model.Q=[[1.0,0.5,0.0],[0.0,1.0,0.0],[0.0,0.0,1.0]]"]}, ["model.Q"]),
    "designer-players-mismatch": ({"text": DESIGNER, "sets": ["model.players=2"]}, ["model.players"]),
    "designer-graph-unknown": ({"text": DESIGNER, "sets": ["model.graph='star'", "model.populations=3"]},
                               ["model.graph"]),
    "designer-graph-self-loop": ({"text": DESIGNER, "sets": ["model.graph=[[1], [1]]"]}, ["model.graph"]),
    "designer-mu0-per-population": ({"text": DESIGNER, "sets": ["model.graph='chain'", "model.populations=3",
                                                               "model.mu0=[0.0, 1.0]"]}, ["model.mu0"]),
    "designer-newton-populations": ({"text": DESIGNER, "sets": ["model.graph='ring'", "model.populations=3",
                                                               "solver.coupling='newton'"]}, ["solver.coupling"]),
    "designer-tracking": ({"text": DESIGNER, "sets": ["model.tracking='median'"]}, ["model.tracking"]),
}


# Every case runs with a previous output file at the -o path, in this process unless it
# passes PETSc options (a subprocess).  Without one, a subset that stops at each stage of
# `mfgpde run` (reading, --set, validation, model, initial density, output path) keeps the
# runtime down; the snapshot of the working folder checks the rest.
NO_OUTPUT_CASES = ["malformed-toml", "set-without-equals", "unknown-key-time", "n-zero",
                   "nt-zero", "unknown-model-parameter", "sigma-negative", "m0-no-mass",
                   "output-is-directory"]
PETSC_CASES = ["petsc-bad-type", "petsc-bad-value", "petsc-clash-in-solve", "petsc-clash-in-newton"]


def _case(case, preexisting, in_subprocess):
    return pytest.param(case, preexisting, in_subprocess, marks=[pytest.mark.slow] if in_subprocess else [],
                        id=f"{case}-{'existing' if preexisting else 'no'}-output")


@pytest.mark.parametrize("case, preexisting, in_subprocess",
                         [_case(c, True, c in PETSC_CASES) for c in BAD]
                         + [_case(c, False, False) for c in NO_OUTPUT_CASES])
def test_bad_input(case, preexisting, in_subprocess, tmp_path):
    spec, keys = BAD[case]
    work = tmp_path / "work"
    work.mkdir()
    out = work / "x.h5"
    if spec.get("outdir"):
        out.mkdir()
        if preexisting:
            (out / "keep.h5").write_bytes(KNOWN_BYTES)
    elif preexisting:
        out.write_bytes(KNOWN_BYTES)
    if "runfile" in spec:
        runfile = tmp_path / spec["runfile"]
    elif "text" in spec or "append" in spec:
        runfile = _runfile(tmp_path, spec.get("text"), spec.get("append"))
    else:
        runfile = RUN1D
    sets = [a for s in spec.get("sets", []) for a in ("--set", s)]
    before = _snapshot(work)
    # the bad value comes after the small-grid overrides: the last --set wins
    command = mfgpde if in_subprocess else run_in_process
    proc = command("run", runfile, *SMALL, *NOPLOTS, *sets, *spec.get("argv", []), "-o", out, cwd=work)
    assert proc.returncode == 2, (proc.returncode, proc.stdout, proc.stderr)
    _one_line_error(proc, *keys)
    assert _snapshot(work) == before  # nothing written, overwritten or left behind
    assert out.exists() == (preexisting or bool(spec.get("outdir")))
    if preexisting and not spec.get("outdir"):
        assert out.read_bytes() == KNOWN_BYTES


def test_output_name_the_writer_cannot_create(tmp_path):
    """A legal name whose temporary sibling is too long is refused before the solve."""
    before = _snapshot(tmp_path)
    proc = run_in_process("run", RUN1D, *SMALL, *NOPLOTS, "-o", tmp_path / ("b" * 247 + ".h5"), cwd=tmp_path)
    assert proc.returncode == 2, (proc.returncode, proc.stderr)
    _one_line_error(proc, "output.file")
    assert _snapshot(tmp_path) == before


def test_output_parent_is_a_file(tmp_path):
    (tmp_path / "afile").write_bytes(KNOWN_BYTES)
    before = _snapshot(tmp_path)
    proc = run_in_process("run", RUN1D, *SMALL, *NOPLOTS, "-o", tmp_path / "afile" / "x.h5", cwd=tmp_path)
    assert proc.returncode == 2, (proc.returncode, proc.stderr)
    _one_line_error(proc, "output.file")
    assert _snapshot(tmp_path) == before


@pytest.mark.slow
def test_no_command_is_bad_input():
    proc = mfgpde()  # a subprocess: the bare command, through the interpreter's exit
    assert proc.returncode == 2
    _one_line_error(proc, "command", "mfgpde")


# --- 2. bad input under MPI ---------------------------------------------------------------

@pytest.mark.mpi
@pytest.mark.parametrize("bad, key", [("model.sigma=-0.1", "model.sigma"),
                                      ("model.mu0=1e6", "initial density")],
                         ids=["sigma-negative", "m0-no-mass"])
def test_bad_input_mpi(bad, key, tmp_path):
    out = tmp_path / "x.h5"
    out.write_bytes(KNOWN_BYTES)
    before = _snapshot(tmp_path)
    proc = mfgpde("run", RUN1D, *SMALL, *NOPLOTS, "--set", bad, "-o", out, nproc=2, cwd=tmp_path)
    assert proc.returncode != 0, (proc.stdout, proc.stderr)
    _no_traceback(proc)
    errors = [line for line in _lines(proc.stderr) if line.startswith("mfgpde: error:")]
    assert len(errors) == 1, proc.stderr  # rank 0 only
    assert key in errors[0]
    assert proc.stderr.count(errors[0]) == 1
    assert _snapshot(tmp_path) == before


# --- 3. a good run ------------------------------------------------------------------------

@pytest.fixture(scope="module")
def good(tmp_path_factory):
    """One converged small run (plots on, as in the run file); (CompletedProcess, path)."""
    out = tmp_path_factory.mktemp("good") / "x.h5"
    proc = run_in_process("run", RUN1D, *SMALL, "--set", "model.sigma=0.3", "-o", out, cwd=out.parent)
    return proc, out


@pytest.mark.slow
def test_good_run_layout(good):
    proc, out = good
    assert proc.returncode == 0, proc.stderr
    _no_traceback(proc)
    assert "converged" in proc.stdout
    assert out.is_file()
    with h5py.File(out, "r") as f:
        assert f["grid/x"].shape == (40,)
        assert f["time/t"].shape == (11,)
        assert f["time/t"][0] == 0.0 and f["time/t"][-1] == pytest.approx(1.0)
        assert f["solution/u"].shape == (11, 40)
        assert f["solution/m"].shape == (11, 40)
    attrs = _attrs(out)
    assert attrs["status"].startswith("converged")
    assert attrs["converged"] == 1
    assert attrs["model"] == "lq_mfg"
    cfg = json.loads(attrs["config"])
    assert cfg["grid"]["n"] == [40]
    assert cfg["time"]["nt"] == 10
    assert cfg["output"]["file"] == str(out)


def test_set_values_are_toml(good):
    _, out = good
    cfg = json.loads(_attrs(out)["config"])
    sigma = cfg["model"]["sigma"]
    assert isinstance(sigma, float) and sigma == 0.3
    assert isinstance(cfg["grid"]["n"][0], int)


def test_good_run_writes_plots_from_run_file(good):
    proc, out = good
    pngs = [line.split("wrote ", 1)[1] for line in proc.stdout.splitlines()
            if line.startswith("mfgpde: wrote") and line.endswith(".png")]
    assert pngs
    for png in pngs:
        with open(png, "rb") as f:
            assert f.read(8) == PNG_SIGNATURE


# --- 4. info ------------------------------------------------------------------------------

def test_info(good):
    _, out = good
    proc = run_in_process("info", out)
    assert proc.returncode == 0, proc.stderr
    _no_traceback(proc)
    assert "lq_mfg" in proc.stdout
    assert "converged" in proc.stdout


@pytest.mark.parametrize("kind", ["missing", "text", "foreign-hdf5"])
def test_info_bad_file(kind, tmp_path):
    path = tmp_path / "y.h5"
    if kind == "text":
        path.write_text("not HDF5\n")
    elif kind == "foreign-hdf5":
        with h5py.File(path, "w") as f:
            f["data"] = [1, 2, 3]
    proc = run_in_process("info", path)
    assert proc.returncode == 2, (proc.stdout, proc.stderr)
    _one_line_error(proc, str(path))


# --- 5. plot ------------------------------------------------------------------------------

def test_plot(good, tmp_path):
    _, out = good
    copy = tmp_path / "copy.h5"
    shutil.copyfile(out, copy)
    proc = run_in_process("plot", copy)
    assert proc.returncode == 0, proc.stderr
    _no_traceback(proc)
    pngs = [line.split("wrote ", 1)[1] for line in _lines(proc.stdout) if line.startswith("mfgpde: wrote")]
    assert pngs
    for png in pngs:
        assert png.endswith(".png")
        assert str(tmp_path) in png  # beside the file
        with open(png, "rb") as f:
            assert f.read(8) == PNG_SIGNATURE
    assert sorted(p.name for p in tmp_path.glob("*.png")) == sorted(png.rsplit("/", 1)[1] for png in pngs)


# --- 6. unconverged -----------------------------------------------------------------------

def test_unconverged_keeps_previous_output(good, tmp_path):
    _, good_out = good
    out = tmp_path / "x.h5"
    shutil.copyfile(good_out, out)
    original = out.read_bytes()
    proc = run_in_process("run", RUN1D, *SMALL, *NOPLOTS, "--set", "solver.max_iterations=2", "-o", out,
                          cwd=tmp_path)
    assert proc.returncode == 3, (proc.stdout, proc.stderr)
    line = _one_line_error(proc, "not converged")
    assert "x.unconverged.h5" in line
    assert out.read_bytes() == original
    side = tmp_path / "x.unconverged.h5"
    assert side.is_file()
    attrs = _attrs(side)
    assert attrs["status"].startswith("not converged")
    assert attrs["converged"] == 0
    assert not list(tmp_path.glob("*.png"))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["x.h5", "x.unconverged.h5"]


# --- 7. PETSc options ---------------------------------------------------------------------

@pytest.mark.slow
def test_petsc_option_on_command_line(tmp_path):
    proc = mfgpde("run", RUN1D, *SMALL, *NOPLOTS, "-o", tmp_path / "x.h5", "-hjb_snes_monitor")
    assert proc.returncode == 0, proc.stderr
    _no_traceback(proc)
    assert "SNES Function norm" in proc.stdout


@pytest.mark.slow
def test_petsc_table_in_run_file(tmp_path):
    text = RUN1D.read_text()
    assert "\n[petsc]\n" in text
    runfile = _runfile(tmp_path, text.replace("\n[petsc]\n", "\n[petsc]\nhjb_snes_monitor = true\n"))
    proc = mfgpde("run", runfile, *SMALL, *NOPLOTS, "-o", tmp_path / "x.h5")
    assert proc.returncode == 0, proc.stderr
    _no_traceback(proc)
    assert "SNES Function norm" in proc.stdout


@pytest.mark.slow
def test_petsc_table_false_leaves_option_unset(tmp_path):
    proc = mfgpde("run", RUN1D, *SMALL, *NOPLOTS, "--set", "petsc.hjb_snes_monitor=false",
                  "-o", tmp_path / "x.h5")
    assert proc.returncode == 0, proc.stderr
    assert "SNES Function norm" not in proc.stdout


@pytest.mark.slow
def test_misspelled_petsc_option_is_reported(tmp_path):
    proc = mfgpde("run", RUN1D, *SMALL, *NOPLOTS, "-o", tmp_path / "x.h5", "-hjb_snes_monitr")
    assert proc.returncode == 0, proc.stderr
    _no_traceback(proc)
    output = proc.stdout + proc.stderr
    assert "unused" in output
    assert "hjb_snes_monitr" in output
    assert "SNES Function norm" not in proc.stdout


@pytest.mark.slow
def test_out_of_range_petsc_value_fails_the_solve_in_one_line(tmp_path):
    """PETSc 3.18 takes a negative rtol; the solve it breaks is one line and exit 3."""
    out = tmp_path / "x.h5"
    proc = mfgpde("run", RUN1D, *SMALL, *NOPLOTS, "-fp_ksp_type", "gmres", "-fp_ksp_rtol", "-1", "-o", out)
    assert proc.returncode == 3, (proc.returncode, proc.stderr)
    assert proc.stderr.startswith("mfgpde: error: solve failed: Picard iteration 1: Fokker–Planck solve failed")
    assert "Traceback" not in proc.stderr and not out.exists()


@pytest.mark.slow
def test_plot_times_follow_a_shorter_horizon(tmp_path):
    """runs/lq_mfg_1d.toml plots at 0, 0.5, 1: with T = 0.8 the last is plotted at T, said."""
    out = tmp_path / "x.h5"
    proc = mfgpde("run", RUN1D, *SMALL, "--set", "time.T=0.8", "-o", out)
    assert proc.returncode == 0, proc.stderr
    assert "note: output.plot_times 1 beyond T = 0.8: plotted at T" in proc.stdout
    assert (tmp_path / "x_snapshots.png").read_bytes().startswith(PNG_SIGNATURE)
