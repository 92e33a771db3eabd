"""Result files (HDF5), the ``mfgpde info`` text and plots.

Importing this package does not import matplotlib.pyplot.
"""
from .hdf5 import (CorruptFileError, Result, cell_volume, describe, read_result, temporary_path, verify,
                   write_result)
from .plots import plot_result

__all__ = ["CorruptFileError", "Result", "cell_volume", "describe", "plot_result", "read_result", "temporary_path",
           "verify", "write_result"]
