"""A discrete MFG: model + grid + time grid, and the numerical Hamiltonian that
both the HJB and the Fokker–Planck solvers use (one source for both)."""
import numpy as np

from ..discretisation import Stencil, laplacian, one_sided_gradients, upwind_gradient
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

    def upwind(self, t, padded_u, density):
        """Godunov upwind gradient p̃ (list per axis) and the sides used (−1, 0, +1).  At a
        peak (p⁻ > 0 > p⁺) Godunov takes the side with the larger H."""
        grads = one_sided_gradients(padded_u, self.grid.h)
        p, sides = (list(v) for v in zip(*(upwind_gradient(pm, pp) for pm, pp in grads)))
        for d, (pm, pp) in enumerate(grads):
            peak = (pm > 0) & (pp < 0)
            if np.any(peak):
                H_minus = self.model.hamiltonian(t, self.x, p[:d] + [pm] + p[d + 1:], density)
                H_plus = self.model.hamiltonian(t, self.x, p[:d] + [pp] + p[d + 1:], density)
                forward = peak & (H_plus > H_minus)
                backward = peak & ~forward
                p[d] = np.where(forward, pp, np.where(backward, pm, p[d]))
                sides[d] = np.where(forward, 1, np.where(backward, -1, sides[d])).astype(np.int8)
        return p, sides

    def _owned(self, value):
        return np.broadcast_to(value, self.grid.owned_shape)

    def hjb_residual(self, t, padded_u, u_next, density):
        """(u − u^{n+1})/dt + ρu − νΔ_h u + H(x, p̃(u); m^{n+1})."""
        u = padded_u[(slice(1, -1),) * self.grid.dim]
        p, _ = self.upwind(t, padded_u, density)
        return ((u - u_next) / self.dt + self.model.rho * u - self.model.nu * laplacian(padded_u, self.grid.h)
                + self.model.hamiltonian(t, self.x, p, density))

    def hjb_jacobian(self, t, padded_u, density):
        """Stencil coefficients of ∂(hjb_residual)/∂u."""
        c = self.fp_operator(t, padded_u, density)
        c[0] += self.model.rho
        return c

    def fp_operator(self, t, padded_u, density, m=None):
        """Coefficients of I/dt − νΔ_h + L_u, L_u v = Σ_d ∂H/∂p_d D̃_d v; its transpose is the
        Fokker–Planck matrix.  With m given, ∂pH gains m ∂²H/∂p∂m (the derivative of Lᵀm in m)."""
        p, sides = self.upwind(t, padded_u, density)
        dH = [self._owned(v) for v in self.model.dH_dp(t, self.x, p, density)]
        if m is not None:
            dH = [a + m * self._owned(b) for a, b in zip(dH, self.model.d2H_dpdm(t, self.x, p, density))]
        c = self.stencil.drift_coefficients(dH, sides) - self.model.nu * self.laplacian
        c[0] += 1.0 / self.dt
        return c
