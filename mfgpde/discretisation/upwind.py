"""Differences on padded blocks (owned points plus one ghost layer) and the upwind split
behind the monotone numerical Hamiltonian.

For an axis d with spacing h: p⁻ = (u_i − u_{i−1})/h, p⁺ = (u_{i+1} − u_i)/h.
"""
import numpy as np


def _shifted(padded, axis, shift):
    sl = [slice(1, -1)] * padded.ndim
    sl[axis] = slice(1 + shift, padded.shape[axis] - 1 + shift)
    return padded[tuple(sl)]


def one_sided_gradients(padded, h):
    """(p⁻, p⁺) per axis at the owned points: views of one difference array per axis
    (p⁺ at i is p⁻ at i + 1)."""
    grads = []
    for d in range(padded.ndim):
        inner = [slice(1, -1)] * padded.ndim
        inner[d] = slice(None)
        D = np.diff(padded[tuple(inner)], axis=d)
        D /= h[d]
        lo, hi = [slice(None)] * padded.ndim, [slice(None)] * padded.ndim
        lo[d], hi[d] = slice(0, -1), slice(1, None)
        grads.append((D[tuple(lo)], D[tuple(hi)]))
    return grads


def laplacian(padded, h, weights=None):
    """Σ_d w_d (u_{i+1} − 2u_i + u_{i−1}) / h_d² at the owned points (w_d = 1: Δ_h u)."""
    centre = _shifted(padded, 0, 0)
    weights = [1.0] * padded.ndim if weights is None else weights
    total = np.zeros_like(centre)  # the fields' (Fortran) order
    for d, w in enumerate(weights):
        if w != 0:
            total += w * (_shifted(padded, d, 1) - 2 * centre + _shifted(padded, d, -1)) / h[d] ** 2
    return total


def engquist_osher(p_minus, p_plus, concave=False):
    """Engquist–Osher split along one axis, for an H convex in p_d with its minimum at
    p_d = 0: the backward part max(p⁻, 0) (drift to the left looks back) and the forward
    part min(p⁺, 0); for an H concave in p_d with its maximum at 0 (an adversary's axis
    in an Isaacs Hamiltonian) the parts are min(p⁻, 0) and max(p⁺, 0).  Either way
    H_EO = H(backward) + H(forward) − H(0) is monotone and, unlike Godunov, continuous in
    (p⁻, p⁺) at a peak of u, so the drift does not flip there."""
    if concave:
        return np.minimum(p_minus, 0.0), np.maximum(p_plus, 0.0)
    return np.maximum(p_minus, 0.0), np.minimum(p_plus, 0.0)
