"""The same code under mpirun -n 2: grid layer checks, and runs that agree with 1 rank."""
import h5py
import numpy as np
import pytest

from conftest import ROOT, RUNS, mfgpde, mpi_script

pytestmark = pytest.mark.mpi

SMALL = {"lq_mfg_1d": ["--set", "grid.n=[80]", "--set", "time.nt=20"],
         "lq_mfg_2d": ["--set", "grid.n=[24,20]", "--set", "time.nt=8"]}


def test_grid_layer_under_mpi():
    proc = mpi_script(ROOT / "tests" / "mpi_checks.py", 2)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert proc.stdout.count("mpi_checks: ok") == 2


@pytest.mark.parametrize("case", sorted(SMALL))
def test_one_and_two_ranks_agree(case, tmp_path):
    out = {}
    for nproc in (None, 2):
        path = tmp_path / f"{case}_{nproc or 1}.h5"
        proc = mfgpde("run", RUNS / f"{case}.toml", *SMALL[case], "--set", "output.plots=false",
                      "-o", path, nproc=nproc)
        assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
        with h5py.File(path, "r") as f:
            assert f.attrs["mpi_ranks"] == (nproc or 1)
            out[nproc] = {k: f["solution"][k][()] for k in ("u", "m")}
    for k in ("u", "m"):  # the default coupling's sweeps solve to a tenth of its tolerance (1e-8)
        assert _relative(out[None][k], out[2][k]) < 1e-8, k


def _relative(a, b):
    return np.max(np.abs(a - b)) / np.max(np.abs(a))


@pytest.mark.slow
@pytest.mark.parametrize("case, sets", [("lq_mfg_2d", SMALL["lq_mfg_2d"]),
                                        ("congestion_2d", ["--set", "grid.n=[24,20]", "--set", "time.nt=8"])])
def test_three_and_four_ranks_give_the_one_rank_fields(case, sets, tmp_path):
    """Partitions DMDA makes for 3 (3×1) and 4 (2×2) ranks of a 24×20 grid: the 1-rank fields
    to the coupling's tolerance (block Jacobi differs per partition, and the sweeps are
    solved to a tenth of that tolerance)."""
    out = {}
    for nproc in (None, 3, 4):
        path = tmp_path / f"{case}_{nproc or 1}.h5"
        proc = mfgpde("run", RUNS / f"{case}.toml", *sets, "--set", "output.plots=false", "-o", path, nproc=nproc)
        assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
        with h5py.File(path, "r") as f:
            assert f.attrs["mpi_ranks"] == (nproc or 1)
            out[nproc] = {k: f["solution"][k][()] for k in ("u", "m")}
    for nproc in (3, 4):
        for k in ("u", "m"):
            assert _relative(out[None][k], out[nproc][k]) < 1e-8, (nproc, k)


def test_more_ranks_than_cells_is_bad_input(tmp_path):
    proc = mfgpde("run", RUNS / "lq_mfg_1d.toml", "--set", "grid.n=[2]", "-o", tmp_path / "x.h5", nproc=3)
    assert proc.returncode != 0 and "Traceback" not in proc.stderr + proc.stdout
    assert proc.stderr.count("grid.n: [2] cells cannot be split over 3 MPI ranks") == 1
    assert not (tmp_path / "x.h5").exists()
