"""Structured grids: geometry, boundary rules, distribution over MPI ranks."""
from .box import BOUNDARIES, PERIODIC, REFLECTING, Grid
from .simplex import SimplexGrid

__all__ = ["Grid", "SimplexGrid", "BOUNDARIES", "PERIODIC", "REFLECTING"]
