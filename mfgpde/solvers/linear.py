"""Default linear solvers for the per-time-step systems; every choice can be overridden
from the options database (`-hjb_ksp_type`, `-fp_pc_type`, ...)."""
from petsc4py import PETSc

DIRECT_MAX_POINTS = 5000  # measured: beyond this sparse LU of a 2-D step loses to GMRES + ILU


def configure_default(ksp, grid, rtol):
    """Sparse LU on one rank for 1-D grids and small ones; otherwise GMRES with block
    Jacobi/ILU, right-preconditioned so that `rtol` bounds the true residual (mass
    conservation of the Fokker–Planck step depends on it)."""
    pc = ksp.getPC()
    points = 1
    for n in grid.n:
        points *= n
    if grid.comm.Get_size() == 1 and (grid.dim == 1 or points <= DIRECT_MAX_POINTS):
        ksp.setType(PETSc.KSP.Type.PREONLY)
        pc.setType(PETSc.PC.Type.LU)
    else:
        ksp.setType(PETSc.KSP.Type.GMRES)
        ksp.setPCSide(PETSc.PC.Side.RIGHT)
        ksp.setNormType(PETSc.KSP.NormType.UNPRECONDITIONED)
        ksp.setTolerances(rtol=rtol, atol=1e-50, max_it=2000)
        pc.setType(PETSc.PC.Type.BJACOBI)
