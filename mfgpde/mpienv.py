"""MPI start-up.  A process no launcher started is an MPI singleton; Open MPI's default
choice of transport probes the network there (about 0.2 s) for a process that never
sends, so a singleton gets the ob1 layer unless the user chose one.  The setting lives
only through MPI's initialisation: processes started later (the benchmark's mpirun rows)
inherit the environment as it was."""
import contextlib
import os

LAUNCHED = ("OMPI_COMM_WORLD_SIZE", "PMIX_RANK", "PMI_RANK", "PMI_SIZE")


@contextlib.contextmanager
def singleton_start():
    """Around the call that initialises MPI (petsc4py.init + the first PETSc import)."""
    chosen = "OMPI_MCA_pml" in os.environ or any(k in os.environ for k in LAUNCHED)
    if not chosen:
        os.environ["OMPI_MCA_pml"] = "ob1"
    try:
        yield
    finally:
        if not chosen:
            del os.environ["OMPI_MCA_pml"]
