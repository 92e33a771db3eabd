"""The XDMF sidecar: every reference resolves in the HDF5 file, each time level's hyperslab
selects that level, and point i carries the coordinates of the field value stored at i."""
import xml.etree.ElementTree as ET

import h5py
import numpy as np

from conftest import RUNS, run_in_process


def _resolve(h5, item):
    name, path = item.text.strip().split(":")
    return h5[path]


def test_xdmf_sidecar_matches_the_result_file(tmp_path):
    out = tmp_path / "r.h5"
    proc = run_in_process("run", RUNS / "lq_mfg_2d.toml", "--set", "grid.n=[8,6]", "--set", "time.nt=3",
                          "--set", "output.plots=false", "-o", out)
    assert proc.returncode == 0, proc.stderr
    root = ET.parse(tmp_path / "r.xdmf").getroot()
    steps = root.find("Domain/Grid").findall("Grid")
    with h5py.File(out) as h5:
        t = h5["time/t"][()]
        x, y = h5["grid/x"][()], h5["grid/y"][()]
        assert len(steps) == len(t)
        for k, step in enumerate(steps):
            assert float(step.find("Time").get("Value")) == t[k]
            assert step.find("Topology").get("Dimensions") == "8 6"
            points = _resolve(h5, step.find("Geometry/DataItem"))[()]
            # storage order: x slowest, so point (i, j) is row i*6 + j
            assert np.array_equal(points[1 * 6 + 4, :2], [x[1], y[4]])
            for attribute in step.findall("Attribute"):
                slab, data = attribute.find("DataItem").findall("DataItem")
                start, stride, count = np.array(slab.text.split(), dtype=int).reshape(3, -1)
                field = _resolve(h5, data)[()]
                assert data.get("Dimensions") == " ".join(map(str, field.shape))
                picked = field[tuple(slice(a, a + c * s, s) for a, s, c in zip(start, stride, count))]
                assert np.array_equal(picked[0], h5["solution"][attribute.get("Name")][k])
                assert picked.size == points.shape[0]


def test_no_sidecar_for_one_dimension(tmp_path):
    out = tmp_path / "r.h5"
    assert run_in_process("run", RUNS / "lq_mfg_1d.toml", "--set", "grid.n=[20]", "--set", "time.nt=3",
                          "--set", "output.plots=false", "-o", out).returncode == 0
    assert not (tmp_path / "r.xdmf").exists()
