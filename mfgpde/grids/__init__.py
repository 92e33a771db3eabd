"""Structured grids: geometry, boundary rules, distribution over MPI ranks.  `Grid` and
`SimplexGrid` are imported on first use, so the boundary names come without PETSc."""
from .boundary import BOUNDARIES, PERIODIC, REFLECTING

__all__ = ["Grid", "SimplexGrid", "BOUNDARIES", "PERIODIC", "REFLECTING"]


def __getattr__(name):
    if name == "Grid":
        from .box import Grid
        return Grid
    if name == "SimplexGrid":
        from .simplex import SimplexGrid
        return SimplexGrid
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
