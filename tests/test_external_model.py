"""Models from outside the package (`[model] source = ...`), run the way a user runs them.

Contract: a copy of a built-in model under a new name, loaded from a file beside the run
file, gives the built-in model's fields (1 and 2 ranks); a syntax error, a missing method
or an exception in the user's file is one line naming the file and line, exit 2, nothing
written; an unknown name lists every model by family; the example in examples/ runs.
"""
import re

import h5py
import numpy as np
import pytest

from conftest import ROOT, RUNS, mfgpde

LQ_SOURCE = (ROOT / "mfgpde" / "models" / "lq_mfg.py").read_text()
SMALL = ["--set", "grid.n=[12,10]", "--set", "time.nt=6", "--set", "output.plots=false"]


def _copy_of_lq(folder, name="lq_copy", body=None):
    """lq_mfg.py as a user's file: absolute imports from mfgpde, a new name."""
    text = body if body is not None else LQ_SOURCE
    text = (text.replace("from ..closedforms import", "from mfgpde.closedforms import")
            .replace("from .base import MFGModel\nfrom .registry import register", "from mfgpde import MFGModel, register")
            .replace('name = "lq_mfg"', f'name = "{name}"'))
    path = folder / "my_lq.py"
    path.write_text(text)
    return path


def _runfile(folder, source="my_lq.py", name="lq_copy"):
    text = (RUNS / "lq_mfg_2d.toml").read_text().replace('name = "lq_mfg"', f'name = "{name}"\nsource = "{source}"')
    path = folder / "run.toml"
    path.write_text(text)
    return path


def _fields(path):
    with h5py.File(path, "r") as f:
        return {k: f["solution"][k][()] for k in ("u", "m")}


def _one_line(proc, *needles, mpi=False):
    """One line on stderr naming each of `needles` (under mpirun: one mfgpde line beside
    Open MPI's abort banner)."""
    lines = [ln for ln in proc.stderr.splitlines() if ln.strip() and (not mpi or ln.startswith("mfgpde:"))]
    assert len(lines) == 1 and "Traceback" not in proc.stderr, proc.stderr
    for needle in needles:
        assert needle in lines[0], lines[0]
    return lines[0]


def _builtin(folder, nproc=None):
    out = folder / "lq.h5"
    proc = mfgpde("run", RUNS / "lq_mfg_2d.toml", *SMALL, "-o", out, nproc=nproc)
    assert proc.returncode == 0, proc.stderr
    return _fields(out)


@pytest.fixture(scope="module")
def builtin(tmp_path_factory):
    return _builtin(tmp_path_factory.mktemp("builtin"))


@pytest.mark.slow
@pytest.mark.parametrize("nproc", [None, pytest.param(2, marks=pytest.mark.mpi)])
def test_copy_of_lq_from_a_user_file_gives_the_builtin_fields(tmp_path, builtin, nproc):
    assert "lq_copy" not in LQ_SOURCE
    _copy_of_lq(tmp_path)
    out = tmp_path / "copy.h5"
    proc = mfgpde("run", _runfile(tmp_path), *SMALL, "-o", out, nproc=nproc, cwd=ROOT / "tests")
    assert proc.returncode == 0, proc.stderr
    copy = _fields(out)
    same = builtin if nproc is None else _builtin(tmp_path, nproc)  # the partition changes the level solves
    for k in ("u", "m"):
        np.testing.assert_allclose(copy[k], same[k], rtol=0, atol=1e-12)
    with h5py.File(out, "r") as f:
        assert f.attrs["model"] == "lq_copy"


@pytest.mark.slow
def test_a_dotted_module_on_the_python_path(tmp_path, builtin, monkeypatch):
    package = tmp_path / "mymodels"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "my_lq.py").write_text(_copy_of_lq(tmp_path).read_text())
    monkeypatch.setenv("PYTHONPATH", str(tmp_path))
    out = tmp_path / "dotted.h5"
    proc = mfgpde("run", _runfile(tmp_path / "mymodels", source="mymodels.my_lq"), *SMALL, "-o", out)
    assert proc.returncode == 0, proc.stderr
    np.testing.assert_allclose(_fields(out)["m"], builtin["m"], rtol=0, atol=1e-12)


def _broken(tmp_path, old, new):
    assert old in LQ_SOURCE
    path = _copy_of_lq(tmp_path, body=LQ_SOURCE.replace(old, new, 1))
    line = next(i + 1 for i, ln in enumerate(path.read_text().splitlines()) if new.splitlines()[0] in ln)
    return path, line


@pytest.mark.slow
@pytest.mark.parametrize("nproc", [None, pytest.param(2, marks=pytest.mark.mpi)])
def test_a_syntax_error_names_the_file_and_line(tmp_path, nproc):
    path, line = _broken(tmp_path, "return list(p)", "return list(p))")
    out = tmp_path / "r.h5"
    proc = mfgpde("run", _runfile(tmp_path), *SMALL, "-o", out, nproc=nproc)
    assert proc.returncode == 2
    _one_line(proc, f"{path}:{line}", "syntax error", mpi=bool(nproc))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["my_lq.py", "run.toml"]


@pytest.mark.slow
def test_a_missing_method_names_the_class_and_the_method(tmp_path):
    path = _copy_of_lq(tmp_path, body=re.sub(r"    def dH_dp\(.*?\n\n", "", LQ_SOURCE, count=1, flags=re.S))
    line = next(i + 1 for i, ln in enumerate(path.read_text().splitlines()) if ln.startswith("@register"))
    proc = mfgpde("run", _runfile(tmp_path), *SMALL, "-o", tmp_path / "r.h5")
    assert proc.returncode == 2
    _one_line(proc, f"{path}:{line}", "does not define dH_dp")


@pytest.mark.slow
def test_an_exception_while_importing_names_the_line(tmp_path):
    path, line = _broken(tmp_path, "import numpy as np\n", "import numpy as np\nRATE = 1 / 0\n")
    proc = mfgpde("run", _runfile(tmp_path), *SMALL, "-o", tmp_path / "r.h5")
    assert proc.returncode == 2
    _one_line(proc, f"{path}:{line + 1}", "ZeroDivisionError")


@pytest.mark.slow
@pytest.mark.parametrize("nproc", [None, pytest.param(2, marks=pytest.mark.mpi)])
def test_an_exception_inside_the_model_during_the_solve(tmp_path, nproc):
    path, line = _broken(tmp_path, "return list(p)", 'raise ValueError("bad p")')
    out = tmp_path / "r.h5"
    proc = mfgpde("run", _runfile(tmp_path), *SMALL, "-o", out, nproc=nproc)
    assert proc.returncode == 2, proc.stderr
    _one_line(proc, f"{path}:{line}: ValueError: bad p", mpi=bool(nproc))
    assert not out.exists()


@pytest.mark.slow
def test_a_missing_source_file_and_a_taken_name(tmp_path):
    proc = mfgpde("run", _runfile(tmp_path, source="nowhere.py"), *SMALL, "-o", tmp_path / "r.h5")
    assert proc.returncode == 2
    _one_line(proc, "model.source", "nowhere.py", "no such file")
    _copy_of_lq(tmp_path, name="congestion")
    proc = mfgpde("run", _runfile(tmp_path, name="congestion"), *SMALL, "-o", tmp_path / "r.h5")
    assert proc.returncode == 2
    _one_line(proc, "my_lq.py", "'congestion' is taken by", "congestion.py")


@pytest.mark.slow
def test_an_unknown_name_lists_every_model_by_family(tmp_path):
    proc = mfgpde("run", RUNS / "infection_vaccination.toml", "--set", 'model.name="infektion"', "-o",
                  tmp_path / "r.h5")
    assert proc.returncode == 2
    line = _one_line(proc, "model.name", "infektion")
    for family, names in {"mfg": ["lq_mfg", "congestion", "robust_designer"],
                          "leader_follower": ["stackelberg_lq", "stackelberg_saturated"],
                          "discrete": ["infection", "technology"]}.items():
        assert f"{family}: " in line and all(n in line for n in names), line


@pytest.mark.slow
def test_the_obstacle_example_runs_from_outside_the_package(tmp_path):
    example = ROOT / "examples" / "obstacle"
    out = tmp_path / "obstacle.h5"
    proc = mfgpde("run", example / "obstacle.toml", "--set", "grid.n=[20,20]", "--set", "time.nt=8",
                  "--set", "output.plots=false", "-o", out, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    with h5py.File(out, "r") as f:
        m, axes = f["solution/m"][()], [f["grid"][a][()] for a in ("x", "y")]
    h = [a[1] - a[0] for a in axes]
    np.testing.assert_allclose(m.sum(axis=(1, 2)) * h[0] * h[1], 1.0, atol=1e-10)
    # the obstacle at the centre: less mass there at the middle of the crossing than around it
    i = [int(np.argmin(abs(a))) for a in axes]
    assert m[4, i[0], i[1]] < 0.5 * m[4].max()


@pytest.mark.mpi
def test_an_exception_on_one_rank_only_is_told_and_ends_the_job(tmp_path):
    """Rank 1 owns x > 0.5 of this grid: only it raises, while rank 0 waits for it."""
    path, line = _broken(tmp_path, "return list(p)",
                         'assert np.min(x[0]) < 0.4, "bad p"\n        return list(p)')
    out = tmp_path / "r.h5"
    proc = mfgpde("run", _runfile(tmp_path), *SMALL, "-o", out, nproc=2, timeout=120)
    assert proc.returncode == 2, proc.stderr
    _one_line(proc, f"{path}:{line}: AssertionError: bad p", mpi=True)
    assert not out.exists()


@pytest.mark.slow
def test_check_passes_the_copy_and_names_a_wrong_derivative(tmp_path):
    _copy_of_lq(tmp_path)
    proc = mfgpde("check", _runfile(tmp_path))
    assert proc.returncode == 0, proc.stderr
    assert "passes all" in proc.stdout and "FAIL" not in proc.stdout
    _broken(tmp_path, "return list(p)", "return [1.01 * pd for pd in p]")
    proc = mfgpde("check", _runfile(tmp_path))
    assert proc.returncode == 2
    failed = [ln.split()[1] for ln in proc.stdout.splitlines() if ln.startswith("FAIL")]
    assert failed[0] == "dH_dp" and set(failed) <= {"dH_dp", "d2H_dp2", "d2H_dpdm"}, proc.stdout  # these two
    _one_line(proc, "dH_dp")  # are differences of dH_dp, so they fail with it


@pytest.mark.slow
def test_run_refuses_a_model_that_breaks_its_structure(tmp_path):
    """The cheap checks run before the solve: a concave H on an axis declared convex."""
    _broken(tmp_path, "return 0.5 * sum(pd ** 2 for pd in p)", "return -0.5 * sum(pd ** 2 for pd in p)")
    out = tmp_path / "r.h5"
    proc = mfgpde("run", _runfile(tmp_path), *SMALL, "-o", out)
    assert proc.returncode == 2
    _one_line(proc, "breaks its contract: Engquist-Osher", "mfgpde check")
    assert not out.exists()


@pytest.mark.slow
def test_models_lists_every_model_by_family_and_version():
    proc = mfgpde("models")
    assert proc.returncode == 0, proc.stderr
    families = [ln.split(":")[0] for ln in proc.stdout.splitlines() if not ln.startswith(" ")]
    assert families == ["mfg", "leader_follower", "discrete", "incentive"]
    assert "  lq_mfg: " in proc.stdout and "q = 1.0, kappa = 0.5" in proc.stdout and "  infection: " in proc.stdout
    version = mfgpde("--version")
    assert version.returncode == 0 and version.stdout.strip().startswith("mfgpde 0.")
