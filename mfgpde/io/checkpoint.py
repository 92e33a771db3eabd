"""Checkpoints: the state of a coupling iteration in the result layout (u, m on every time
level, the history, the resolved configuration, the SHA-256 every result file carries)
plus the iteration number and a format version.  Several populations are stored as
u_pop<k>, m_pop<k>, as in results.  Written atomically and durably by write_result;
read back only after every check passes.
"""
import json

import h5py
import numpy as np

from .hdf5 import CorruptFileError, verify, write_result

KIND = "mfgpde-checkpoint"
FORMAT = 1
MUST_MATCH = ("model", "grid", "time")  # sections a restart may not change


class CheckpointError(ValueError):
    """The checkpoint cannot be used; the message says why in one line."""


def write_checkpoint(path, *, axes, t, u, m, iteration, history, config, version):
    """One rank writes the whole state (full arrays, time first; a leading population axis
    where the model has several)."""
    attrs = {"kind": KIND, "format": FORMAT, "iteration": int(iteration), "config": config,
             "version": version, "model": config["model"]["name"], "status": "checkpoint"}
    if u.ndim == len(axes) + 1:
        fields = {"u": u, "m": m}
    else:
        fields = {f"{name}_pop{k + 1}": v[k] for name, v in (("u", u), ("m", m)) for k in range(len(v))}
    write_result(path, axes=axes, t=t, fields=fields, attrs=attrs, history=history)


def _state(solution):
    """u, m from a checkpoint's /solution group (stacked over populations if several)."""
    if "u" in solution:
        return solution["u"][()], solution["m"][()]
    count = sum(1 for name in solution if name.startswith("u_pop"))
    return tuple(np.stack([solution[f"{name}_pop{k}"][()] for k in range(1, count + 1)]) for name in ("u", "m"))


def read_checkpoint(path, config):
    """{iteration, u, m, history} from a checkpoint compatible with `config`."""
    try:
        with h5py.File(path, "r") as f:
            attrs = dict(f.attrs)
            if attrs.get("kind") != KIND:
                raise CheckpointError(f"restart: {path} is not an mfgpde checkpoint")
            if int(attrs.get("format", -1)) != FORMAT:
                raise CheckpointError(f"restart: {path} has checkpoint format {attrs.get('format')}, "
                                      f"this version reads format {FORMAT}")
            u, m = _state(f["solution"])
            history = {k: v[()] for k, v in f["history"].items()} if "history" in f else {}
    except (OSError, KeyError) as e:
        raise CheckpointError(f"restart: {path} is not a readable checkpoint ({e})") from None
    try:
        verify(path)
    except CorruptFileError:
        raise CheckpointError(f"restart: {path} is corrupted (its checksum does not match its data)") from None
    iteration = int(attrs["iteration"])
    saved = json.loads(attrs["config"])
    for section in MUST_MATCH:
        for key in sorted(set(saved[section]) | set(config[section])):
            a, b = saved[section].get(key), config[section].get(key)
            if a != b:
                raise CheckpointError(f"restart: {section}.{key} differs: checkpoint {a!r}, this run {b!r}")
    return {"iteration": iteration, "u": u, "m": m, "history": history}
