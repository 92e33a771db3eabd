"""Default linear solver set-up; every choice can be overridden from the options database."""
from petsc4py import PETSc


def configure_direct(ksp, nranks):
    """Sparse LU (MUMPS when distributed); `-<prefix>ksp_type`, `-<prefix>pc_type` override."""
    ksp.setType(PETSc.KSP.Type.PREONLY)
    pc = ksp.getPC()
    pc.setType(PETSc.PC.Type.LU)
    if nranks > 1:
        pc.setFactorSolverType("mumps")
