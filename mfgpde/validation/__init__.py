"""Validation against closed forms: error norms and observed convergence orders."""
from .cases import CASES, convergence_study, run_validation
from .study import closed_form_errors, observed_orders

__all__ = ["CASES", "closed_form_errors", "convergence_study", "observed_orders", "run_validation"]
