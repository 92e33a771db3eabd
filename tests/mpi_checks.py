"""Checks run under `mpirun -n P` by tests/test_mpi.py; exits non-zero on failure."""
import sys

import petsc4py

petsc4py.init(sys.argv)
import numpy as np  # noqa: E402
from petsc4py import PETSc  # noqa: E402

from mfgpde.discretisation import Stencil, laplacian  # noqa: E402
from mfgpde.grids import Grid  # noqa: E402


def field(*x):
    return sum(np.sin((d + 1.3) * xd + 0.2) for d, xd in enumerate(x)) + 0.1 * x[0] ** 2


def check_grid(n, boundary):
    grid = Grid([0.0] * len(n), [1.0 + d for d in range(len(n))], n, boundary=boundary)
    assert grid.comm.Get_size() > 1
    full_x = np.meshgrid(*[grid.coordinates(d) for d in range(grid.dim)], indexing="ij")
    full = field(*full_x)
    vec = grid.create_vec()
    grid.set_owned(vec, field(*grid.local_coordinates()))
    # gather reproduces the whole field; scatter gives the owned block back
    gathered = grid.gather(grid.owned(vec))
    if grid.rank == 0:
        assert np.array_equal(gathered, full)
    assert np.array_equal(grid.scatter(full), grid.owned(vec))
    # ghosts: neighbours' values, mirrored at walls, wrapped when periodic
    mode = "wrap" if boundary == "periodic" else "edge"
    ref = np.pad(full, 1, mode=mode)[tuple(slice(s, e + 2) for s, e in grid.ranges)]
    padded = grid.padded(vec)
    for d in range(grid.dim):  # star stencil: compare the faces, not the corners
        sl = [slice(1, -1)] * grid.dim
        sl[d] = slice(None)
        assert np.array_equal(padded[tuple(sl)], ref[tuple(sl)]), (n, boundary, d)
    # assembled Laplacian, and the transposed assembly, across the rank boundary
    st = Stencil(grid)
    A = st.assemble(st.matrix(), st.laplacian_coefficients())
    y = grid.create_vec()
    A.mult(vec, y)
    assert np.allclose(grid.owned(y), laplacian(padded, grid.h), rtol=1e-12, atol=1e-9)
    x = grid.local_coordinates()
    c = np.stack([(1.0 + k) * (2.0 + field(*x) * (k + 1) ** 0.5) for k in range(st.width)])
    B, BT = st.assemble(st.matrix(), c), st.assemble(st.matrix(), c, transpose=True)
    assert BT.equal(B.transpose())
    # the in-place value arrays against entry-by-entry insertion, refilled with new values
    rows, cols, B = *st.rows_and_columns(), st.matrix()
    for scale in (1.0, -3.0):
        R = grid.da.createMatrix()
        R.setValuesLocalRCV(np.broadcast_to(rows, cols.shape).reshape(-1, 1).copy(), cols.reshape(-1, 1).copy(),
                            (scale * st.flat(c)).reshape(-1, 1), addv=PETSc.InsertMode.ADD_VALUES)
        R.assemble()
        assert st.assemble(B, scale * c).equal(R), (n, boundary, scale)
    check_difference_gram(st, c[1:], vec)


def check_difference_gram(st, weights, vec):
    """The assembled Σ_k D_kᵀ diag(w_k) D_k against PETSc's own products."""
    G = st.assemble(st.matrix(), st.difference_gram(weights))
    y, z = st.grid.create_vec(), st.grid.create_vec()
    G.mult(vec, y)
    ref = st.grid.create_vec()
    ref.set(0.0)
    for k in range(1, st.width):
        c = np.zeros((st.width,) + st.grid.owned_shape)
        c[0], c[k] = -1.0, 1.0
        D = st.assemble(st.matrix(), c)
        D.diagonalScale(L=weights_vec(st.grid, weights[k - 1]))
        Dv, DtDv = st.grid.create_vec(), st.grid.create_vec()
        st.assemble(st.matrix(), c).mult(vec, Dv)
        D.multTranspose(Dv, DtDv)  # D here is diag(w) D_k, so this is D_kᵀ diag(w) D_k v
        ref.axpy(1.0, DtDv)
    assert np.allclose(y.getArray(), ref.getArray(), rtol=1e-12, atol=1e-10)


def weights_vec(grid, values):
    v = grid.create_vec()
    grid.set_owned(v, values)
    return v
    # reductions
    assert abs(grid.integrate(np.ones(grid.owned_shape)) - np.prod(np.subtract(grid.upper, grid.lower))) < 1e-12


for n in ([12], [9, 8], [6, 5, 4]):
    for boundary in ("reflecting", "periodic"):
        check_grid(n, boundary)
print("mpi_checks: ok")
