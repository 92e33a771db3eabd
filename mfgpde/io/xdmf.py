"""XDMF sidecar: `OUT.xdmf` beside `OUT.h5` so ParaView or VisIt open the fields directly.

The grid is described as a structured mesh (2DSMesh / 3DSMesh) whose points, stored in
the result file under /mesh/points, follow the storage order of the fields (the first
grid axis slowest), so no axis is transposed.  One XDMF grid per time level, each field a
hyperslab of /solution/<field>.  1-D results get no sidecar.
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


def xdmf_text(h5path, axes, t, fields):
    """The sidecar of a result file holding /mesh/points and /solution/<fields> (None in 1-D)."""
    h5path, dims = Path(h5path), [len(a) for a in axes.values()]
    if len(dims) == 1:
        return None
    n, shape = int(np.prod(dims)), " ".join(map(str, dims))
    topology = f'<Topology TopologyType="{len(dims)}DSMesh" Dimensions="{shape}"/>'
    geometry = (f'<Geometry GeometryType="XYZ"><DataItem Dimensions="{n} 3" NumberType="Float" '
                f'Precision="8" Format="HDF">{h5path.name}:/mesh/points</DataItem></Geometry>')
    steps = []
    for k, time in enumerate(t):
        attributes = "".join(
            f'<Attribute Name="{name}" AttributeType="Scalar" Center="Node">'
            f'<DataItem ItemType="HyperSlab" Dimensions="1 {shape}" Type="HyperSlab">'
            f'<DataItem Dimensions="3 {len(dims) + 1}" Format="XML">'
            f'{k} {" ".join(["0"] * len(dims))} 1 {" ".join(["1"] * len(dims))} 1 {shape}</DataItem>'
            f'<DataItem Dimensions="{len(t)} {shape}" NumberType="Float" Precision="8" Format="HDF">'
            f'{h5path.name}:/solution/{name}</DataItem></DataItem></Attribute>' for name in fields)
        steps.append(f'<Grid Name="t{k}" GridType="Uniform"><Time Value="{time!r}"/>'
                     f'{topology}{geometry}{attributes}</Grid>')
    return ('<?xml version="1.0" ?>\n<Xdmf Version="2.0"><Domain>'
            '<Grid Name="mfgpde" GridType="Collection" CollectionType="Temporal">\n'
            + "\n".join(steps) + "\n</Grid></Domain></Xdmf>\n")
