"""The simplex grid of population states: lattice, interpolation, rank split."""
import numpy as np
import pytest

from mfgpde.grids.simplex import SimplexGrid


@pytest.mark.parametrize("states, n, size", [(2, 10, 11), (3, 6, 28)])
def test_lattice_points_are_on_the_simplex(states, n, size):
    g = SimplexGrid(states, n)
    assert g.points.shape == (size, states) and np.allclose(g.points.sum(axis=1), 1.0)
    assert np.all(g.points >= 0) and len({tuple(k) for k in g.lattice}) == size


@pytest.mark.parametrize("states", [2, 3])
def test_interpolation_is_exact_for_affine_and_first_order_otherwise(states):
    rng = np.random.default_rng(1)
    z = np.vstack([rng.dirichlet(np.ones(states), 2000), np.eye(states)])
    affine = lambda p: 0.3 + p @ (1.7 * np.arange(1, states + 1))  # noqa: E731
    smooth = lambda p: np.sin(3 * p[:, 0]) * np.cos(2 * p[:, -1])  # noqa: E731
    g = SimplexGrid(states, 9)
    assert np.max(np.abs(g.interpolate(affine(g.points), z) - affine(z))) < 1e-13
    errors = [np.max(np.abs(SimplexGrid(states, n).interpolate(smooth(SimplexGrid(states, n).points), z) - smooth(z)))
              for n in (8, 16, 32)]
    assert errors[0] / errors[1] > 3.0 and errors[1] / errors[2] > 3.0, errors  # second order


def test_bad_grids_are_named():
    with pytest.raises(ValueError, match="grid.states"):
        SimplexGrid(4, 5)
    with pytest.raises(ValueError, match="grid.n"):
        SimplexGrid(2, 0)
