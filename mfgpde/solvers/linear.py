"""Default linear solvers; every choice can be overridden from the options database
(`-hjb_ksp_type`, `-fp_pc_type`, ...)."""
from petsc4py import PETSc


def configure_default(ksp, nranks, rtol):
    """One rank: sparse LU.  Several ranks: GMRES with block-Jacobi/ILU, right-preconditioned
    so that `rtol` bounds the true residual (mass conservation depends on it)."""
    pc = ksp.getPC()
    if nranks == 1:
        ksp.setType(PETSc.KSP.Type.PREONLY)
        pc.setType(PETSc.PC.Type.LU)
    else:
        ksp.setType(PETSc.KSP.Type.GMRES)
        ksp.setPCSide(PETSc.PC.Side.RIGHT)
        ksp.setNormType(PETSc.KSP.NormType.UNPRECONDITIONED)
        ksp.setTolerances(rtol=rtol, atol=1e-50, max_it=2000)
        pc.setType(PETSc.PC.Type.BJACOBI)
