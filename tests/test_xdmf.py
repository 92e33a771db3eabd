"""The XDMF sidecar: every reference resolves in the HDF5 file, each time level's selection
selects that level, and point i carries the coordinates of the field value stored at i; and
ParaView's default reader (where pvbatch is installed) loads every field at every time."""
import os
import shutil
import subprocess
import xml.etree.ElementTree as ET

import h5py
import numpy as np
import pytest

from conftest import RUNS, run_in_process


def _resolve(h5, item):
    """(dataset, (start, stride, count, dataspace) or None) of an HDF DataItem's reference
    `FILE:PATH` or, XDMF 3's selection, `FILE:PATH|START:STRIDE:COUNT:DATASPACE`."""
    reference, _, selection = item.text.strip().partition("|")
    name, path = reference.split(":")
    assert item.get("Format") == "HDF" and name == "r.h5"
    parts = [np.array(p.split(), dtype=int) for p in selection.split(":")] if selection else None
    assert parts is None or len(parts) == 4
    return h5[path], parts


def _run_2d(tmp_path):
    out = tmp_path / "r.h5"
    proc = run_in_process("run", RUNS / "lq_mfg_2d.toml", "--set", "grid.n=[8,6]", "--set", "time.nt=3",
                          "--set", "output.plots=false", "-o", out)
    assert proc.returncode == 0, proc.stderr
    return out


def test_xdmf_sidecar_matches_the_result_file(tmp_path):
    out = _run_2d(tmp_path)
    root = ET.parse(tmp_path / "r.xdmf").getroot()
    steps = root.find("Domain/Grid").findall("Grid")
    with h5py.File(out) as h5:
        t = h5["time/t"][()]
        x, y = h5["grid/x"][()], h5["grid/y"][()]
        assert len(steps) == len(t)
        for k, step in enumerate(steps):
            assert float(step.find("Time").get("Value")) == t[k]
            assert step.find("Topology").get("Dimensions") == "8 6"
            points, whole = _resolve(h5, step.find("Geometry/DataItem"))
            points = points[()]
            assert whole is None
            # storage order: x slowest, so point (i, j) is row i*6 + j
            assert np.array_equal(points[1 * 6 + 4, :2], [x[1], y[4]])
            assert {a.get("Name") for a in step.findall("Attribute")} == set(h5["solution"])
            for attribute in step.findall("Attribute"):
                (data,) = attribute.findall("DataItem")  # a plain HDF item, no derived one
                assert (data.get("NumberType"), data.get("Precision")) == ("Float", "8")
                assert data.get("Dimensions") == "8 6"
                field, (start, stride, count, dataspace) = _resolve(h5, data)
                assert tuple(dataspace) == field.shape
                picked = field[()][tuple(slice(a, a + c * s, s) for a, s, c in zip(start, stride, count))]
                assert np.array_equal(picked[0], h5["solution"][attribute.get("Name")][k])
                assert picked.size == points.shape[0]


def test_no_sidecar_for_one_dimension(tmp_path):
    out = tmp_path / "r.h5"
    assert run_in_process("run", RUNS / "lq_mfg_1d.toml", "--set", "grid.n=[20]", "--set", "time.nt=3",
                          "--set", "output.plots=false", "-o", out).returncode == 0
    assert not (tmp_path / "r.xdmf").exists()


# Run by pvbatch (ParaView's own Python): open the sidecar as the GUI's File > Open would,
# with the reader ParaView picks, and save the points and point arrays of every time level.
PVBATCH_SCRIPT = '''
import sys
import numpy as np
from paraview import servermanager
from paraview.simple import OpenDataFile
from vtkmodules.util.numpy_support import vtk_to_numpy

reader = OpenDataFile(sys.argv[1])
print("reader", reader.GetXMLName())
saved = {"times": np.array(reader.TimestepValues, dtype=float)}
for k, time in enumerate(reader.TimestepValues):
    reader.UpdatePipeline(time)
    data = servermanager.Fetch(reader)
    point_data = data.GetPointData()
    names = [point_data.GetArrayName(i) for i in range(point_data.GetNumberOfArrays())]
    print("time", k, time, data.GetClassName(), data.GetNumberOfPoints(), "points", " ".join(names))
    saved["points_%d" % k] = np.array(vtk_to_numpy(data.GetPoints().GetData()))  # copies
    for name in names:
        saved["%s_%d" % (name, k)] = np.array(vtk_to_numpy(point_data.GetArray(name)))
np.savez(sys.argv[2], **saved)
'''


@pytest.mark.slow
def test_paraview_default_reader_loads_every_field_at_every_time(tmp_path):
    pvbatch = shutil.which("pvbatch")
    if pvbatch is None:
        pytest.skip("pvbatch not installed: ParaView's reader is not checked here "
                    "(Debian: apt-get install paraview python3-paraview)")
    out = _run_2d(tmp_path)
    script = tmp_path / "read_xdmf.py"
    script.write_text(PVBATCH_SCRIPT)
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV")}
    proc = subprocess.run([pvbatch, "--no-mpi", script, tmp_path / "r.xdmf", tmp_path / "read.npz"],
                          capture_output=True, text=True, timeout=300, env=env, cwd=tmp_path)
    text = proc.stdout + proc.stderr
    assert proc.returncode == 0, text
    for bad in ("Skipping unrecognized", "HDF5", "Error", "error"):  # HDF5-DIAG, XDMF Error, ...
        assert bad not in text, text
    assert "reader Xdmf3Reader" in proc.stdout, text  # the XDMF 3 reader, not the legacy one
    read = np.load(tmp_path / "read.npz")
    with h5py.File(out) as h5:
        t, points = h5["time/t"][()], h5["mesh/points"][()]
        assert np.array_equal(read["times"], t), text
        for k in range(len(t)):
            assert np.array_equal(read[f"points_{k}"], points)
            for name in ("u", "m"):
                assert f"{name}_{k}" in read, text
                value = h5["solution"][name][k].ravel()
                np.testing.assert_allclose(read[f"{name}_{k}"], value, rtol=1e-12, atol=0)
        assert {f"{name}_{k}" for name in h5["solution"] for k in range(len(t))} <= set(read)
