"""No path given by the user is destroyed, full disks and damaged files: paths
that clash or cannot be written are refused before any work (exit 2); a write that fails
(full disk) exits 4 with one line, the previous output and checkpoint intact and no
temporary left; every byte a reader trusts is checksummed.  The runs are `mfgpde` in this
process (conftest.run_in_process) but for the PETSc option, which needs a subprocess."""
import errno
import hashlib
import os
import shutil
import stat
import subprocess

import h5py
import numpy as np
import pytest

from conftest import RUNS, mfgpde, run_in_process

SMALL = ["--set", "grid.n=[40]", "--set", "time.nt=10", "--set", "output.plots=false"]
PICARD = [*SMALL, "--set", "solver.coupling='picard'"]
RUN1D, RUN2D = RUNS / "lq_mfg_1d.toml", RUNS / "lq_mfg_2d.toml"
SMALL2D = ["--set", "grid.n=[8,6]", "--set", "time.nt=3", "--set", "output.plots=false"]
LF = [RUNS / "stackelberg_lq.toml", "--set", "grid.n=8", "--set", "time.nt=4", "--set", "time.T=1.0",
      "--set", "output.plots=false"]
MASTER = [RUNS / "technology_adoption.toml", "--set", "grid.n=10", "--set", "time.T=5",
          "--set", "solver.leader_points=11", "--set", "output.plots=false"]
FAMILIES = {"mfg": [RUN1D, *SMALL], "leader_follower": LF, "master": MASTER}
PREVIOUS = b"previous output"


def _one_line(proc, code, *words):
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert proc.returncode == code and len(lines) == 1, (proc.returncode, proc.stderr[-3000:])
    assert lines[0].startswith("mfgpde: error: ") and all(w in lines[0] for w in words), lines[0]
    return lines[0]


def _listing(d):
    return sorted((p.name, p.is_symlink(), p.read_bytes() if p.is_file() and not p.is_symlink() else None)
                  for p in d.iterdir())


def _ckpt(path):
    return ["--set", f"output.checkpoint_file='{path}'"]


# --- paths that would destroy data: refused before any work, exit 2 -------------------------

def _clash(tmp_path, case):
    """(extra arguments, words of the message) for one clash; files prepared in tmp_path."""
    run = tmp_path / "study.toml"
    shutil.copy(RUN1D, run)
    out = tmp_path / "x.h5"
    out.write_bytes(PREVIOUS)
    cases = {
        "checkpoint-is-output": (_ckpt(out) + ["-o", out], ["output.checkpoint_file", "x.h5"]),
        "checkpoint-is-output-relative": (_ckpt("x.h5") + ["-o", out], ["output.checkpoint_file"]),
        "checkpoint-is-unconverged": (_ckpt(tmp_path / "x.unconverged.h5") + ["-o", out],
                                      ["output.checkpoint_file", "x.unconverged.h5"]),
        "checkpoint-is-runfile": (_ckpt(run) + ["-o", out], ["output.checkpoint_file", "study.toml"]),
        "output-is-runfile": (["-o", run], ["output.file", "study.toml"]),
        "restart-is-output": (["--restart", out, "-o", out], ["--restart", "x.h5"]),
        "output-empty": (["-o", ""], ["-o"]),
        "restart-empty": (["--restart", "", "-o", out], ["--restart"]),
    }
    if case == "checkpoint-symlink-to-output":
        (tmp_path / "link.h5").symlink_to(out)
        return _ckpt(tmp_path / "link.h5") + ["-o", out], ["output.checkpoint_file"]
    if case == "checkpoint-hard-link-of-output":
        os.link(out, tmp_path / "hard.h5")
        return _ckpt(tmp_path / "hard.h5") + ["-o", out], ["output.checkpoint_file"]
    if case == "output-fifo":
        os.mkfifo(tmp_path / "fifo.h5")
        return ["-o", tmp_path / "fifo.h5"], ["output.file", "not a regular file"]
    if case == "output-device":  # a node like /dev/null (char 1:3), made here rather than at /dev
        os.mknod(tmp_path / "null.h5", 0o666 | stat.S_IFCHR, os.makedev(1, 3))
        return ["-o", tmp_path / "null.h5"], ["output.file", "not a regular file"]
    if case == "output-symlink-to-device":
        (tmp_path / "null.h5").symlink_to("/dev/null")
        return ["-o", tmp_path / "null.h5"], ["output.file", "not a regular file"]
    return cases[case]


CLASHES = ["checkpoint-is-output", "checkpoint-is-output-relative", "checkpoint-is-unconverged",
           "checkpoint-is-runfile", "checkpoint-symlink-to-output", "checkpoint-hard-link-of-output",
           "output-is-runfile", "restart-is-output", "output-empty", "restart-empty", "output-fifo",
           "output-device", "output-symlink-to-device"]


@pytest.mark.parametrize("case", CLASHES)
def test_a_path_that_would_be_destroyed_is_refused(case, tmp_path):
    argv, words = _clash(tmp_path, case)
    before = _listing(tmp_path)
    proc = run_in_process("run", tmp_path / "study.toml", *SMALL, *argv, cwd=tmp_path)
    _one_line(proc, 2, *words)
    assert _listing(tmp_path) == before


@pytest.mark.parametrize("family", ["leader_follower", "master"])
@pytest.mark.parametrize("case", ["output-is-runfile", "output-fifo"])
def test_other_families_refuse_the_same_paths(family, case, tmp_path):
    run = tmp_path / "study.toml"
    shutil.copy(FAMILIES[family][0], run)
    if case == "output-fifo":
        os.mkfifo(tmp_path / "fifo.h5")
    out = run if case == "output-is-runfile" else tmp_path / "fifo.h5"
    before = _listing(tmp_path)
    proc = run_in_process("run", run, *FAMILIES[family][1:], "-o", out, cwd=tmp_path)
    _one_line(proc, 2, "output.file")
    assert _listing(tmp_path) == before


def _tmpfs(d, options, what):
    """Mount a tmpfs with `options` on the new directory d (skip where mount is not permitted)."""
    d.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", d], capture_output=True).returncode:
        pytest.skip(f"mount is not permitted here: no {what} to test with")
    return d


@pytest.fixture
def read_only_dir(tmp_path):
    d = _tmpfs(tmp_path / "ro", "ro,size=64k", "read-only file system")
    yield d
    subprocess.run(["umount", d])


@pytest.mark.parametrize("where", ["missing-dir-in-proc", "a-directory", "read-only-fs"])
def test_a_checkpoint_place_that_cannot_be_written_is_refused_up_front(where, tmp_path, request):
    place = {"missing-dir-in-proc": lambda: "/proc/mfgpde-none/c.h5", "a-directory": lambda: tmp_path,
             "read-only-fs": lambda: request.getfixturevalue("read_only_dir") / "c.h5"}[where]()
    proc = run_in_process("run", RUN1D, *SMALL, *_ckpt(place), "--set", "output.checkpoint_every=1",
                          "-o", tmp_path / "x.h5")
    _one_line(proc, 2, "output.checkpoint_file")
    assert "picard" not in proc.stdout and not (tmp_path / "x.h5").exists()


# --- full disks: exit 4, one line naming the file and the cause, nothing lost ---------------

@pytest.fixture
def small_disk(tmp_path):
    """A 400 kB tmpfs; `fill(free_kb)` leaves about that much space."""
    d = _tmpfs(tmp_path / "disk", "size=400k", "small file system")

    def fill(free_kb):
        st = os.statvfs(d)
        with open(d / "filler", "wb") as f:
            f.write(b"\0" * max(0, st.f_bavail * st.f_frsize - free_kb * 1024))
    yield d, fill
    subprocess.run(["umount", d])


@pytest.mark.parametrize("family", ["mfg", "leader_follower", pytest.param("master", marks=pytest.mark.slow)])
def test_full_disk_at_the_final_write(family, small_disk):
    disk, fill = small_disk
    out = disk / "x.h5"
    out.write_bytes(PREVIOUS)
    fill(4)
    proc = run_in_process("run", *FAMILIES[family], "-o", out)
    line = _one_line(proc, 4, str(out), "No space left on device")
    assert "unchanged" in line
    assert out.read_bytes() == PREVIOUS
    assert sorted(p.name for p in disk.iterdir()) == ["filler", "x.h5"]


def test_full_disk_at_a_checkpoint_keeps_the_previous_checkpoint(small_disk):
    disk, fill = small_disk
    ckpt = disk / "x.ckpt.h5"
    ckpt.write_bytes(PREVIOUS)
    fill(4)
    proc = run_in_process("run", RUN1D, *SMALL, "--set", "output.checkpoint_every=1", "-o", disk / "x.h5")
    _one_line(proc, 4, str(ckpt), "No space left on device")
    assert ckpt.read_bytes() == PREVIOUS
    assert sorted(p.name for p in disk.iterdir()) == ["filler", "x.ckpt.h5"]


def test_full_disk_keeps_the_result_and_its_xdmf_together(small_disk):
    disk, fill = small_disk
    out = disk / "x.h5"
    assert run_in_process("run", RUN2D, *SMALL2D, "-o", out).returncode == 0
    before = {p: p.read_bytes() for p in (out, disk / "x.xdmf")}
    fill(4)
    proc = run_in_process("run", RUN2D, *SMALL2D, "--set", "model.q=2.0", "-o", out)
    _one_line(proc, 4, "No space left on device", "unchanged")
    assert {p: p.read_bytes() for p in before} == before
    assert sorted(p.name for p in disk.iterdir()) == ["filler", "x.h5", "x.xdmf"]


def test_xdmf_rename_failure_says_what_was_written(tmp_path, monkeypatch, capsys):
    from mfgpde import cli
    real = os.replace

    def replace(src, dst):
        if str(dst).endswith(".xdmf"):
            raise OSError(errno.EIO, "Input/output error")
        return real(src, dst)

    monkeypatch.setattr(os, "replace", replace)
    with pytest.raises(SystemExit) as e:
        cli.main(["run", str(RUN2D), *SMALL2D, "-o", str(tmp_path / "x.h5")])
    err = capsys.readouterr().err.strip()
    assert e.value.code == 4 and len(err.splitlines()) == 1, err
    assert "x.xdmf" in err and "Input/output error" in err and "x.h5 was written" in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["x.h5"]


def test_stale_temporaries_of_dead_processes_are_removed_not_those_of_live_ones(tmp_path):
    dead = subprocess.Popen(["true"])
    dead.wait()
    live = subprocess.Popen(["sleep", "60"])
    try:
        stale = [tmp_path / f".x.h5.tmp-{dead.pid}", tmp_path / f".x.ckpt.h5.tmp-{dead.pid}"]
        kept = tmp_path / f".x.h5.tmp-{live.pid}"
        for p in stale + [kept]:
            p.write_bytes(b"partial")
        assert run_in_process("run", RUN1D, *SMALL, "-o", tmp_path / "x.h5").returncode == 0
        assert sorted(p.name for p in tmp_path.iterdir()) == sorted([kept.name, "x.h5"])
    finally:
        live.kill()
        live.wait()


# --- plots -----------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def result(tmp_path_factory):
    out = tmp_path_factory.mktemp("res") / "r.h5"
    assert run_in_process("run", RUN1D, *SMALL, "-o", out).returncode == 0
    return out


def test_png_write_failure_after_a_converged_result(tmp_path, monkeypatch, capsys):
    import matplotlib.figure

    from mfgpde import cli

    def full(self, *a, **k):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(matplotlib.figure.Figure, "savefig", full)
    out = tmp_path / "x.h5"
    with pytest.raises(SystemExit) as e:
        cli.main(["run", str(RUN1D), "--set", "grid.n=[40]", "--set", "time.nt=10", "--set", "output.plots=true",
                  "-o", str(out)])
    err = capsys.readouterr().err.strip()
    assert e.value.code == 4 and len(err.splitlines()) == 1 and "No space left" in err and "kept" in err, err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["x.h5"]


@pytest.mark.parametrize("times", ["5", "nan", "-1"])
def test_plot_times_outside_the_horizon_are_refused(times, result):
    _one_line(run_in_process("plot", result, "--times", times), 2, "--times")


def test_plot_outdir_that_cannot_be_written_is_named(result):
    line = _one_line(run_in_process("plot", result, "--outdir", "/proc/mfgpde-x"), 2, "--outdir",
                     "/proc/mfgpde-x")
    assert "not an mfgpde output" not in line


def test_stale_unconverged_xdmf_goes_with_the_stale_unconverged_result(tmp_path):
    out = tmp_path / "x.h5"
    assert run_in_process("run", RUN2D, *SMALL2D, "--set", "solver.max_iterations=1", "-o", out).returncode == 3
    assert (tmp_path / "x.unconverged.xdmf").exists()
    assert run_in_process("run", RUN2D, *SMALL2D, "-o", out).returncode == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["x.h5", "x.xdmf"]


@pytest.mark.slow
def test_missing_options_file_is_bad_input(tmp_path):
    _one_line(mfgpde("run", RUN1D, *SMALL, "-o", tmp_path / "x.h5", "-options_file", "/nonexistent"), 2,
              "/nonexistent")
    assert not list(tmp_path.iterdir())


# --- restart: the same configuration spelled differently, damaged checkpoints ----------------

@pytest.fixture(scope="module")
def stopped(tmp_path_factory):
    """A checkpoint after 3 iterations of the small study with Picard (whose restart ends
    at the uninterrupted answer to round-off), and that answer."""
    d = tmp_path_factory.mktemp("stop")
    assert run_in_process("run", RUN1D, *PICARD, "-o", d / "ref.h5").returncode == 0
    assert run_in_process("run", RUN1D, *PICARD, "--set", "solver.max_iterations=3",
                          "--set", "output.checkpoint_every=1", "-o", d / "c.h5").returncode == 3
    with h5py.File(d / "ref.h5") as f:
        return d / "c.ckpt.h5", {k: f["solution"][k][()] for k in ("u", "m")}


@pytest.mark.parametrize("spelling", [["model.mu0=[0.5]"], ["model.q=1"], ["model.rho=0.1", "time.T=1"],
                                      ["grid.n=40"]])
@pytest.mark.slow
def test_the_same_configuration_spelled_differently_restarts(spelling, stopped, tmp_path):
    ckpt, _ = stopped
    sets = [a for s in spelling for a in ("--set", s)]
    proc = run_in_process("run", RUN1D, *PICARD, *sets, "--restart", ckpt, "-o", tmp_path / "x.h5")
    assert proc.returncode == 0, proc.stderr


def test_an_explicit_model_default_restarts(tmp_path):
    run = tmp_path / "r.toml"
    run.write_text(RUN1D.read_text().replace("rho = 0.1\n", ""))
    assert run_in_process("run", run, *SMALL, "--set", "solver.max_iterations=2",
                          "--set", "output.checkpoint_every=1", "-o", tmp_path / "c.h5").returncode == 3
    proc = run_in_process("run", run, *SMALL, "--set", "model.rho=0.0", "--restart", tmp_path / "c.ckpt.h5",
                          "-o", tmp_path / "x.h5")
    assert proc.returncode == 0, proc.stderr


def _raw_ranges(path):
    """Byte ranges of the raw data of /solution (flips there are certainly caught)."""
    with h5py.File(path, "r") as f:
        return [(ds.id.get_offset(), ds.id.get_offset() + ds.id.get_storage_size()) for ds in f["solution"].values()]


@pytest.mark.slow
def test_every_bit_flip_in_a_checkpoint_is_refused_or_harmless(stopped, tmp_path, capsys):
    """40 seeded flips outside the solution's raw data (metadata, attributes, grid, time,
    history) and 10 inside it: each restart is refused with one line (exit 2) or reaches
    the uninterrupted answer; never a traceback."""
    from mfgpde import cli
    ckpt, reference = stopped
    data = ckpt.read_bytes()
    inside = np.zeros(len(data) * 8, bool)
    for a, b in _raw_ranges(ckpt):
        inside[8 * a:8 * b] = True
    rng = np.random.default_rng(16)
    bits = np.concatenate([rng.choice(np.flatnonzero(~inside), 40, replace=False),
                           rng.choice(np.flatnonzero(inside), 10, replace=False)])
    outcomes = []
    for bit in bits:
        flipped = bytearray(data)
        flipped[bit // 8] ^= 1 << (bit % 8)
        bad, out = tmp_path / "bad.h5", tmp_path / "x.h5"
        bad.write_bytes(bytes(flipped))
        out.unlink(missing_ok=True)
        capsys.readouterr()
        try:
            code = cli.main(["run", str(RUN1D), *PICARD, "--restart", str(bad), "-o", str(out)])
        except SystemExit as e:
            code = e.code
        err = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
        if code == 2:
            assert len(err) == 1 and err[0].startswith("mfgpde: error: restart:"), (bit, err)
            assert not out.exists()
        else:
            assert code == 0, (bit, code, err)
            with h5py.File(out) as f:
                for k, v in reference.items():
                    assert np.max(np.abs(f["solution"][k][()] - v)) < 1e-12, bit
        outcomes.append(code)
    assert outcomes[40:] == [2] * 10  # a changed solution value is always refused
    assert outcomes.count(2) >= 25  # the others: bytes HDF5 does not read as values (padding, free space)


def test_a_checkpoint_without_the_full_checksum_is_refused_as_older(stopped, tmp_path):
    ckpt, _ = stopped
    old = tmp_path / "old.h5"
    shutil.copy(ckpt, old)
    with h5py.File(old, "r+") as f:  # as the previous version wrote it: a checksum of /solution only
        f.attrs["format"] = 1
        del f.attrs["sha256"]
        f.attrs["checksum"] = hashlib.sha256(b"".join(ds[()].tobytes() for ds in f["solution"].values())).hexdigest()
    _one_line(run_in_process("run", RUN1D, *PICARD, "--restart", old, "-o", tmp_path / "x.h5"), 2, "older")
