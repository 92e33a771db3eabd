"""Plots of a continuous-time leader-follower result: the feedbacks against those of the
LQ game (the closed form, or the LQ game a nonlinear model departs from), the values,
and the grid's fitted gains against the Riccati gains over time."""
from pathlib import Path

import numpy as np


def _nearest(axis, value):
    return int(np.argmin(np.abs(np.asarray(axis) - value)))


def plot_leader_follower(res, t, ks, model, stem, plt, save):
    """`save(fig, path)` writes a figure; `ks` are the time levels to show."""
    x0, x1, z = (np.asarray(res.axes[k]) for k in ("x0", "x1", "z"))
    j0, jz = _nearest(x0, 0.0), _nearest(z, 0.0)
    ric, gains = res.extra.get("riccati"), res.extra.get("gains", {})
    label = "closed form" if res.attrs.get("reference") == "error" else "LQ game"
    fig, axs = plt.subplots(1, 2, figsize=(10, 4), constrained_layout=True)
    for k in ks:
        line, = axs[0].plot(x0, res.fields["u0"][k, :, jz], label=f"grid, t = {t[k]:.3g}")
        axs[1].plot(x1, res.fields["u1"][k, j0, :, jz], color=line.get_color(), label=f"grid, t = {t[k]:.3g}")
        if ric is not None:
            axs[0].plot(x0, ric["K00"][k] * x0 + ric["K10"][k] * z[jz], "--", color=line.get_color(),
                        label=f"{label}, t = {t[k]:.3g}")
            axs[1].plot(x1, ric["K0"][k] * x0[j0] + ric["K1"][k] * x1 + ric["K2"][k] * z[jz], "--",
                        color=line.get_color(), label=f"{label}, t = {t[k]:.3g}")
    axs[0].set(xlabel="x0", ylabel="u0*", title=f"{model}: leader's feedback at z = {z[jz]:.3g}")
    axs[1].set(xlabel="x1", ylabel="u1*", title=f"follower's feedback at x0 = {x0[j0]:.3g}, z = {z[jz]:.3g}")
    for ax in axs:
        ax.legend(fontsize="x-small")
    save(fig, Path(f"{stem}_feedbacks.png"))

    fig, axs = plt.subplots(1, 2, figsize=(10, 4), constrained_layout=True)
    for ax, data, (xn, yn, xa, ya), name in (
            (axs[0], res.fields["V0"][0], ("x0", "z", x0, z), "V0"),
            (axs[1], res.fields["V1"][0, :, :, jz], ("x0", "x1", x0, x1), f"V1 at z = {z[jz]:.3g}")):
        pc = ax.pcolormesh(xa, ya, data.T, shading="auto")
        fig.colorbar(pc, ax=ax, label=name.split()[0])
        ax.set(xlabel=xn, ylabel=yn, title=f"{model}: {name}, t = {t[0]:.3g}")
    save(fig, Path(f"{stem}_values.png"))

    if gains:
        fig, ax = plt.subplots(figsize=(6.5, 4.2), constrained_layout=True)
        for name, g in gains.items():
            line, = ax.plot(t, g, label=f"{name} grid")
            if ric is not None:
                ax.plot(t, ric[name], "--", color=line.get_color(), label=f"{name} {label}")
        ax.set(xlabel="t", ylabel="gain", title=f"{model}: fitted grid gains on the window")
        ax.legend(fontsize="x-small", ncol=2)
        save(fig, Path(f"{stem}_gains.png"))
