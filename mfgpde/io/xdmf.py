"""XDMF sidecar: `OUT.xdmf` beside `OUT.h5` so ParaView's default XDMF reader opens the fields.

The grid is described as a structured mesh (2DSMesh / 3DSMesh) whose points, stored in
the result file under /mesh/points, follow the storage order of the fields (the first
grid axis slowest), so no axis is transposed.  One XDMF grid per time level; each field
is level k of /solution/<field>, selected in the HDF5 reference itself, XDMF 3's way:
`OUT.h5:/solution/u|START:STRIDE:COUNT:DATASPACE` (one list of integers per part, an
entry per dataset axis).  The selection is not an `ItemType="HyperSlab"` DataItem: the
XDMF 3 reader of ParaView 5.11 (vtkXdmf3Reader, its default for .xdmf) takes the
number type of such a derived item before reading it, finds none and skips the field
("Skipping unrecognized array type [None]").  The legacy XDMF 2 reader (labelled
"XDMF Reader" in 5.11) does not know the `|` form and gets the mesh and times only.
1-D results get no sidecar.  See docs/paraview.md.
"""
from pathlib import Path

import numpy as np


def mesh_points(axes):
    """(N, 3) point coordinates in the storage order of the fields (first axis slowest)."""
    grids = np.meshgrid(*axes.values(), indexing="ij")
    points = np.zeros((grids[0].size, 3))
    for d, g in enumerate(grids):
        points[:, d] = g.ravel()
    return points


def xdmf_path(h5path):
    return Path(h5path).with_suffix(".xdmf")


def _ints(values):
    return " ".join(map(str, values))


def _level_reference(h5name, name, k, nt, dims):
    """`FILE:/solution/NAME|START:STRIDE:COUNT:DATASPACE`: level k of a (nt, *dims) field."""
    return (f"{h5name}:/solution/{name}|{_ints([k] + [0] * len(dims))}:{_ints([1] * (len(dims) + 1))}"
            f":{_ints([1] + dims)}:{_ints([nt] + dims)}")


def xdmf_text(h5path, axes, t, fields):
    """The sidecar of a result file holding /mesh/points and /solution/<fields> (None in 1-D)."""
    h5path, dims = Path(h5path), [len(a) for a in axes.values()]
    if len(dims) == 1:
        return None
    n, shape = int(np.prod(dims)), _ints(dims)
    topology = f'<Topology TopologyType="{len(dims)}DSMesh" Dimensions="{shape}"/>'
    geometry = (f'<Geometry GeometryType="XYZ"><DataItem Dimensions="{n} 3" NumberType="Float" '
                f'Precision="8" Format="HDF">{h5path.name}:/mesh/points</DataItem></Geometry>')
    steps = []
    for k, time in enumerate(t):
        attributes = "".join(
            f'<Attribute Name="{name}" AttributeType="Scalar" Center="Node">'
            f'<DataItem Dimensions="{shape}" NumberType="Float" Precision="8" Format="HDF">'
            f'{_level_reference(h5path.name, name, k, len(t), dims)}</DataItem></Attribute>'
            for name in fields)
        steps.append(f'<Grid Name="t{k}" GridType="Uniform"><Time Value="{time!r}"/>'
                     f'{topology}{geometry}{attributes}</Grid>')
    return ('<?xml version="1.0" ?>\n<Xdmf Version="3.0"><Domain>'
            '<Grid Name="mfgpde" GridType="Collection" CollectionType="Temporal">\n'
            + "\n".join(steps) + "\n</Grid></Domain></Xdmf>\n")
