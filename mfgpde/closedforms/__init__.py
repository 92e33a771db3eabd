"""Closed-form (semi-analytic) reference solutions for testing the solvers."""
from .lq_mfg import LQMFGClosedForm

__all__ = ["LQMFGClosedForm"]
