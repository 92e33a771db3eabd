"""Structured grids: geometry, boundary rules, distribution over MPI ranks."""
from .box import BOUNDARIES, PERIODIC, REFLECTING, Grid

__all__ = ["Grid", "BOUNDARIES", "PERIODIC", "REFLECTING"]
