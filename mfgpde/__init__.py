"""mfgpde: finite-difference solvers for mean field games."""
__version__ = "0.1.0"
