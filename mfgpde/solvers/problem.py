"""A discrete MFG: model + grid + time grid, and the numerical Hamiltonian that
both the HJB and the Fokker–Planck solvers use (one source for both)."""
import numpy as np

from ..discretisation import Stencil, one_sided_gradients, upwind_gradient
from ..models import Density


class SolverError(RuntimeError):
    """A solve failed or did not converge; never returned as a solution."""


class MFGProblem:
    """t_n = n T / nt, n = 0..nt.  Paths are arrays (nt+1, *owned_shape)."""

    def __init__(self, grid, model, T, nt):
        self.grid, self.model = grid, model
        self.T, self.nt = float(T), int(nt)
        self.dt = self.T / self.nt
        self.t = np.linspace(0.0, self.T, self.nt + 1)
        self.x = grid.local_coordinates()
        self.stencil = Stencil(grid)
        self.laplacian = self.stencil.laplacian_coefficients()

    def density(self, m):
        mass, mean = self.grid.moments(m)
        return Density(m=m, mass=mass, mean=mean)

    def initial_density(self):
        """m0 scaled to unit mass; SolverError-free: ValueError names the problem."""
        m0 = np.broadcast_to(self.model.initial_density(self.x), self.grid.owned_shape).astype(float)
        bad = self.grid.comm.allreduce(bool(np.any(~np.isfinite(m0)) or np.any(m0 < 0)))
        mass = self.grid.integrate(m0) if not bad else np.nan
        if bad or not mass > 0 or not np.isfinite(mass):
            raise ValueError("model: the initial density is negative, not finite or has no mass "
                             "on the grid, so it cannot be normalised")
        return m0 / mass

    def terminal(self, density):
        return np.broadcast_to(self.model.terminal(self.x, density), self.grid.owned_shape).astype(float)

    def hamiltonian(self, t, padded_u, density, linearise=False):
        """H(x, p̃(u); m) at the owned points, p̃ the upwind gradient, and with
        linearise=True also the stencil coefficients of v ↦ Σ_d ∂H/∂p_d D̃_d v."""
        p, sides = zip(*(upwind_gradient(pm, pp) for pm, pp in one_sided_gradients(padded_u, self.grid.h)))
        H = self.model.hamiltonian(t, self.x, list(p), density)
        if not linearise:
            return H, None
        dH = [np.broadcast_to(v, self.grid.owned_shape) for v in self.model.dH_dp(t, self.x, list(p), density)]
        return H, self.stencil.drift_coefficients(dH, sides)
