"""Checkpoints: the state of a coupling iteration in the result layout (u, m on every time
level, the history, the resolved configuration, the SHA-256 over everything every result
file carries) plus the iteration number and a format version (2: the full checksum; format 1
files, whose checksum covers /solution only, are refused as written by an older version).  Several populations are stored as
u_pop<k>, m_pop<k>, as in results.  Written atomically and durably by write_result;
read back only after every check passes.
"""
import json

import h5py
import numpy as np

from ..models import defaults
from .hdf5 import CorruptFileError, verify, write_result

KIND = "mfgpde-checkpoint"
FORMAT = 2
MUST_MATCH = ("model", "grid", "time")  # sections a restart may not change
FAMILIES = {"mfg": "an MFG", "leader_follower": "a leader-follower", "master": "a master-equation",
            "private_type": "a private-type master-equation"}


class CheckpointError(ValueError):
    """The checkpoint cannot be used; the message says why in one line."""


def write_checkpoint(path, *, axes, t, u=None, m=None, iteration, history, config, version, family="mfg",
                     fields=None, field_axes=None, attrs=None):
    """One rank writes the whole state (full arrays, time first; a leading population axis
    where the model has several).  Families other than the MFG give their own `fields`
    (and `field_axes`, as write_result) instead of u, m; `attrs` are added to the root's."""
    attrs = {"kind": KIND, "format": FORMAT, "iteration": int(iteration), "config": config,
             "version": version, "model": config["model"]["name"], "status": "checkpoint", "family": family,
             **(attrs or {})}
    if fields is None and u.ndim == len(axes) + 1:
        fields = {"u": u, "m": m}
    elif fields is None:
        fields = {f"{name}_pop{k + 1}": v[k] for name, v in (("u", u), ("m", m)) for k in range(len(v))}
    write_result(path, axes=axes, t=t, fields=fields, attrs=attrs, history=history, field_axes=field_axes)


def _check_family(attrs, path, family):
    """Refuse a checkpoint of another family (checkpoints without the attribute are MFG ones)."""
    saved = attrs.get("family", "mfg")
    saved = saved.decode() if isinstance(saved, bytes) else str(saved)
    if saved != family:
        raise CheckpointError(f"restart: {path} is a checkpoint of {FAMILIES.get(saved, repr(saved))} run, "
                              f"not of {FAMILIES[family]} run like this one")


def _state(solution):
    """u, m from a checkpoint's /solution group (stacked over populations if several)."""
    if "u" in solution:
        return solution["u"][()], solution["m"][()]
    count = sum(1 for name in solution if name.startswith("u_pop"))
    return tuple(np.stack([solution[f"{name}_pop{k}"][()] for k in range(1, count + 1)]) for name in ("u", "m"))


def read_checkpoint(path, config, family="mfg"):
    """{iteration, u, m, history, ...} from a checkpoint compatible with `config`, read only
    after its checksum matches everything in it; for another `family` u, m are None and
    `fields` (every /solution dataset), `t`, `attrs` and the saved `config` say the rest."""
    try:
        verify(path)
    except CorruptFileError as e:
        raise CheckpointError(f"restart: {e}") from None
    try:
        with h5py.File(path, "r") as f:
            attrs = dict(f.attrs)
            if attrs.get("kind") != KIND:
                raise CheckpointError(f"restart: {path} is not an mfgpde checkpoint")
            if attrs.get("format") != FORMAT:
                older = " (written by an older mfgpde version)" if attrs.get("format") == 1 else ""
                raise CheckpointError(f"restart: {path} has checkpoint format {attrs.get('format')}{older}, "
                                      f"this version reads format {FORMAT}")
            _check_family(attrs, path, family)
            u, m = _state(f["solution"]) if family == "mfg" else (None, None)
            fields = {k: v[()] for k, v in f["solution"].items()} if family != "mfg" else {}
            t = f["time/t"][()]
            history = {k: v[()] for k, v in f["history"].items()} if "history" in f else {}
        iteration, saved = int(attrs["iteration"]), json.loads(attrs["config"])
    except (OSError, KeyError, TypeError, ValueError) as e:
        raise CheckpointError(f"restart: {path} is not a readable checkpoint ({e})") from None
    for section in MUST_MATCH:
        a, b = _resolved(saved, section), _resolved(config, section)
        for key in sorted(set(a) | set(b)):
            if a.get(key) != b.get(key):
                raise CheckpointError(f"restart: {section}.{key} differs: checkpoint "
                                      f"{saved[section].get(key, a.get(key))!r}, "
                                      f"this run {config[section].get(key, b.get(key))!r}")
    return {"iteration": iteration, "u": u, "m": m, "history": history,
            "fields": fields, "t": t, "attrs": attrs, "config": saved}


def _resolved(cfg, section):
    """A section's values as the solver sees them: the model's defaults filled in, numbers
    as floats, a one-element list as its element (which the models broadcast)."""
    values = dict(cfg[section])
    if section == "model":
        values = {**defaults(values.get("name")), **values}
    return {key: _number(v) for key, v in values.items()}


def _number(value):
    if value is None or isinstance(value, (bool, str)):
        return value
    try:
        a = np.asarray(value, dtype=float)
    except (TypeError, ValueError):  # strings inside, ragged lists: compared as given
        return value
    return a.item() if a.size == 1 else a.tolist()
