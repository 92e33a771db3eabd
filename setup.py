from setuptools import find_packages, setup

setup(
    name="mfgpde",
    version="0.1.0",
    description="Finite-difference solvers for mean field games and mean field Stackelberg games",
    packages=find_packages(include=["mfgpde", "mfgpde.*"]),
    python_requires=">=3.11",
    # The scientific stack (numpy, scipy, petsc4py, mpi4py, h5py, matplotlib) comes from
    # the system or a cluster module; see README. It is not resolved by pip on purpose.
    entry_points={"console_scripts": ["mfgpde = mfgpde.cli:main"]},
)
