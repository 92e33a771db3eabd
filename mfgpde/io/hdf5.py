"""HDF5 result files for mfgpde (a published layout; keep it exact).

Layout::

    /grid/<axis>        1-D coordinates, one dataset per axis;
                        attribute ``axes`` on /grid = axis names in order
    /time/t             1-D times (nt + 1 values)
    /solution/<field>   shape (len(t), *grid sizes), time axis first; a field over some of
                    the axes only (a leader's value on (x0, z) beside the follower's on
                    (x0, x1, z)) names them in its attribute ``axes``
    /history/<name>     1-D convergence history (optional)
    /<group>/<name>     extra datasets (optional, e.g. /closed_form/u)
    root attributes     model, config (JSON string), version, status, ...

Files are written atomically on a single rank (serial h5py driver): a file is
either complete or absent.
"""
from __future__ import annotations

import hashlib
import io
import json
import os
from dataclasses import dataclass, field
from pathlib import Path

import h5py
import numpy as np

RESERVED_GROUPS = ("grid", "time", "solution", "history")


@dataclass
class Result:
    """An in-memory result file; ``attrs["config"]`` is a dict."""

    axes: dict
    t: np.ndarray
    fields: dict
    attrs: dict
    history: dict = field(default_factory=dict)
    extra: dict = field(default_factory=dict)


def _json_default(obj):
    if hasattr(obj, "tolist"):  # numpy scalars and arrays
        return obj.tolist()
    return str(obj)  # paths and other odd objects


def _encode_attr(value):
    """Nested containers become JSON strings; strings/numbers/arrays as-is."""
    if isinstance(value, (dict, list, tuple)):
        return json.dumps(value, default=_json_default)
    return value


def _decode_attr(value):
    if isinstance(value, bytes):
        value = value.decode("utf-8")
    if isinstance(value, str) and value[:1] in "{[":
        try:
            return json.loads(value)
        except ValueError:
            return value
    if isinstance(value, np.generic):
        return value.item()
    return value


def _validate(axes, t, fields, history, extra, field_axes):
    t = np.asarray(t)
    if t.ndim != 1 or t.size == 0:
        raise ValueError(f"t must be a non-empty 1-D array, got shape {t.shape}")
    if not axes:
        raise ValueError("axes must name at least one grid axis")
    axes = {str(k): np.asarray(v) for k, v in axes.items()}
    for name, a in axes.items():
        if a.ndim != 1 or a.size == 0:
            raise ValueError(f"axis {name!r} must be a non-empty 1-D array, got shape {a.shape}")
    fields = {str(k): np.asarray(v) for k, v in fields.items()}
    for name, f in fields.items():
        names = list(field_axes.get(name, axes))
        if [a for a in axes if a in names] != names:
            raise ValueError(f"field {name!r}: axes {names} are not grid axes in order ({', '.join(axes)})")
        shape = (t.size, *(axes[a].size for a in names))
        if f.shape != shape:
            raise ValueError(f"field {name!r} has shape {f.shape}, expected {shape} (time, {', '.join(names)})")
    history = {str(k): np.asarray(v) for k, v in (history or {}).items()}
    for name, h in history.items():
        if h.ndim != 1:
            raise ValueError(f"history {name!r} must be 1-D, got shape {h.shape}")
    for group in extra or {}:
        if group in RESERVED_GROUPS:
            raise ValueError(f"extra group {group!r} clashes with a reserved group")
    return axes, t, fields, history


def temporary_path(path):
    """Where write_result writes before renaming onto `path`."""
    path = Path(path)
    return path.parent / f".{path.name}.tmp-{os.getpid()}"


def remove_stale_temporaries(path):
    """Remove the temporaries of `path` left by processes that no longer run (a SIGKILL
    during a write); never those of a live process."""
    path = Path(path)
    for tmp in path.parent.glob(f".{path.name}.tmp-*"):
        pid = tmp.name.rsplit("-", 1)[1]
        if pid.isdigit() and not _alive(int(pid)):
            tmp.unlink(missing_ok=True)


def _alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process
        pass
    return True


class CorruptFileError(ValueError):
    """A result or checkpoint file that is damaged or does not match its checksum."""


class OutputError(RuntimeError):
    """A file could not be written (a full disk, an I/O error); the message names it, the
    cause, and what was kept."""


def on_root(comm, write):
    """Call `write()` on rank 0 only; an OutputError there is raised on every rank, so that
    no rank waits for one that has stopped."""
    error = None
    if comm.Get_rank() == 0:
        try:
            write()
        except OutputError as e:
            error = str(e)
    error = comm.bcast(error, root=0)
    if error:
        raise OutputError(error)


def _canonical(value):
    """Bytes of a dataset or attribute value, its type and shape included."""
    if isinstance(value, bytes):
        return b"b" + value
    if isinstance(value, str):
        return b"s" + value.encode("utf-8", "surrogatepass")
    a = np.asarray(value)
    head = f"{a.dtype.str}{a.shape}".encode()
    if a.dtype.kind == "O":
        return head + b"\0".join(map(_canonical, a.ravel()))
    return head + a.tobytes()


def file_checksum(f, block_bytes=16 << 20):
    """SHA-256 of everything in an open file that a reader trusts: every group's and
    dataset's name, every dataset's type, shape and data (read in blocks), and every
    attribute (the root's `sha256` itself excepted), walked in name order."""
    h = hashlib.sha256()

    def add(*parts):
        for part in parts:
            b = _canonical(part)
            h.update(len(b).to_bytes(8, "little") + b)

    def walk(obj):
        for key in sorted(obj.attrs):
            if not (obj.name == "/" and key == "sha256"):
                add(key, obj.attrs[key])
        if isinstance(obj, h5py.Dataset):
            if obj.ndim == 0 or obj.dtype.kind == "O":
                add(obj[()])
                return
            add(f"{obj.dtype.str}{obj.shape}")  # then the data, in blocks of the first axis
            step = max(1, block_bytes // max(1, obj.dtype.itemsize * int(np.prod(obj.shape[1:]))))
            for k in range(0, obj.shape[0], step):
                h.update(np.ascontiguousarray(obj[k:k + step]))
            return
        for name in sorted(obj):
            add(name)
            walk(obj[name])
    walk(f)
    return h.hexdigest()


def _solution_checksum(f):
    """The checksum of files from before version 0.2 (the /solution datasets only)."""
    h = hashlib.sha256()
    for ds in f["solution"].values():
        h.update(np.ascontiguousarray(ds[()], dtype=float).tobytes())
    return h.hexdigest()


def verify(path):
    """Raise CorruptFileError unless the file is readable and matches its `sha256`.  A file
    from an older version (a `checksum` of /solution only) is verified the old way."""
    try:
        with h5py.File(path, "r") as f:
            stored = f.attrs.get("sha256", f.attrs.get("checksum"))
            actual = file_checksum(f) if "sha256" in f.attrs else _solution_checksum(f) if stored else None
    except Exception as e:  # noqa: BLE001  any damage HDF5 or h5py reports, whatever its type
        reason = (str(e).splitlines() or [type(e).__name__])[0]
        raise CorruptFileError(f"{path}: not a readable mfgpde file, damaged or truncated ({reason})") from None
    if stored is None:
        raise CorruptFileError(f"{path}: corrupted or not an mfgpde file (no checksum)")
    if (stored.decode() if isinstance(stored, bytes) else stored) != actual:
        raise CorruptFileError(f"{path}: corrupted (its data does not match its checksum)")


def _fsync(path):
    """Flush a directory entry to disk, so a crash after the rename keeps the file."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _image(axes, t, fields, attrs, history, extra, field_axes):
    """The bytes of the HDF5 file, built in memory (a full disk cannot reach HDF5, which
    crashes on one); the 1.8 format, in which HDF5 checksums its own metadata."""
    image = io.BytesIO()
    with h5py.File(image, "w", track_order=True, libver="v108") as f:
        grid = f.create_group("grid")
        grid.attrs["axes"] = np.array(list(axes), dtype=h5py.string_dtype())
        for name, a in axes.items():
            grid.create_dataset(name, data=a)
        f.create_group("time").create_dataset("t", data=t)
        sol = f.create_group("solution", track_order=True)
        for name, arr in fields.items():
            ds = sol.create_dataset(name, data=arr)
            if name in field_axes:
                ds.attrs["axes"] = np.array(list(field_axes[name]), dtype=h5py.string_dtype())
        if history:
            hist = f.create_group("history", track_order=True)
            for name, h in history.items():
                hist.create_dataset(name, data=h)
        for group, datasets in (extra or {}).items():
            g = f.create_group(str(group), track_order=True)
            for name, arr in datasets.items():
                g.create_dataset(str(name), data=np.asarray(arr))
        for key, value in attrs.items():
            if value is not None:
                f.attrs[str(key)] = _encode_attr(value)
        f.attrs["sha256"] = file_checksum(f)
    return image.getbuffer()


def _write_file(path, data):
    """`data` into a new file, durably; OSError (ENOSPC, EIO) on failure."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view):]
        os.fsync(fd)
    finally:
        os.close(fd)


def commit(files):
    """Write {path: bytes} atomically: all temporaries first, then the renames in order.
    Raises OutputError naming the file and the cause; nothing is changed and no temporary
    remains unless a rename fails after an earlier one (the message then says which)."""
    files = {Path(p): data for p, data in files.items()}
    done, current = [], None
    try:
        for current in files:
            current.parent.mkdir(parents=True, exist_ok=True)
            _write_file(temporary_path(current), files[current])
        for current in files:
            os.replace(temporary_path(current), current)
            done.append(current)
        _fsync(current.parent)
    except OSError as e:
        for p in files:
            temporary_path(p).unlink(missing_ok=True)
        kept = [f"{p.name} was written" for p in done] + [
            f"the previous {p.name} is unchanged" if p.exists() else f"{p.name} was not written"
            for p in files if p not in done]
        raise OutputError(f"writing {current} failed: {e.strerror or e}; {', '.join(kept)}") from None
    except BaseException:
        for p in files:
            temporary_path(p).unlink(missing_ok=True)
        raise


def write_result(path, *, axes, t, fields, attrs, history=None, extra=None, field_axes=None,
                 companions=None) -> None:
    """Write one result file atomically (built in memory, temporary file + os.replace).

    ``axes``: ordered name -> 1-D coordinates; ``t``: 1-D times; ``fields``:
    name -> array of shape (len(t), *axis sizes); ``attrs``: root attributes
    (dicts/lists stored as JSON strings, None values skipped); ``history``:
    name -> 1-D array; ``extra``: group -> {name: array}; ``field_axes``: field ->
    the axes it lies on where not all of them; ``companions``: path -> text written
    with it (renamed after it, once every file is complete). Raises ValueError on bad
    shapes, OutputError when a file cannot be written (see `commit`).  Call on one rank.
    """
    field_axes = field_axes or {}
    axes, t, fields, history = _validate(axes, t, fields, history, extra, field_axes)
    image = _image(axes, t, fields, attrs, history, extra, field_axes)
    commit({path: image, **{p: text.encode() for p, text in (companions or {}).items()}})


def read_result(path) -> Result:
    """Read a whole result file back into memory (config decoded to a dict), after
    checking its checksum."""
    verify(path)
    with h5py.File(path, "r") as f:
        names = [n.decode() if isinstance(n, bytes) else str(n) for n in f["grid"].attrs["axes"]]
        axes = {n: f["grid"][n][()] for n in names}
        t = f["time/t"][()]
        fields = {k: v[()] for k, v in f["solution"].items()}
        history = {k: v[()] for k, v in f["history"].items()} if "history" in f else {}
        extra = {
            g: {k: v[()] for k, v in f[g].items() if isinstance(v, h5py.Dataset)}
            for g in f
            if g not in RESERVED_GROUPS and isinstance(f[g], h5py.Group)
        }
        attrs = {k: _decode_attr(v) for k, v in f.attrs.items()}
    return Result(axes=axes, t=t, fields=fields, attrs=attrs, history=history, extra=extra)


def cell_volume(axes) -> float:
    """Product of the (uniform) grid spacings; an axis of one point counts 1."""
    vol = 1.0
    for a in axes.values():
        a = np.asarray(a, dtype=float)
        if a.size > 1:
            vol *= (a[-1] - a[0]) / (a.size - 1)
    return float(vol)


def _minmax(ds, block_bytes=64 << 20):
    """Min and max of a time-first dataset, read in blocks of time levels."""
    step = max(1, block_bytes // max(1, ds[0].nbytes))
    lo, hi = np.inf, -np.inf
    for k in range(0, ds.shape[0], step):
        blk = ds[k:k + step]
        lo, hi = min(lo, np.min(blk)), max(hi, np.max(blk))
    return float(lo), float(hi)


def _g(x) -> str:
    return f"{x:.6g}"


def _exploitability_lines(attrs):
    """The exploitability (and the players' and populations' gaps) where the file has it."""
    if "exploitability" not in attrs:
        return []
    text = lambda tag: f"{float(attrs['exploitability' + tag]):.3e}"  # noqa: E731
    players = [(p, f"_{p}") for p in ("designer", "adversary") if f"exploitability_{p}" in attrs]
    line = f"exploitability: {text('')}"
    if players:
        line += " (" + ", ".join(f"{p} {text(tag)}" for p, tag in players) + ")"
    lines = [line]
    k = 1
    while f"exploitability_pop{k}" in attrs:
        part = f"  population {k}: {text(f'_pop{k}')}"
        if players:
            part += " (" + ", ".join(f"{p} {text(f'{tag}_pop{k}')}" for p, tag in players) + ")"
        lines.append(part)
        k += 1
    return lines


def describe(path) -> str:
    """The text printed by ``mfgpde info``: model, status, version, grid, time,
    fields (shape, min/max), mass of m at t=0 and t=T, iterations, final
    residuals and the resolved config."""
    verify(path)
    lines = [f"file:       {path}"]
    with h5py.File(path, "r") as f:
        attrs = {k: _decode_attr(v) for k, v in f.attrs.items()}
        for key in ("model", "status", "version"):
            lines.append(f"{key + ':':<12}{attrs.get(key, '?')}")
        names = [n.decode() if isinstance(n, bytes) else str(n) for n in f["grid"].attrs["axes"]]
        axes = {n: f["grid"][n][()] for n in names}
        grid = ", ".join(f"{n}[{a.size}] in [{_g(a[0])}, {_g(a[-1])}]" for n, a in axes.items())
        lines.append(f"{'grid:':<12}{grid}  ({len(axes)}-D, cell volume {_g(cell_volume(axes))})")
        t = f["time/t"][()]
        if attrs.get("kind") == "incentive":
            lines.append(f"{'time:':<12}static game (one stage)")
        elif attrs.get("kind") in ("stackelberg", "stackelberg_private_type"):  # levels, or the stationary value
            lines.append(f"{'time:':<12}" + (f"levels t = {_g(t[0])} .. {_g(t[-1])}" if t.size > 1 else "stationary"))
        else:
            lines.append(f"{'time:':<12}T = {_g(t[-1] - t[0])} on [{_g(t[0])}, {_g(t[-1])}], nt = {t.size - 1}")
        lines.append("fields:")
        sol = f["solution"]
        width = max((len(k) for k in sol), default=0)
        for name, ds in sol.items():
            lo, hi = _minmax(ds)
            lines.append(f"  {name:<{width}}  shape {tuple(ds.shape)}  min {_g(lo)}  max {_g(hi)}")
        if "m" in sol:
            vol = cell_volume(axes)
            m0, m1 = (float(np.sum(sol["m"][k], dtype=float)) * vol for k in (0, -1))
            lines.append(f"{'mass of m:':<12}t=0: {m0:.10g}  t=T: {m1:.10g}  (change {m1 - m0:.3g})")
        hist = {k: v[()] for k, v in f["history"].items()} if "history" in f else {}
    iters = attrs.get("iterations")
    if iters is None and "iteration" in hist and hist["iteration"].size:
        iters = int(hist["iteration"][-1])
    if iters is not None:
        lines.append(f"{'iterations:':<12}{iters}")
    res = [f"{k} = {float(v[-1]):.3e}" for k, v in hist.items() if "residual" in k and v.size]
    if res:
        lines.append(f"{'residuals:':<12}" + ", ".join(res))
    if "wall_time" in hist and hist["wall_time"].size:
        lines.append(f"{'wall time:':<12}{float(hist['wall_time'][-1]):.3g} s")
    lines += _exploitability_lines(attrs)
    known = {"model", "status", "version", "iterations", "config"}
    other = {k: v for k, v in attrs.items() if k not in known and not k.startswith("exploitability")}
    if other:
        lines.append("attributes:")
        lines += [f"  {k} = {v}" for k, v in sorted(other.items())]
    config = attrs.get("config")
    if config is not None:
        lines.append("config:")
        if isinstance(config, dict):
            lines += [f"  {k}: {json.dumps(v, separators=(',', ':'))}" for k, v in config.items()]
        else:
            lines.append(f"  {config}")
    return "\n".join(lines)
