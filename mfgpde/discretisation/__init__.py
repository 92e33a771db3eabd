"""Finite-difference operators on grids: one-sided differences, the upwind numerical
Hamiltonian, and sparse assembly of star-stencil operators.  Knows grids, not models."""
from .stencil import Stencil
from .upwind import laplacian, one_sided_gradients, engquist_osher

__all__ = ["Stencil", "laplacian", "one_sided_gradients", "engquist_osher"]
