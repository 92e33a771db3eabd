"""Faults during a run: NaN injected mid-run, a full disk at the final write, an output
place that cannot be written, a damaged result file (more in test_files.py)."""
import errno

import h5py
import numpy as np
import petsc4py
import pytest

petsc4py.init()
from conftest import RUNS, run_in_process  # noqa: E402
from mfgpde.config import validate  # noqa: E402
from mfgpde.io import hdf5  # noqa: E402
from mfgpde.pipelines.mfg import OutputError, run  # noqa: E402
from mfgpde.solvers import SolverError  # noqa: E402


def _cfg(tmp_path, name="test_poisoned_lq", **model):
    return validate({"model": {"name": name, **model},
                     "grid": {"lower": [-2.5], "upper": [3.5], "n": [60]}, "time": {"T": 1.0, "nt": 10},
                     "output": {"checkpoint_every": 1}})


def test_nan_mid_run_names_solver_iteration_and_time_and_keeps_the_checkpoint(tmp_path, poisoned_lq):
    cfg = _cfg(tmp_path, calls=250)
    poisoned_lq.arm(cfg)
    out = tmp_path / "x.h5"
    with pytest.raises(SolverError, match=r"Picard iteration \d+: HJB Newton did not converge at t="):
        run(cfg, out, verbose=False)
    ckpt = tmp_path / "x.ckpt.h5"
    assert not out.exists() and ckpt.exists()
    with h5py.File(ckpt) as f:
        assert f.attrs["iteration"] >= 1 and np.all(np.isfinite(f["solution/u"][()]))


def test_inf_mid_run_names_solver_iteration_and_time_and_keeps_the_checkpoint(tmp_path, poisoned_lq):
    cfg = _cfg(tmp_path, "test_inf_poisoned_lq", calls=250)
    poisoned_lq.arm(cfg)
    out = tmp_path / "x.h5"
    with pytest.raises(SolverError, match=r"Picard iteration \d+: HJB Newton did not converge at t="):
        run(cfg, out, verbose=False)
    ckpt = tmp_path / "x.ckpt.h5"
    assert not out.exists() and ckpt.exists()
    with h5py.File(ckpt) as f:
        assert f.attrs["iteration"] >= 1 and np.all(np.isfinite(f["solution/u"][()]))


def test_full_disk_at_the_final_write(tmp_path, monkeypatch, poisoned_lq):
    out = tmp_path / "x.h5"
    out.write_bytes(b"previous")
    cfg = _cfg(tmp_path)
    real = hdf5._write_file

    def full(path, data):
        if "x.h5" in str(path) and "ckpt" not in str(path):
            real(path, data[:100])
            raise OSError(errno.ENOSPC, "No space left on device")
        return real(path, data)

    monkeypatch.setattr(hdf5, "_write_file", full)
    with pytest.raises(OutputError, match="No space left on device"):
        run(cfg, out, verbose=False)
    assert out.read_bytes() == b"previous"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["x.ckpt.h5", "x.h5"]  # no temporary left


def test_unwritable_output_place_is_bad_input(tmp_path):
    proc = run_in_process("run", RUNS / "lq_mfg_1d.toml", "--set", "grid.n=[40]", "-o", "/proc/mfgpde/x.h5")
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert proc.returncode == 2 and len(lines) == 1 and "output.file" in lines[0], proc.stderr


def test_damaged_result_file_is_refused_by_info_and_plot(tmp_path):
    out = tmp_path / "r.h5"
    assert run_in_process("run", RUNS / "lq_mfg_1d.toml", "--set", "grid.n=[40]", "--set", "time.nt=10",
                          "--set", "output.plots=false", "-o", out).returncode == 0
    with h5py.File(out, "r+") as f:
        f["solution/u"][3, 3] *= 1.0 + 1e-9
    for command in ("info", "plot"):
        proc = run_in_process(command, out)
        assert proc.returncode == 2 and "corrupted" in proc.stderr, proc.stderr
