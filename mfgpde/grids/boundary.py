"""Boundary rule names (no PETSc: the run-file validation reads them)."""
REFLECTING = "reflecting"
PERIODIC = "periodic"
BOUNDARIES = (REFLECTING, PERIODIC)
