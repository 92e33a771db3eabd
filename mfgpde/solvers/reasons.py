"""PETSc's converged reasons in words, with the next thing to try (for failure messages)."""

SNES = {
    -1: ("DIVERGED_FUNCTION_DOMAIN", "the residual left its domain (a non-finite value)",
         "smaller time steps (time.nt) or a closer start"),
    -2: ("DIVERGED_FUNCTION_COUNT", "too many residual evaluations", "-{p}snes_max_funcs larger"),
    -3: ("DIVERGED_LINEAR_SOLVE", "a linear solve inside Newton failed",
         "-{p}ksp_type preonly -{p}pc_type lu, or -{p}ksp_max_it larger"),
    -4: ("DIVERGED_FNORM_NAN", "the residual became NaN or infinite",
         "smaller time steps (time.nt); check the model's values where the density vanishes"),
    -5: ("DIVERGED_MAX_IT", "the iteration limit was reached before the tolerance",
         "more iterations (-{p}snes_max_it), a closer start (more solver.picard_iterations), or a larger box "
         "if the density reaches a wall"),
    -6: ("DIVERGED_LINE_SEARCH", "the line search could not reduce the residual",
         "-{p}snes_linesearch_type basic, or a closer start (more solver.picard_iterations)"),
    -7: ("DIVERGED_INNER", "an inner solver failed", "-{p}snes_monitor to see where"),
    -8: ("DIVERGED_LOCAL_MIN", "Newton is stuck at a local minimum of the residual norm",
         "a closer start (more solver.picard_iterations) or solver.coupling = \"picard\""),
    -9: ("DIVERGED_DTOL", "the residual grew beyond the divergence tolerance", "a closer start or smaller time steps"),
    -10: ("DIVERGED_JACOBIAN_DOMAIN", "the Jacobian could not be evaluated", "a closer start"),
    -11: ("DIVERGED_TR_DELTA", "the trust region shrank to nothing", "-{p}snes_type newtonls"),
}
KSP = {
    -2: ("DIVERGED_NULL", "the Krylov method broke down (a null vector)", "-{p}ksp_type gmres"),
    -3: ("DIVERGED_ITS", "the iteration limit was reached before the tolerance",
         "-{p}ksp_max_it larger or a stronger preconditioner (-{p}pc_type lu, or hypre)"),
    -4: ("DIVERGED_DTOL", "the residual grew beyond the divergence tolerance", "-{p}pc_type lu"),
    -5: ("DIVERGED_BREAKDOWN", "the Krylov method broke down", "-{p}ksp_type gmres or -{p}pc_type lu"),
    -6: ("DIVERGED_BREAKDOWN_BICG", "BiCG broke down", "-{p}ksp_type gmres"),
    -7: ("DIVERGED_NONSYMMETRIC", "the method needs a symmetric matrix", "-{p}ksp_type gmres"),
    -8: ("DIVERGED_INDEFINITE_PC", "the preconditioner is indefinite", "-{p}pc_type lu"),
    -9: ("DIVERGED_NANORINF", "a NaN or infinity appeared in the solve", "smaller time steps (time.nt)"),
    -10: ("DIVERGED_INDEFINITE_MAT", "the matrix is indefinite", "-{p}ksp_type gmres"),
    -11: ("DIVERGED_PCSETUP_FAILED", "the preconditioner could not be set up", "-{p}pc_type lu"),
}


def _words(table, kind, reason, prefix):
    if reason not in table:
        return f"{kind} reason {reason}"
    name, what, hint = table[reason]
    return f"{kind} reason {reason}, {name}: {what}; try {hint.format(p=prefix)}"


def snes_reason(reason, prefix):
    """'SNES reason -5, DIVERGED_MAX_IT: ...; try ...' for a solver with options `prefix`."""
    return _words(SNES, "SNES", int(reason), prefix)


def ksp_reason(reason, prefix):
    return _words(KSP, "KSP", int(reason), prefix)
