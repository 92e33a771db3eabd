"""Benchmarks: the PETSc solvers against a plain scipy baseline of the same discretisation."""
