"""One backward equation with a scalar control entering the drifts affinely, implicit Euler:

    (V − V^{n+1})/dt + ρ V − Σ_d ν_d D²_d V − min_u [ ℓ(u) + Σ_d b_d(u)⁺ D⁺_d V + b_d(u)⁻ D⁻_d V ] = 0,
    b_d(u) = a_d + c_d u,

each axis upwinded by the sign of its whole drift under the control (Kushner–Dupuis), so
the scheme is monotone.  The bracket is piecewise quadratic in u between the controls
where some b_d changes sign (at most one per controlled axis): it is minimised on each
such interval, intersected with the admissible controls, and the best is taken.  The
Jacobian is the upwind transport operator of the minimising control (envelope theorem),
on the grid's star stencil.  Same interface as MFGProblem towards HJBSolver.

A box cut out of an unbounded domain: on a wall the controls are restricted to those that
move the state inwards along every controlled axis (where some exist).  Behind the
grid's mirror a move into the wall would look free, and the two local minima that makes
would let the control jump between iterations.
"""
from dataclasses import dataclass
from typing import Callable

import numpy as np

from ..discretisation import Stencil, laplacian, one_sided_gradients


@dataclass
class ControlledDrift:
    """At the owned points: per axis the drift b_d(u) = a_d + c_d u, the running cost ℓ(u),
    argmin(s) = the minimiser of ℓ(u) + s u over the admissible controls [low, high]."""
    a: list
    c: list
    cost: Callable
    argmin: Callable
    low: float = -np.inf
    high: float = np.inf


class ControlledHJB:
    def __init__(self, grid, rho, nu, T, nt):
        """nu: diffusion ν_d = σ_d²/2 per axis."""
        self.grid, self.rho, self.nu = grid, float(rho), list(nu)
        self.T, self.nt = float(T), int(nt)
        self.dt = self.T / self.nt
        self.t = np.linspace(0.0, self.T, self.nt + 1)
        self.stencil = Stencil(grid)
        self.diffusion = self.stencil.laplacian_coefficients(self.nu)

    def policy(self, padded, drift):
        """The minimising control u at the owned points and the minimum q of the bracket
        (`padded` as the grid gives it: mirrored at the walls)."""
        shape = self.grid.owned_shape
        grads = one_sided_gradients(padded, self.grid.h)
        a = [np.broadcast_to(v, shape) for v in drift.a]
        c = [np.broadcast_to(v, shape) for v in drift.c]
        with np.errstate(divide="ignore", invalid="ignore"):
            kinks = [(d, np.where(cd != 0, -ad / cd, np.inf)) for d, (ad, cd) in enumerate(zip(a, c)) if np.any(cd != 0)]
        low, high = self._inwards(kinks, c, drift.low, drift.high)
        edges = [low] + [np.clip(k, low, high) for k in np.sort([k for _, k in kinks], axis=0)] + [high]
        best_u, best_q = np.zeros(shape), np.full(shape, np.inf)
        for lo, hi in zip(edges[:-1], edges[1:]):
            with np.errstate(invalid="ignore"):  # (−inf + inf)/2 where an end is open: not used
                inside = np.where(np.isfinite(lo) & np.isfinite(hi), 0.5 * (lo + hi),
                                  np.where(np.isfinite(lo), lo + 1.0, np.where(np.isfinite(hi), hi - 1.0, 0.0)))
            sides = [np.where(ad + cd * inside > 0, pp, pm) for ad, cd, (pm, pp) in zip(a, c, grads)]
            s = sum(cd * p for cd, p in zip(c, sides))
            u = np.clip(drift.argmin(s), lo, hi)
            with np.errstate(invalid="ignore", over="ignore"):
                q = drift.cost(u) + sum(ad * p for ad, p in zip(a, sides)) + s * u
            better = (lo <= hi) & (q < best_q)
            best_u, best_q = np.where(better, u, best_u), np.where(better, q, best_q)
        return best_u, best_q

    def _inwards(self, kinks, c, low, high):
        """Per point the admissible controls [low, high], on the walls narrowed to those
        with an inward drift b_d along each controlled axis d (kink k_d: b_d(k_d) = 0)."""
        low, high = np.full(self.grid.owned_shape, low), np.full(self.grid.owned_shape, high)
        lo, hi = low.copy(), high.copy()
        for d, k in kinks:
            for wall, edge, sign in zip(self.grid.walls(d), (0, -1), (1.0, -1.0)):
                if wall:  # b_d = c_d (u − k_d) must have the sign `sign`
                    face = tuple(edge if e == d else slice(None) for e in range(self.grid.dim))
                    up = sign * c[d][face] > 0
                    lo[face] = np.where(up, np.maximum(lo[face], k[face]), lo[face])
                    hi[face] = np.where(~up & (c[d][face] != 0), np.minimum(hi[face], k[face]), hi[face])
        possible = lo <= hi
        return np.where(possible, lo, low), np.where(possible, hi, high)

    def linearisation(self, t, padded, drift):
        """What the residual and the Jacobian at one point share: the policy (u, q)."""
        return self.policy(padded, drift)

    def hjb_residual(self, t, padded, v_next, drift, up=None):
        q = (up or self.policy(padded, drift))[1]
        v = padded[(slice(1, -1),) * self.grid.dim]
        return (v - v_next) / self.dt + self.rho * v - laplacian(padded, self.grid.h, self.nu) - q

    def hjb_jacobian(self, t, padded, drift, up=None):
        u = (up or self.policy(padded, drift))[0]
        b = [np.broadcast_to(a + c * u, self.grid.owned_shape) for a, c in zip(drift.a, drift.c)]
        coeffs = (self.stencil.drift_coefficients([-np.minimum(v, 0.0) for v in b], [-np.maximum(v, 0.0) for v in b])
                  - self.diffusion)
        coeffs[0] += 1.0 / self.dt + self.rho
        return coeffs
