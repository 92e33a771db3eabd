"""Solvers: HJB backward, Fokker–Planck forward, and their couplings.
They see the abstract model interface only."""
from .anderson import AndersonSolver
from .couplings import NewtonCoupling
from .exploitability import exploitability
from .fp import FPSolver
from .hjb import HJBSolver
from .monitors import HistoryMonitor, MassMonitor, ProgressMonitor, check_finite
from .picard import PicardSolver, Solution
from .problem import MFGProblem, SolverError

__all__ = ["AndersonSolver", "FPSolver", "HJBSolver", "HistoryMonitor", "MassMonitor", "MFGProblem", "NewtonCoupling", "PicardSolver",
           "ProgressMonitor", "exploitability", "Solution", "SolverError", "check_finite"]
