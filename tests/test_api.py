"""`mfgpde.solve` from a user's script (serial and under mpirun) gives the CLI's fields;
errors are exceptions; every family goes through it."""
import subprocess
import sys
import textwrap

import h5py
import numpy as np
import pytest

from conftest import RUNS, _env, mfgpde, mpi_script

SETS = {"grid.n": [12, 10], "time.nt": 6}
SCRIPT = textwrap.dedent("""
    import sys
    import numpy as np
    import mfgpde
    run, out = sys.argv[1], sys.argv[2]
    result = mfgpde.solve(run, {"grid.n": [12, 10], "time.nt": 6})
    assert result.converged and result.u.shape == (7, 12, 10) and result.m is result.fields["m"]
    assert list(result.grid) == ["x", "y"] and len(result.t) == 7 and len(result.history["residual_u"]) >= 1
    result.save(out)
    sys.stdout.write(f"STATUS {result.status}\\n")  # one write: the ranks' lines must not interleave
""")


def _cli(tmp_path, nproc):
    out = tmp_path / "cli.h5"
    args = [a for k, v in SETS.items() for a in ("--set", f"{k}={v}")]
    proc = mfgpde("run", RUNS / "lq_mfg_2d.toml", *args, "--set", "output.plots=false", "-o", out, nproc=nproc)
    assert proc.returncode == 0, proc.stderr
    with h5py.File(out, "r") as f:
        return {k: f["solution"][k][()] for k in f["solution"]}


@pytest.mark.slow
@pytest.mark.parametrize("nproc", [None, pytest.param(2, marks=pytest.mark.mpi)])
def test_solve_from_a_script_gives_the_cli_fields(tmp_path, nproc):
    script, out = tmp_path / "user.py", tmp_path / "api.h5"
    script.write_text(SCRIPT)
    if nproc:
        proc = mpi_script(script, nproc, RUNS / "lq_mfg_2d.toml", out)
    else:
        proc = subprocess.run([sys.executable, script, RUNS / "lq_mfg_2d.toml", out], capture_output=True,
                              text=True, env=_env(), timeout=300, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.count("STATUS converged") == (nproc or 1)
    cli = _cli(tmp_path, nproc)
    with h5py.File(out, "r") as f:
        assert set(f["solution"]) == set(cli)
        for k in cli:
            np.testing.assert_array_equal(f["solution"][k][()], cli[k])
    assert out.with_suffix(".xdmf").read_text().count("api.h5:/") > 0
    assert not list(tmp_path.glob(".*tmp*"))


@pytest.mark.slow
def test_solve_in_process_every_family_and_its_errors(tmp_path):
    """One process, several solves (PETSc starts once): a dictionary, the three families, a
    bad key and an unconverged solve as exceptions; the temporary result folder goes."""
    import tomllib

    import mfgpde
    data = tomllib.loads((RUNS / "lq_mfg_1d.toml").read_text())
    lq = mfgpde.solve(data, {"grid.n": [40], "time.nt": 10})
    assert lq.converged and lq.u.shape == (11, 40)
    folder = lq.path.parent
    assert folder.exists()
    del lq
    import gc
    gc.collect()
    assert not folder.exists()
    lf = mfgpde.solve(RUNS / "stackelberg_lq.toml", {"grid.n": 8, "time.nt": 4})
    assert lf.converged and "V0" in lf.fields
    master = mfgpde.solve(RUNS / "infection_vaccination.toml", {"grid.n": 10, "solver.tolerance": 1e-2,
                                                               "solver.leader_points": 11})
    assert master.converged and master.attrs["kind"] == "stackelberg"
    with pytest.raises(mfgpde.ConfigError, match="grid.nn: unknown key"):
        mfgpde.solve(data, {"grid.nn": 3})
    with pytest.raises(mfgpde.NotConverged) as failed:
        mfgpde.solve(data, {"grid.n": [40], "time.nt": 10, "solver.max_iterations": 2})
    assert not failed.value.result.converged and failed.value.result.u.shape == (11, 40)


def test_singleton_transport_is_chosen_only_for_mpi_start(monkeypatch):
    """ob1 is set while MPI starts in a process no launcher started, and removed after;
    a user's choice and a launched process are left alone."""
    import os

    from mfgpde.mpienv import LAUNCHED, singleton_start
    for k in (*LAUNCHED, "OMPI_MCA_pml"):
        monkeypatch.delenv(k, raising=False)
    with singleton_start():
        assert os.environ["OMPI_MCA_pml"] == "ob1"
    assert "OMPI_MCA_pml" not in os.environ
    monkeypatch.setenv("OMPI_MCA_pml", "ucx")
    with singleton_start():
        assert os.environ["OMPI_MCA_pml"] == "ucx"
    assert os.environ["OMPI_MCA_pml"] == "ucx"
    monkeypatch.delenv("OMPI_MCA_pml")
    monkeypatch.setenv("OMPI_COMM_WORLD_SIZE", "2")
    with singleton_start():
        assert "OMPI_MCA_pml" not in os.environ
