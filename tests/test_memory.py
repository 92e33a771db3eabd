"""The memory guard: limits (physical, RLIMIT_AS, cgroup via MFGPDE_CGROUP_ROOT), refusal
before allocating in every family, and estimates within 30 % of measured peaks."""
import functools
import json
import os
import resource
import subprocess
import sys
import time

import pytest

from conftest import RUNS, _env, mfgpde

pytestmark = pytest.mark.slow  # a subprocess of Python and PETSc in every test
GiB = 2 ** 30


# A forked child's peak (ru_maxrss) starts at its parent's resident memory at the fork,
# and this test process grows with the tests before it.  The children whose peaks are read
# are therefore forked by a small Python process started for that (its own peak does not
# pass to its children).
_SPAWNER = """
import json, os, subprocess, sys, time
for line in sys.stdin:
    cmd, env = json.loads(line)
    start = time.perf_counter()
    p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)
    text = p.stdout.read()
    _, status, usage = os.wait4(p.pid, 0)
    print(json.dumps([os.waitstatus_to_exitcode(status), text, time.perf_counter() - start,
                      usage.ru_maxrss / 1024]), flush=True)
"""


@functools.lru_cache(maxsize=None)
def _spawner():
    return subprocess.Popen([sys.executable, "-c", _SPAWNER], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            text=True)


def _run(args, env=None, preexec=None, code=None):
    """`python -m mfgpde ARGS` (or `python -c CODE`): (exit code, output, wall s, peak resident MB);
    with `preexec` (a limit to set in the child) forked from this process, else by the spawner."""
    cmd = [sys.executable, "-c", code] if code else [sys.executable, "-m", "mfgpde", *map(str, args)]
    env = {**_env(), **(env or {})}
    if preexec is None:
        spawner = _spawner()
        spawner.stdin.write(json.dumps([cmd, env]) + "\n")
        spawner.stdin.flush()
        return tuple(json.loads(spawner.stdout.readline()))
    start = time.perf_counter()
    p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env,
                         preexec_fn=preexec)
    text = p.stdout.read()
    _, status, usage = os.wait4(p.pid, 0)
    return os.waitstatus_to_exitcode(status), text, time.perf_counter() - start, usage.ru_maxrss / 1024


@functools.lru_cache(maxsize=None)
def _floor_mb():
    """The peak of a child that only imports mfgpde's solvers (measured once: every refusal
    test asked for the same child)."""
    return _run(None, code="import petsc4py; petsc4py.init(); import mfgpde.pipelines.mfg")[3]


def _address_space(limit):
    return lambda: resource.setrlimit(resource.RLIMIT_AS, (limit, resource.RLIM_INFINITY))


def _one_line(r, *words):
    code, text = r[0], r[1]
    lines = text.strip().splitlines()
    assert code == 2, text
    assert len(lines) == 1 and "Traceback" not in text, text
    for w in words:
        assert w in lines[0], lines[0]
    return lines[0]


def test_rlimit_as_is_the_limit_when_smallest():
    code = "from mfgpde import memory; v, name = memory.limit(); print(v, name)"
    r = _run(None, code=code, preexec=_address_space(3 * GiB))
    assert r[0] == 0 and r[1].split()[:2] == [str(3 * GiB), "RLIMIT_AS"], r[1]


def test_rlimit_as_refuses_a_run(tmp_path):
    r = _run(["run", RUNS / "lq_mfg_2d.toml", "-o", tmp_path / "o.h5", "--set", "grid.n=[1000,1000]",
              "--set", "time.nt=80"], preexec=_address_space(4 * GiB))
    _one_line(r, "RLIMIT_AS", "per rank (estimate)")
    assert not (tmp_path / "o.h5").exists()


def test_cgroup_limit_from_a_fake_cgroup_tree(tmp_path):
    """MFGPDE_CGROUP_ROOT replaces /sys/fs/cgroup; v2 memory.max and v1 memory.limit_in_bytes
    are found walking up from this process's cgroup to the root."""
    root = tmp_path / "cg"
    (root / "memory").mkdir(parents=True)
    (root / "memory.max").write_text(f"{GiB}\n")
    (root / "memory" / "memory.limit_in_bytes").write_text(f"{GiB}\n")
    env = {"MFGPDE_CGROUP_ROOT": str(root)}
    r = _run(None, env=env, code="from mfgpde import memory; print(*memory.limit())")
    assert r[0] == 0 and r[1].split()[:2] == [str(GiB), "cgroup"], r[1]
    r = _run(["run", RUNS / "lq_mfg_2d.toml", "-o", tmp_path / "o.h5", "--set", "grid.n=[400,400]",
              "--set", "time.nt=100"], env=env)
    _one_line(r, "cgroup memory limit", "1 GiB limit")
    (root / "memory.max").write_text("max\n")
    (root / "memory" / "memory.limit_in_bytes").write_text("9223372036854771712\n")
    r = _run(None, env=env, code="from mfgpde import memory; print(*memory.limit())")
    assert "physical" in r[1], r[1]


def test_huge_grid_refused_in_under_a_second_without_allocating():
    code = ("import time; from mfgpde.config import load, ConfigError; from mfgpde.pipelines.mfg import build_problem\n"
            f"cfg = load({str(RUNS / 'lq_mfg_2d.toml')!r}, ['grid.n=[20000,20000]', 'time.nt=100'])\n"
            "t = time.perf_counter()\n"
            "try:\n    build_problem(cfg)\nexcept ConfigError as e:\n    print(time.perf_counter() - t, e)\n")
    code_, text, wall, peak = _run(None, code=code)
    assert code_ == 0 and "grid.n: 100 steps on [20000, 20000] cells" in text and "GiB limit" in text, text
    assert float(text.split()[0]) < 1.0, text
    assert wall < 10 and peak < _floor_mb() + 100, (wall, peak)


@pytest.mark.parametrize("runfile, sets, key", [
    ("lq_mfg_2d.toml", ["grid.n=[20000,20000]", "time.nt=100"], "grid.n"),
    ("lq_mfg_2d.toml", ["grid.n=[500,500]", "time.nt=2000", "solver.coupling=\"newton\""], "time.nt"),
    ("stackelberg_lq.toml", ["grid.n=2000"], "grid.n"),
    ("technology_adoption.toml", ["grid.n=100000"], "grid.n"),
    ("robust_designer_chain.toml", ["model.populations=200000", "model.mu0=0.0"], "model.populations"),
    ("robust_designer_chain.toml", ["model.populations=2000", "model.mu0=0.0", "time.nt=100000"], "model.populations"),
    ("incentive_followers.toml", ["check.samples=1000000", "check.max_N=1000"], "check.max_N"),
])
def test_every_family_refuses_before_allocating(tmp_path, runfile, sets, key):
    args = ["run", RUNS / runfile, "-o", tmp_path / "o.h5"] + [a for s in sets for a in ("--set", s)]
    code, text, wall, peak = _run(args)
    line = _one_line((code, text), f"mfgpde: error: {key}:", "(estimate), more than the")
    assert peak < _floor_mb() + 100 and not (tmp_path / "o.h5").exists(), (peak, line)


@pytest.mark.mpi
def test_ranks_of_one_node_are_summed(tmp_path):
    r = mfgpde("run", RUNS / "lq_mfg_2d.toml", "-o", tmp_path / "o.h5", "--set", "grid.n=[20000,20000]",
               nproc=2, timeout=120)
    assert r.returncode == 2, r.stderr
    assert "on this node (2 ranks)" in r.stderr and r.stderr.count("mfgpde: error") == 1, r.stderr


def test_memory_error_after_the_check_is_one_line_exit_3(tmp_path):
    """An allocation the estimate missed (here: the guard disabled) is a fault, not a traceback."""
    code = ("import sys; from mfgpde import memory, cli; memory.check = lambda *a, **k: None\n"
            f"sys.exit(cli.main(['run', {str(RUNS / 'robust_designer_chain.toml')!r}, '-o', "
            f"{str(tmp_path / 'o.h5')!r}, '--set', 'model.populations=200000', '--set', 'model.mu0=0.0']))")
    code_, text, _, _ = _run(None, code=code)
    lines = text.strip().splitlines()
    assert code_ == 3 and len(lines) == 1 and "out of memory" in lines[0] and "Traceback" not in text, text


@pytest.mark.slow
@pytest.mark.parametrize("runfile, sets, estimate", [
    ("lq_mfg_2d.toml", ["grid.n=[200,200]", "time.nt=100", "solver.max_iterations=2"],
     lambda m: m.mfg((200, 200), 100, 1, 0, closed_form=True)),
    ("congestion_2d.toml", ["grid.n=[100,100]", "time.nt=50", "solver.coupling=\"newton\"",
                            "solver.newton_max_iterations=1"],
     lambda m: m.mfg((100, 100), 50, 1, 0, coupling="newton")),
    ("stackelberg_lq.toml", ["grid.n=48", "time.nt=24"], lambda m: m.leader_follower(48, 48, 24, 1, 0)),
])
def test_estimate_within_30_percent_of_the_measured_peak(tmp_path, runfile, sets, estimate):
    from mfgpde import memory
    args = ["run", RUNS / runfile, "-o", tmp_path / "o.h5", "--set", "output.plots=false"]
    code, _, _, peak = _run(args + [a for s in sets for a in ("--set", s)])
    assert code in (0, 3)
    ratio = estimate(memory) / 2 ** 20 / peak
    assert 0.7 < ratio < 1.3, (ratio, peak)
