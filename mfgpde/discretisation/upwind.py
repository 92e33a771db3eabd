"""Differences on padded blocks (owned points plus one ghost layer) and the Godunov
upwind choice behind the monotone numerical Hamiltonian.

For an axis d with spacing h: p⁻ = (u_i − u_{i−1})/h, p⁺ = (u_{i+1} − u_i)/h.
"""
import numpy as np


def _shifted(padded, axis, shift):
    sl = [slice(1, -1)] * padded.ndim
    sl[axis] = slice(1 + shift, padded.shape[axis] - 1 + shift)
    return padded[tuple(sl)]


def one_sided_gradients(padded, h):
    """(p⁻, p⁺) per axis at the owned points."""
    centre = _shifted(padded, 0, 0)
    return [((centre - _shifted(padded, d, -1)) / h[d], (_shifted(padded, d, 1) - centre) / h[d])
            for d in range(padded.ndim)]


def laplacian(padded, h):
    """Δ_h u = Σ_d (u_{i+1} − 2u_i + u_{i−1}) / h_d² at the owned points."""
    centre = _shifted(padded, 0, 0)
    return sum((_shifted(padded, d, 1) - 2 * centre + _shifted(padded, d, -1)) / h[d] ** 2
               for d in range(padded.ndim))


def upwind_gradient(p_minus, p_plus):
    """Godunov choice along one axis for an H convex in p_d with its minimum at p_d = 0:
    p̃ = p⁺ where p⁺ < 0 (drift −∂pH > 0 looks forward), p⁻ where p⁻ > 0, 0 in a valley,
    and at a peak (p⁻ > 0 > p⁺) the larger in modulus (exact for H even in p_d; the
    solvers then compare H itself there).  Returns (p̃, side) with side
    −1, 0, +1 naming the difference used, so that ∂p̃/∂u is known to the Jacobian."""
    forward = p_plus < 0
    backward = p_minus > 0
    peak = forward & backward
    take_forward = forward & ~(peak & (p_minus > -p_plus))
    take_backward = backward & ~take_forward
    p = np.where(take_forward, p_plus, np.where(take_backward, p_minus, 0.0))
    side = take_forward.astype(np.int8) - take_backward.astype(np.int8)
    return p, side
