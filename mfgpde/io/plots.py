"""Plots of an mfgpde result file (PNG, PDF or SVG; matplotlib imported lazily, Agg backend)."""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from .hdf5 import OutputError, read_result, temporary_path

_WHAT = {"u": "value", "m": "density"}
FORMATS = ("png", "pdf", "svg")
COUNTS = ("linear_iterations",)  # history entries that count, drawn on their own axis
FLAGS = ("newton",)  # history entries that mark an iteration's kind
LABELS = {"residual_u": "u: relative change (HJB residual for Newton)",
          "residual_m": "m: relative change (FP residual for Newton)", "mass_error": "mass error",
          "linear_iterations": "linear iterations", "value_change": "sup change of the master value"}


def _time_indices(t, times):
    """Indices of the levels nearest to ``times`` (default t0, mid, T), deduplicated."""
    if times is None:
        times = [t[0], 0.5 * (t[0] + t[-1]), t[-1]]
    idx = [int(np.argmin(np.abs(t - s))) for s in times]
    return list(dict.fromkeys(idx))


def _residual_keys(history):
    return [k for k in history if k not in ("iteration", "wall_time") and np.asarray(history[k]).size]


class _Saver:
    """Writes each figure in every format, atomically; OutputError naming the file if one
    cannot be written.  `written` lists the files."""

    def __init__(self, plt, formats, dpi):
        self.plt, self.formats, self.dpi, self.written = plt, formats, dpi, []

    def __call__(self, fig, path):
        try:
            for fmt in self.formats:
                target = Path(path).with_suffix(f".{fmt}")
                tmp = temporary_path(target)
                try:
                    fig.savefig(tmp, dpi=self.dpi, format=fmt)
                    os.replace(tmp, target)
                except OSError as e:
                    tmp.unlink(missing_ok=True)
                    raise OutputError(f"writing {target} failed: {e.strerror or e}") from None
                self.written.append(target)
        finally:
            self.plt.close(fig)


def plot_result(path, outdir=None, times=None, formats=("png",), dpi=100) -> list[Path]:
    """Write ``<stem>_<what>.<format>`` next to ``path`` (or in ``outdir``), in every one of
    ``formats`` (png, pdf, svg) at ``dpi``.

    1-D: density m over (t, x), snapshots of u, m and any other field at
    ``times`` (default 0, T/2, T), convergence history. 2-D: density and
    value snapshots, history. 3-D and up: the 2-D plots on the mid-plane of
    the trailing axes. Returns the written paths.
    """
    import matplotlib
    import matplotlib.patches
    import matplotlib.ticker

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    path = Path(path)
    res = read_result(path)
    outdir = Path(outdir) if outdir is not None else path.parent
    try:
        outdir.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise OutputError(f"creating the plot folder {outdir} failed: {e.strerror or e}") from None
    stem = outdir / path.stem
    model = res.attrs.get("model", "mfgpde")
    names = list(res.axes)
    t = np.asarray(res.t)
    ks = _time_indices(t, times)
    out = _Saver(plt, formats, dpi)
    closed = res.extra.get("closed_form", {})

    populations = sorted(int(k[5:]) for k in res.fields if k.startswith("m_pop"))
    if res.attrs.get("kind") == "stackelberg":
        _stackelberg(path, res, names, model, stem, plt, out)
    elif res.attrs.get("kind") == "stackelberg_private_type":
        _private_type(res, names, model, stem, plt, out)
    elif res.attrs.get("kind") == "incentive":
        from .incentive_plots import plot_incentive
        plot_incentive(res, model, stem, plt, out)
    elif res.attrs.get("kind") == "leader_follower":
        from .leader_follower_plots import plot_leader_follower
        plot_leader_follower(res, t, ks, model, stem, plt, out)
    elif populations:
        _populations(res, populations, names, t, ks, model, stem, plt, out, closed)
    elif len(names) == 1:
        x, xn = res.axes[names[0]], names[0]
        if "m" in res.fields:
            fig, ax = plt.subplots(figsize=(6, 4.5), constrained_layout=True)
            pc = ax.pcolormesh(x, t, res.fields["m"], shading="auto")
            fig.colorbar(pc, ax=ax, label="m")
            ax.set(xlabel=xn, ylabel="t", title=f"{model}: density m(t, {xn})")
            out(fig, Path(f"{stem}_density.png"))
        order = [k for k in ("u", "m") if k in res.fields] + [k for k in res.fields if k not in ("u", "m")]
        if order:
            fig, axs = plt.subplots(1, len(order), figsize=(4.5 * len(order), 3.8),
                                    constrained_layout=True, squeeze=False)
            for ax, name in zip(axs[0], order):
                for k in ks:
                    line, = ax.plot(x, res.fields[name][k], label=f"t = {t[k]:.3g}")
                    if name in closed:
                        ax.plot(x, closed[name][k], "--", color=line.get_color(), lw=1,
                                label="closed form" if k == ks[-1] else None)
                ax.set(xlabel=xn, ylabel=name, title=f"{model}: {name}" + (" (dashed: closed form)"
                                                                           if name in closed else ""))
                ax.legend(fontsize="small")
            out(fig, Path(f"{stem}_snapshots.png"))
    else:
        x, y = res.axes[names[0]], res.axes[names[1]]
        mid = tuple(len(res.axes[n]) // 2 for n in names[2:])
        where = "".join(f", {n} = {res.axes[n][i]:.3g}" for n, i in zip(names[2:], mid))
        for name in ("m", "u"):
            if name not in res.fields:
                continue
            fig, axs = plt.subplots(1, len(ks), figsize=(4.5 * len(ks) + 1, 4),
                                    constrained_layout=True, squeeze=False)
            panels = [res.fields[name][(k, slice(None), slice(None)) + mid] for k in ks]
            lo, hi = min(float(np.min(d)) for d in panels), max(float(np.max(d)) for d in panels)
            for ax, k, data in zip(axs[0], ks, panels):  # one colour scale across the panels
                pc = ax.pcolormesh(x, y, data.T, shading="auto", vmin=lo, vmax=hi)  # rows along the 2nd axis
                ax.set_aspect("equal")
                ax.set(xlabel=names[0], ylabel=names[1], title=f"{name} at t = {t[k]:.3g}{where}")
            fig.colorbar(pc, ax=axs[0].tolist(), label=name)
            fig.suptitle(f"{model}: {'density' if name == 'm' else 'value'} {name}")
            out(fig, Path(f"{stem}_{_WHAT[name]}_snapshots.png"))

    keys = _residual_keys(res.history)
    if keys:
        _history(res, keys, model, stem, plt, matplotlib, out)
    return out.written


def _history(res, keys, model, stem, plt, matplotlib, out):
    """Residuals on a log axis, counts (linear iterations) on their own axis at the right,
    Newton iterations shaded; one legend for what is drawn."""
    fig, ax = plt.subplots(figsize=(6.5, 4), constrained_layout=True)

    def iterations(h):
        it = np.asarray(res.history.get("iteration", np.arange(1, h.size + 1)))
        return it if it.size == h.size else np.arange(1, h.size + 1)

    handles = []
    for k in keys:
        h = np.asarray(res.history[k], dtype=float)
        if k in FLAGS or k in COUNTS or not np.any(h > 0):
            continue
        handles += ax.semilogy(iterations(h), np.where(h > 0, h, np.nan), marker=".", label=LABELS.get(k, k))
    counts = [k for k in keys if k in COUNTS and np.any(np.asarray(res.history[k]) > 0)]
    if counts:
        right = ax.twinx()
        for k in counts:
            h = np.asarray(res.history[k], dtype=float)
            handles += right.plot(iterations(h), h, color="0.5", ls=":", marker="x", label=LABELS.get(k, k))
        right.set_ylabel("linear iterations per iteration")
    newton = np.asarray(res.history.get("newton", []), dtype=float)
    if newton.size and newton.any():
        it = iterations(newton)
        for i in it[newton > 0]:
            ax.axvspan(i - 0.5, i + 0.5, color="tab:orange", alpha=0.12, lw=0)
        handles.append(matplotlib.patches.Patch(color="tab:orange", alpha=0.3, label="Newton iterations"))
    ax.xaxis.set_major_locator(matplotlib.ticker.MaxNLocator(integer=True))
    ax.set(xlabel="iteration", ylabel="residual or change", title=f"{model}: convergence")
    if handles:
        ax.legend(handles=handles, fontsize="small")
    out(fig, Path(f"{stem}_history.png"))


def _populations(res, populations, names, t, ks, model, stem, plt, out, closed):
    """Several populations: the mean of each over time, one panel per axis (consensus shows
    as the curves meeting; dashed: the closed form's), and the densities at the chosen
    times (1-D: curves; else the first two axes through the middle of the others)."""
    axes = [np.asarray(res.axes[n]) for n in names]
    grids = np.meshgrid(*axes, indexing="ij", sparse=True)
    vol = float(np.prod([a[1] - a[0] if a.size > 1 else 1.0 for a in axes]))
    fig, axs = plt.subplots(1, len(names), figsize=(5 * len(names), 3.8), constrained_layout=True, squeeze=False)
    for k in populations:
        m = np.asarray(res.fields[f"m_pop{k}"])
        for d, ax in enumerate(axs[0]):
            line, = ax.plot(t, np.sum(m * grids[d], axis=tuple(range(1, m.ndim))) * vol, label=f"population {k}")
            if "mean" in closed:
                ax.plot(t, np.asarray(closed["mean"])[:, k - 1, d], "--", color=line.get_color(), lw=1,
                        label="closed form" if k == populations[-1] else None)
    for d, ax in enumerate(axs[0]):
        ax.set(xlabel="t", ylabel=f"mean {names[d]}", title=f"{model}: means of the populations")
        ax.legend(fontsize="small")
    out(fig, Path(f"{stem}_means.png"))
    fig, axs = plt.subplots(1, len(ks), figsize=(4.5 * len(ks), 3.8), constrained_layout=True, squeeze=False)
    mid = tuple(len(a) // 2 for a in axes[1:])
    for ax, i in zip(axs[0], ks):
        for k in populations:
            ax.plot(axes[0], np.asarray(res.fields[f"m_pop{k}"])[(i, slice(None)) + mid], label=f"population {k}")
        ax.set(xlabel=names[0], ylabel="m", title=f"{model}: densities at t = {t[i]:.3g}")
        ax.legend(fontsize="small")
    out(fig, Path(f"{stem}_densities.png"))


def _stackelberg(path, res, names, model, stem, plt, out):
    """Discrete-time Stackelberg game: the followers' prescriptions γ(a|x) and the leader's
    action (with its optimal set) against the population state (first level; two states: against z of the second
    state, three: coloured on the triangle), and the equilibrium path from z1."""
    import h5py
    with h5py.File(path, "r") as f:
        points, traj = f["simplex/points"][()], {k: f["trajectory"][k][()] for k in f["trajectory"]}
    policies = [k for k in res.fields if k.startswith("policy_")]
    fig, axs = plt.subplots(1, 2, figsize=(10, 4), constrained_layout=True)
    if points.shape[1] == 2:
        x = points[:, 1]
        for k in policies:
            axs[0].plot(x, res.fields[k][0], label=k.replace("policy_", "γ(").replace("_given_", " | ") + ")")
        axs[1].fill_between(x, res.fields["leader_action_low"][0], res.fields["leader_action_high"][0],
                            color="0.8", step="mid", label="optimal set")
        axs[1].plot(x, res.fields["leader_action"][0], "k", label="played (its lowest point)")
        axs[1].legend(fontsize="small")
        for ax in axs:
            ax.set(xlabel=names[0])
        axs[0].legend(fontsize="small")
    else:
        xy = points[:, 1] + 0.5 * points[:, 2], points[:, 2] * np.sqrt(3) / 2
        pc = axs[0].scatter(*xy, c=res.fields[policies[-1]][0], s=12)
        fig.colorbar(pc, ax=axs[0], label=policies[-1])
        pc = axs[1].scatter(*xy, c=res.fields["leader_action"][0], s=12)
        fig.colorbar(pc, ax=axs[1], label=str(res.attrs.get("leader_action", "leader action")))
    action = str(res.attrs.get("leader_action", "leader action"))
    axs[0].set(ylabel="probability", title=f"{model}: followers' prescriptions γ(a | x)")
    axs[1].set(ylabel=action, title=f"{model}: the leader's {action}")
    out(fig, Path(f"{stem}_policies.png"))
    fig, axs = plt.subplots(1, 2, figsize=(10, 4), constrained_layout=True)
    t = np.arange(len(traj["z"]))
    for i in range(traj["z"].shape[1]):
        axs[0].plot(t, traj["z"][:, i], marker=".", label=f"z({res.attrs.get('states', [])[i]})"
                    if res.attrs.get("states") else f"z{i}")
    axs[0].set(xlabel="t", ylabel="population share", title=f"{model}: equilibrium path")
    axs[0].legend(fontsize="small")
    axs[1].fill_between(t[:-1], traj["leader_action_low"], traj["leader_action_high"], step="post", color="0.8",
                        label="optimal set")
    axs[1].step(t[:-1], traj["leader_action"], where="post", color="k", label="played")
    axs[1].legend(fontsize="small")
    axs[1].set(xlabel="t", ylabel=action, title=f"{model}: the leader's {action} along the path")
    out(fig, Path(f"{stem}_path.png"))


def _private_type(res, names, model, stem, plt, out):
    """A leader with a private type: where its types pool over (belief, z) and the action
    each type plays at the beliefs 0, prior and 1 (first level); each type's path."""
    types, action = list(res.attrs["leader_types"]), str(res.attrs.get("leader_action", "leader action"))
    belief, x = res.axes["belief"], res.axes[names[1]]
    prior = float(res.attrs["prior"])
    fig, axs = plt.subplots(1, 3, figsize=(14, 4), constrained_layout=True)
    pc = axs[0].pcolormesh(x, belief, res.fields["pooling"][0], shading="auto", vmin=0, vmax=1, cmap="Greys")
    fig.colorbar(pc, ax=axs[0], label="pooling (1) or separating (0)")
    axs[0].set(xlabel=names[1], ylabel="belief π (second type)", title=f"{model}: the types pool (t = 1)")
    rows = sorted({0, int(np.argmin(np.abs(belief - prior))), len(belief) - 1})
    for ax, theta in zip(axs[1:], types):
        for j in rows:
            ax.plot(x, res.fields[f"leader_action_{theta}"][0, j], label=f"π = {belief[j]:.3g}")
        ax.set(xlabel=names[1], ylabel=action, title=f"{theta}'s {action} (t = 1)")
        ax.legend(fontsize="small")
    out(fig, Path(f"{stem}_policies.png"))
    fig, axs = plt.subplots(1, 3, figsize=(14, 4), constrained_layout=True)
    for theta, style in zip(types, ("-", "--")):
        traj = res.extra[f"trajectory_{theta}"]
        t = np.arange(len(traj["z"]))
        axs[0].plot(t, traj["z"][:, -1], style, marker=".", label=theta)
        axs[1].step(t, traj["belief"], style, where="post", label=theta)
        axs[2].step(t[:-1], traj["leader_action"], style, where="post", label=theta)
    states = res.attrs.get("states", [])
    axs[0].set(xlabel="t", ylabel=f"share z({states[-1] if states else 'last state'})",
               title=f"{model}: each type's path")
    axs[1].set(xlabel="t", ylabel="belief π", title="the followers' belief")
    axs[2].set(xlabel="t", ylabel=action, title=f"the {action} played")
    for ax in axs:
        ax.legend(fontsize="small")
    out(fig, Path(f"{stem}_path.png"))

