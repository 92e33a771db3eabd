"""Result files (HDF5), the ``mfgpde info`` text and plots.

Importing this package does not import matplotlib.pyplot.
"""
from .hdf5 import (CorruptFileError, OutputError, Result, cell_volume, describe, on_root, read_result,
                   remove_stale_temporaries, temporary_path, verify, write_result)
from .plots import plot_result

__all__ = ["CorruptFileError", "OutputError", "Result", "cell_volume", "describe", "on_root", "plot_result", "read_result",
           "remove_stale_temporaries", "temporary_path", "verify", "write_result"]
