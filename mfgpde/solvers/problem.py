"""A discrete MFG: model + grid + time grid, and the numerical Hamiltonian that
both the HJB and the Fokker–Planck solvers use (one source for both)."""
from dataclasses import dataclass

import numpy as np

from ..discretisation import Stencil, engquist_osher, laplacian, one_sided_gradients
from ..models import Density


class SolverError(RuntimeError):
    """A solve failed or did not converge; never returned as a solution."""


def sweep_guess(previous, path, k, step):
    """Start for level k of a sweep that has just solved levels k − step, k − 2·step (step
    −1 backward, +1 forward) of `path`, where `previous` is the sweep before: previous[k]
    plus its change d = path − previous extrapolated linearly from those levels,
    2 d[k − step] − d[k − 2·step] (d[k − step] where only that level exists).  The change
    between sweeps is smooth in time: a level solve starts off by the extrapolation error of
    that change, not by the change itself."""
    a = k - step
    d = path[a] - previous[a]
    b = a - step
    if 0 <= b < len(path):
        d = 2 * d - (path[b] - previous[b])
    return previous[k] + d


class MFGProblem:
    """t_n = n T / nt, n = 0..nt.  Paths are arrays (nt+1, *owned_shape).  For a model of
    several populations, one problem per population; `means` is then set by the coupling
    to the path (nt+1, populations, dim) of all populations' means."""

    def __init__(self, grid, model, T, nt, population=0):
        self.grid, self.model, self.population = grid, model, population
        self.means = None
        self.T, self.nt = float(T), int(nt)
        self.dt = self.T / self.nt
        self.t = np.linspace(0.0, self.T, self.nt + 1)
        self.x = grid.local_coordinates()
        self.stencil = Stencil(grid)
        self.laplacian = self.stencil.laplacian_coefficients()
        self._zero = [np.zeros(grid.owned_shape)] * grid.dim
        self._H0 = (None, None, None)  # (t, density, H(t, x, 0; density)) of the last residual
        self._diffusion = (None, None)  # (ν, ν Δ_h coefficients)

    @property
    def nu(self):
        """ν = σ²/2 (a number or one per axis)."""
        return self.model.nu

    def density(self, m, n=None):
        """What the model sees of time level n with density m."""
        mass, mean = self.grid.moments(m)
        means = mean[None] if self.means is None else self.means[n]
        return Density(m=m, mass=mass, mean=mean, means=means, population=self.population)

    def initial_density(self):
        """m0 scaled to unit mass; a ValueError says why when it cannot be normalised."""
        m0 = np.broadcast_to(self.model.initial_density(self.x, self.population), self.grid.owned_shape).astype(float)
        bad = self.grid.comm.allreduce(bool(np.any(~np.isfinite(m0)) or np.any(m0 < 0)))
        mass = self.grid.integrate(m0) if not bad else np.nan
        if bad or not mass > 0 or not np.isfinite(mass):
            raise ValueError("model: the initial density is negative, not finite or has no mass "
                             "on the grid, so it cannot be normalised")
        return m0 / mass

    def terminal(self, density):
        return np.broadcast_to(self.model.terminal(self.x, density), self.grid.owned_shape).astype(float)

    def upwind(self, padded_u):
        """Engquist–Osher split per axis (orientation from the model's concave axes): the
        backward and forward gradients p_b, p_f, and the masks where each part is active
        (∂p_b/∂p⁻ and ∂p_f/∂p⁺)."""
        grads = one_sided_gradients(padded_u, self.grid.h)
        split = [engquist_osher(pm, pp, concave) for (pm, pp), concave in zip(grads, self.model.concave_axes())]
        return Upwind([b for b, _ in split], [f for _, f in split],
                      [b != 0 for b, _ in split], [f != 0 for _, f in split])

    def linearisation(self, t, padded_u, density):
        """What the residual and the Jacobian at one point share: the upwind split."""
        return self.upwind(padded_u)

    def eo(self, fn, up, *args, at_zero=None):
        """fn(p_b) + fn(p_f) − fn(0) for a function of p, elementwise over lists (fn(0) given
        as `at_zero` when known)."""
        a, b = fn(up.backward, *args), fn(up.forward, *args)
        c = fn(self._zero, *args) if at_zero is None else at_zero
        if isinstance(a, list):
            return [x + y - z for x, y, z in zip(a, b, c)]
        return a + b - c

    def _owned(self, value):
        return np.broadcast_to(value, self.grid.owned_shape)

    # `up`, where given, is self.upwind(padded_u) computed once by a caller that needs it
    # for several of these.
    def hjb_residual(self, t, padded_u, u_next, density, up=None):
        """(u − u^{n+1})/dt + ρu − νΔ_h u + H_EO(x, p⁻, p⁺; m^{n+1})."""
        u = padded_u[(slice(1, -1),) * self.grid.dim]
        up = up or self.upwind(padded_u)
        H = lambda p: self.model.hamiltonian(t, self.x, p, density)  # noqa: E731
        if self._H0[0] != t or self._H0[1] is not density:  # the same for every Newton step of a level
            self._H0 = (t, density, H(self._zero))
        H = self.eo(H, up, at_zero=self._H0[2])
        return ((u - u_next) / self.dt + self.model.rho * u - self.model.nu * laplacian(padded_u, self.grid.h)
                + H)

    def hjb_jacobian(self, t, padded_u, density, up=None):
        """Stencil coefficients of ∂(hjb_residual)/∂u."""
        c = self.fp_operator(t, padded_u, density, up=up)
        c[0] += self.model.rho
        return c

    def fp_operator(self, t, padded_u, density, m=None, up=None):
        """Coefficients of I/dt − νΔ_h + L_u, L_u the linearisation of H_EO; its transpose is
        the Fokker–Planck matrix.  With m given, ∂pH gains m ∂²H/∂p∂m (the derivative of
        L_uᵀm in m)."""
        up = up or self.upwind(padded_u)
        parts = []
        for p, mask in ((up.backward, up.masks_backward), (up.forward, up.masks_forward)):
            dH = [self._owned(v) for v in self.model.dH_dp(t, self.x, p, density)]
            if m is not None:
                dH = [a + m * self._owned(b) for a, b in zip(dH, self.model.d2H_dpdm(t, self.x, p, density))]
            parts.append([np.where(k, v, 0.0) for k, v in zip(mask, dH)])
        c = self.stencil.drift_coefficients(*parts)
        c -= self.diffusion()
        c[0] += 1.0 / self.dt
        return c

    def diffusion(self):
        """Coefficients of ν Δ_h."""
        nu = self.model.nu
        if self._diffusion[0] is None or not np.array_equal(self._diffusion[0], nu):
            self._diffusion = (np.array(nu, copy=True), nu * self.laplacian)
        return self._diffusion[1]


@dataclass
class Upwind:
    backward: list
    forward: list
    masks_backward: list
    masks_forward: list
