"""The per-time-level linear solvers, chosen by one rule (`level_solver`); every choice can
be overridden from the options database (`-hjb_ksp_type`, `-fp_pc_type`, ...)."""
import numpy as np
from petsc4py import PETSc

# Crossovers measured per solve to rtol 1e-10, set-up included (docs/benchmarks.md):
# BoomerAMG's iteration count stays flat while ILU's grows with ν·dt/h²; GAMG stalls.
ILU_MAX_RATIO = 12.0
# SSOR (PCSOR's local symmetric sweeps: no set-up) beats ILU(0) below this ratio at the
# loose tolerances of the default coupling's sweeps.
SSOR_MAX_RATIO = 4.0
DIRECT_MAX_POINTS = 20_000  # 2-D, one rank: sparse LU beats ILU where ILU needs many iterations


def dominance(grid, nu, dt):
    """ν·dt/h² (the smallest h): how far the level matrix is from its diagonal."""
    return float(np.max(nu)) * dt / min(grid.h) ** 2


def level_solver(grid, ratio):
    """The default for level matrices of dominance `ratio` on this grid and rank count:
    "lu" on one rank for 1-D grids, and for small 2-D grids where ILU would need many
    iterations; "ssor" (GMRES with SSOR, local to each rank) up to SSOR_MAX_RATIO;
    "ilu" (GMRES with ILU(0), block Jacobi/ILU across ranks) up to ILU_MAX_RATIO; "amg"
    (GMRES with hypre BoomerAMG, GAMG without hypre) beyond."""
    serial, points = grid.comm.Get_size() == 1, int(np.prod(grid.n))
    if serial and (grid.dim == 1 or (grid.dim == 2 and points <= DIRECT_MAX_POINTS and ratio > ILU_MAX_RATIO)):
        return "lu"
    if ratio <= SSOR_MAX_RATIO:
        return "ssor"
    return "ilu" if ratio <= ILU_MAX_RATIO else "amg"


def configure_default(ksp, grid, rtol, ratio):
    """Set `ksp` to the level solver of `level_solver`; Krylov solves are right-
    preconditioned so that `rtol` bounds the true residual (the Fokker–Planck step's mass
    conservation rests on it).  Returns the choice."""
    choice = level_solver(grid, ratio)
    pc = ksp.getPC()
    if choice == "lu":
        ksp.setType(PETSc.KSP.Type.PREONLY)
        pc.setType(PETSc.PC.Type.LU)
        return choice
    ksp.setType(PETSc.KSP.Type.GMRES)
    ksp.setPCSide(PETSc.PC.Side.RIGHT)
    ksp.setNormType(PETSc.KSP.NormType.UNPRECONDITIONED)
    ksp.setTolerances(rtol=rtol, atol=1e-50, max_it=2000)
    if choice == "ssor":
        pc.setType(PETSc.PC.Type.SOR)
    elif choice == "ilu":
        pc.setType(PETSc.PC.Type.BJACOBI)
    elif PETSc.Sys.hasExternalPackage("hypre"):
        pc.setType(PETSc.PC.Type.HYPRE)
    else:
        pc.setType(PETSc.PC.Type.GAMG)
    return choice
