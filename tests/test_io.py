"""Tests for mfgpde.io: HDF5 layout/round trip, atomic writes, describe(), plots."""
import os
import re
import subprocess
import sys

import h5py
import numpy as np
import pytest

from mfgpde.io import describe, plot_result, read_result, write_result

PNG = b"\x89PNG\r\n\x1a\n"
CONFIG = {"model": "lq", "grid": {"n": [41], "bounds": [[-5.0, 5.0]]}, "solver": {"tol": 1e-8, "damping": 0.5}}


def _gaussian(axes, t, mass0, mass1):
    """m(t, .) a centred unit-variance Gaussian scaled from mass0 (t=0) to mass1 (t=T)."""
    grids = np.meshgrid(*axes.values(), indexing="ij")
    g = np.exp(-0.5 * sum(c**2 for c in grids)) / (2 * np.pi) ** (len(axes) / 2)
    scale = mass0 + (mass1 - mass0) * (t - t[0]) / (t[-1] - t[0])
    return scale.reshape(-1, *[1] * len(axes)) * g


def _result(ndim, nt=10):
    ns = [81, 61, 21][:ndim]
    axes = {n: np.linspace(-6.0, 6.0, k) for n, k in zip("xyz", ns)}
    t = np.linspace(0.0, 1.0, nt + 1)
    m = _gaussian(axes, t, 2.5, 2.0)
    rng = np.random.default_rng(ndim)
    fields = {"u": rng.standard_normal(m.shape), "m": m}
    if ndim == 1:
        fields["a_x"] = rng.standard_normal(m.shape)
    history = {"iteration": np.arange(1, 6), "residual_u": 10.0 ** -np.arange(5),
               "residual_m": 10.0 ** -np.arange(1, 6), "wall_time": np.linspace(0.1, 0.5, 5)}
    attrs = {"model": f"lq{ndim}d", "config": CONFIG, "version": "0.1.0", "status": "converged", "iterations": 5}
    return dict(axes=axes, t=t, fields=fields, attrs=attrs, history=history)


@pytest.mark.parametrize("ndim", [1, 2])
def test_round_trip_and_layout(tmp_path, ndim):
    kw = _result(ndim)
    extra = {"closed_form": {"u": kw["fields"]["u"] + 1.0}}
    p = tmp_path / "out.h5"
    write_result(p, **kw, extra=extra)
    r = read_result(p)
    assert list(r.axes) == list(kw["axes"])
    for n, a in kw["axes"].items():
        np.testing.assert_array_equal(r.axes[n], a)
    np.testing.assert_array_equal(r.t, kw["t"])
    assert set(r.fields) == set(kw["fields"])
    for n, f in kw["fields"].items():
        np.testing.assert_array_equal(r.fields[n], f)
    for n, h in kw["history"].items():
        np.testing.assert_array_equal(r.history[n], h)
    np.testing.assert_array_equal(r.extra["closed_form"]["u"], extra["closed_form"]["u"])
    assert {k: v for k, v in r.attrs.items() if k != "sha256"} == kw["attrs"]
    assert len(r.attrs["sha256"]) == 64
    assert isinstance(r.attrs["config"], dict)
    with h5py.File(p, "r") as f:
        assert [a.decode() if isinstance(a, bytes) else a for a in f["grid"].attrs["axes"]] == list(kw["axes"])
        for n, a in kw["axes"].items():
            assert f[f"/grid/{n}"].shape == a.shape
        assert f["/time/t"].shape == kw["t"].shape
        assert f["/solution/u"].shape == (len(kw["t"]), *[len(a) for a in kw["axes"].values()])
        assert set(f["/history"]) == set(kw["history"])
        assert f["/closed_form/u"].shape == f["/solution/u"].shape
        assert isinstance(f.attrs["config"], str) and f.attrs["status"] == "converged"
    assert os.listdir(tmp_path) == ["out.h5"]


def test_bad_shape_names_field(tmp_path):
    kw = _result(1)
    kw["fields"]["m"] = kw["fields"]["m"][:, :-1]
    with pytest.raises(ValueError, match="'m'"):
        write_result(tmp_path / "out.h5", **kw)
    assert os.listdir(tmp_path) == []


def _fail_after_first_dataset(monkeypatch):
    orig, calls = h5py.Group.create_dataset, []

    def create_dataset(self, *a, **k):
        calls.append(1)
        if len(calls) > 1:
            raise RuntimeError("disk full (simulated)")
        return orig(self, *a, **k)

    monkeypatch.setattr(h5py.Group, "create_dataset", create_dataset)


@pytest.mark.parametrize("failure", ["shape", "midway"])
def test_atomic_write_keeps_old_file(tmp_path, monkeypatch, failure):
    p = tmp_path / "out.h5"
    write_result(p, **_result(1))
    before = p.read_bytes()
    kw = _result(2)
    if failure == "shape":
        kw["fields"]["u"] = kw["fields"]["u"][:-1]
        with pytest.raises(ValueError, match="'u'"):
            write_result(p, **kw)
    else:
        _fail_after_first_dataset(monkeypatch)
        with pytest.raises(RuntimeError, match="simulated"):
            write_result(p, **kw)
    assert p.read_bytes() == before
    assert os.listdir(tmp_path) == ["out.h5"]


def test_atomic_write_no_previous_file(tmp_path, monkeypatch):
    _fail_after_first_dataset(monkeypatch)
    with pytest.raises(RuntimeError):
        write_result(tmp_path / "out.h5", **_result(1))
    assert os.listdir(tmp_path) == []


@pytest.mark.parametrize("ndim", [1, 2])
def test_describe(tmp_path, ndim):
    kw = _result(ndim)
    p = tmp_path / "out.h5"
    write_result(p, **kw)
    text = describe(p)
    assert f"lq{ndim}d" in text and "converged" in text and "0.1.0" in text
    for n, f in kw["fields"].items():
        assert re.search(rf"\b{n}\s+shape {re.escape(str(f.shape))}", text)
    vol = np.prod([a[1] - a[0] for a in kw["axes"].values()])
    mass = re.search(r"t=0: (\S+)\s+t=T: (\S+)", text)
    m = kw["fields"]["m"]
    assert float(mass.group(1)) == pytest.approx(m[0].sum() * vol, rel=1e-9)
    assert float(mass.group(2)) == pytest.approx(m[-1].sum() * vol, rel=1e-9)
    assert float(mass.group(1)) == pytest.approx(2.5, rel=1e-6)  # Gaussian integral
    assert float(mass.group(2)) == pytest.approx(2.0, rel=1e-6)
    assert "iterations: 5" in text.replace("  ", "")
    assert "residual_m = 1.000e-05" in text and "damping" in text


def _assert_pngs(paths, expected):
    assert sorted(p.name for p in paths) == sorted(expected)
    for p in paths:
        assert p.stat().st_size > 1000 and p.read_bytes()[:8] == PNG


@pytest.mark.slow
def test_plot_1d(tmp_path):
    p = tmp_path / "run.h5"
    write_result(p, **_result(1))
    paths = plot_result(p)
    _assert_pngs(paths, ["run_density.png", "run_snapshots.png", "run_history.png"])
    assert all(q.parent == tmp_path for q in paths)


@pytest.mark.slow
def test_plot_2d_and_3d(tmp_path):
    p = tmp_path / "run.h5"
    write_result(p, **_result(2))
    paths = plot_result(p, outdir=tmp_path / "figs", times=[0.0, 1.0])
    _assert_pngs(paths, ["run_density_snapshots.png", "run_value_snapshots.png", "run_history.png"])
    assert all(q.parent == tmp_path / "figs" for q in paths)
    kw = _result(3, nt=2)
    kw["history"] = None
    write_result(tmp_path / "cube.h5", **kw)
    _assert_pngs(plot_result(tmp_path / "cube.h5"), ["cube_density_snapshots.png", "cube_value_snapshots.png"])


def test_import_does_not_load_pyplot():
    code = "import sys, mfgpde.io; assert 'matplotlib.pyplot' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True)


def test_corrupted_result_is_refused(tmp_path):
    """One changed value in /solution: read_result and describe refuse the file."""
    from mfgpde.io import CorruptFileError, describe
    p = tmp_path / "r.h5"
    write_result(p, **_result(1))
    with h5py.File(p, "r+") as f:
        f["solution/m"][1, 2] += 1e-12
    with pytest.raises(CorruptFileError, match="corrupted"):
        read_result(p)
    with pytest.raises(CorruptFileError):
        describe(p)


@pytest.mark.slow
def test_plot_formats_dpi_and_what_the_history_draws(tmp_path, monkeypatch):
    """PDF and SVG beside PNG at the asked dpi; the convergence plot draws residuals on
    its log axis and the linear iterations on their own axis (not as residuals)."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    p = tmp_path / "run.h5"
    kw = _result(1)
    kw["history"] = {"iteration": np.arange(1.0, 4.0), "residual_u": np.array([1e-1, 1e-3, 1e-5]),
                     "linear_iterations": np.array([7.0, 8.0, 9.0]), "newton": np.array([0.0, 1.0, 1.0])}
    write_result(p, **kw)
    figures = []
    monkeypatch.setattr(plt, "close", figures.append)  # keep the figures to look at
    paths = plot_result(p, formats=("png", "pdf", "svg"), dpi=50)
    assert sorted(q.name for q in paths) == sorted(f"run_{w}.{f}" for w in ("density", "snapshots", "history")
                                                   for f in ("png", "pdf", "svg"))
    assert (tmp_path / "run_history.pdf").read_bytes()[:4] == b"%PDF"
    assert b"<svg" in (tmp_path / "run_history.svg").read_bytes()[:2000]
    header = (tmp_path / "run_density.png").read_bytes()[16:24]  # PNG width, height: 6 x 4.5 inches at 50 dpi
    assert (int.from_bytes(header[:4], "big"), int.from_bytes(header[4:], "big")) == (300, 225)
    log_axis, right = figures[-1].axes
    assert log_axis.get_yscale() == "log" and right.get_yscale() == "linear"
    assert [line.get_label() for line in log_axis.get_lines()] == ["u: relative change (HJB residual for Newton)"]
    assert [list(line.get_ydata()) for line in right.get_lines()] == [[7.0, 8.0, 9.0]]
    assert [t.get_text() for t in log_axis.get_legend().get_texts()][-2:] == ["linear iterations", "Newton iterations"]
