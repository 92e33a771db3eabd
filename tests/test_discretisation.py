"""Operators of the discretisation layer against direct formulas."""
import re

import numpy as np
import petsc4py
import pytest

petsc4py.init()
from petsc4py import PETSc  # noqa: E402

from conftest import RUNS, mfgpde  # noqa: E402
from mfgpde.discretisation import Stencil, engquist_osher, laplacian, one_sided_gradients  # noqa: E402
from mfgpde.grids import Grid  # noqa: E402


@pytest.mark.parametrize("pm, pp, back, fwd", [
    (0.5, 1.0, 0.5, 0.0),     # increasing: drift to the left, look back
    (-1.0, -0.5, 0.0, -0.5),  # decreasing: look forward
    (-0.5, 0.5, 0.0, 0.0),    # valley
    (1.0, -0.5, 1.0, -0.5),   # peak: both sides contribute
    (0.0, 0.0, 0.0, 0.0),
])
def test_engquist_osher_split(pm, pp, back, fwd):
    b, f = engquist_osher(np.array([pm]), np.array([pp]))
    assert b[0] == back and f[0] == fwd


def test_engquist_osher_matches_its_integral_definition():
    """H_EO(a, b) = H(0) + ∫_0^a max(H', 0) + ∫_0^b min(H', 0), here for H = p²/2 + p⁴/4."""
    rng = np.random.default_rng(0)
    pm, pp = rng.normal(size=(2, 500))
    H = lambda p: p ** 2 / 2 + p ** 4 / 4  # noqa: E731
    dH = lambda p: p + p ** 3  # noqa: E731
    b, f = engquist_osher(pm, pp)
    s = np.linspace(0, 1, 4001)[:, None]
    integral = lambda x, part: np.trapz(part(dH(s * x)) * x, s, axis=0)  # noqa: E731
    ref = H(0) + integral(pm, lambda v: np.maximum(v, 0)) + integral(pp, lambda v: np.minimum(v, 0))
    np.testing.assert_allclose(H(b) + H(f) - H(0), ref, atol=1e-6)


def _random_field(grid, seed=1):
    vec = grid.create_vec()
    x = grid.local_coordinates()
    grid.set_owned(vec, sum(np.sin((d + 1.3) * xd + seed) for d, xd in enumerate(x)) + 0.1 * x[0] ** 2)
    return vec


@pytest.mark.parametrize("boundary", ["reflecting", "periodic"])
@pytest.mark.parametrize("n", [[7], [6, 5], [4, 5, 3]])
def test_assembled_laplacian_equals_slice_formula(n, boundary):
    grid = Grid([0.0] * len(n), [1.0 + 0.5 * d for d in range(len(n))], n, boundary=boundary)
    st = Stencil(grid)
    A = st.assemble(st.matrix(), st.laplacian_coefficients())
    u = _random_field(grid)
    y = grid.create_vec()
    A.mult(u, y)
    np.testing.assert_allclose(grid.owned(y), laplacian(grid.padded(u), grid.h), rtol=1e-12, atol=1e-9)
    # Δ_h is symmetric and its rows sum to zero (no-flux / periodic)
    assert A.isSymmetric(1e-10)
    ones = grid.create_vec()
    ones.set(1.0)
    A.mult(ones, y)
    assert y.norm() < 1e-9


def test_reflecting_wall_mirrors_edge_cell():
    grid = Grid([0.0], [1.0], [5])
    u = _random_field(grid)
    padded = grid.padded(u)
    assert padded[0] == padded[1] and padded[-1] == padded[-2]
    (pm, pp), = one_sided_gradients(padded, grid.h)
    assert pm[0] == 0.0 and pp[-1] == 0.0


def test_periodic_wraps():
    grid = Grid([0.0], [1.0], [5], boundary="periodic")
    padded = grid.padded(_random_field(grid))
    assert padded[0] == padded[-2] and padded[-1] == padded[1]


@pytest.mark.parametrize("n", [[9], [7, 6]])
def test_drift_operator_and_its_transpose(n):
    """For H = ½|p|²: L_u u = Σ_d (p_b D⁻u + p_f D⁺u) = Σ_d (p_b² + p_f²) = 2 H_EO; the rows of
    L sum to zero (so the adjoint conserves mass); the transposed assembly is Lᵀ, with
    off-diagonals ≤ 0 (an M-matrix, so the density stays non-negative)."""
    grid = Grid([0.0] * len(n), [1.0] * len(n), n)
    st = Stencil(grid)
    u = _random_field(grid)
    split = [engquist_osher(a, b) for a, b in one_sided_gradients(grid.padded(u), grid.h)]
    coeffs = st.drift_coefficients([b for b, _ in split], [f for _, f in split])
    L = st.assemble(st.matrix(), coeffs)
    y = grid.create_vec()
    L.mult(u, y)
    np.testing.assert_allclose(grid.owned(y), sum(b ** 2 + f ** 2 for b, f in split), rtol=1e-10, atol=1e-10)
    ones = grid.create_vec()
    ones.set(1.0)
    L.mult(ones, y)
    assert y.norm() < 1e-10
    LT = st.assemble(st.matrix(), coeffs, transpose=True)
    assert LT.equal(L.transpose())
    dense = LT.convert("dense").getDenseArray()
    assert np.all(dense - np.diag(np.diag(dense)) <= 1e-12)


@pytest.mark.slow
def test_hjb_jacobian_matches_finite_differences(tmp_path):
    """PETSc's -snes_test_jacobian on every Newton step of a small 2-D run."""
    proc = mfgpde("run", RUNS / "lq_mfg_2d.toml", "--set", "grid.n=[8,7]", "--set", "time.nt=3",
                  "--set", "solver.max_iterations=2", "--set", "output.plots=false",
                  "-hjb_snes_test_jacobian", "-o", tmp_path / "j.h5")
    ratios = [float(v) for v in re.findall(r"\|\|J - Jfd\|\|_F/\|\|J\|\|_F = ([0-9.eE+-]+)", proc.stdout)]
    assert len(ratios) >= 6, proc.stdout[-2000:] + proc.stderr[-2000:]
    assert max(ratios) < 1e-6


@pytest.mark.parametrize("boundary", ["reflecting", "periodic"])
def test_transpose_apply_equals_matrix_transpose(boundary):
    grid = Grid([0.0, 0.0], [1.0, 2.0], [6, 5], boundary=boundary)
    st = Stencil(grid)
    rng = np.random.default_rng(3)
    coeffs = rng.normal(size=(st.width,) + grid.owned_shape)
    m = _random_field(grid, seed=4)
    y, z = grid.create_vec(), grid.create_vec()
    st.assemble(st.matrix(), coeffs).multTranspose(m, y)
    st.transpose_apply(coeffs, grid.owned(m), z)
    np.testing.assert_allclose(z.getArray(), y.getArray(), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("boundary", ["reflecting", "periodic"])
@pytest.mark.parametrize("n", [[7], [6, 5]])
def test_transposed_and_difference_gram_coefficients(n, boundary):
    """Row-wise coefficients of Aᵀ and of Σ_k D_kᵀ diag(w_k) D_k ((D_k v)_j = v_{nb_k(j)} − v_j)
    against dense products, random fields, walls and wrap-around included."""
    grid = Grid([0.0] * len(n), [1.0] * len(n), n, boundary=boundary)
    st = Stencil(grid)
    rng = np.random.default_rng(5)
    c = rng.normal(size=(st.width,) + grid.owned_shape)
    dense = lambda coeffs: st.assemble(st.matrix(), coeffs).convert("dense").getDenseArray()  # noqa: E731
    np.testing.assert_allclose(dense(st.transposed(c)), dense(c).T, atol=1e-12)
    weights = rng.uniform(0.5, 2.0, size=(st.width - 1,) + grid.owned_shape)
    expected = 0.0
    for k in range(1, st.width):
        e = np.zeros_like(c)
        e[0], e[k] = -1.0, 1.0
        D = dense(e)
        expected = expected + D.T @ np.diag(weights[k - 1].ravel(order="F")) @ D
    np.testing.assert_allclose(dense(st.difference_gram(weights)), expected, atol=1e-12)
