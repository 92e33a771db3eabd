"""Plots of an incentive-design result: the incentive's gain against N (followers' game);
the leader's costs against the imitation b for each weight p, and the errors of the mean
field design applied to N minors against N (major-minor game)."""
from pathlib import Path

import numpy as np

COSTS = (("leader_optimal", "leader-optimal"), ("leader_major", "leader-major-optimal"), ("nash", "uncontrolled"))
ERRORS = (("loss", "leader's loss against the N-minor optimum"), ("cost_error", "error of the predicted cost"),
          ("major_error", "major's strategy"), ("minor_error", "minors' strategy"))


def plot_incentive(res, model, stem, plt, save):
    """`save(fig, path)` writes a figure."""
    N = np.asarray(res.axes["N"])
    if "gain" in res.fields:
        gain = res.fields["gain"][0]
        fig, ax = plt.subplots(figsize=(6, 4.2), constrained_layout=True)
        ax.loglog(N, gain, "o-", label="sqrt(E k(x)²)")
        ax.loglog(N, gain[-1] * N / N[-1], "k--", lw=1, label="∝ N")
        ax.set(xlabel="followers N", ylabel="incentive gain",
               title=f"{model}: the gain the incentive needs (slope {res.attrs.get('gain_slope', np.nan):.3f})")
        ax.legend(fontsize="small")
        save(fig, Path(f"{stem}_gain.png"))
        return
    table = res.extra["comparison"]
    b, p = table["b"], table["p"]
    fig, axs = plt.subplots(1, len(p), figsize=(4.2 * len(p), 3.8), constrained_layout=True, squeeze=False,
                            sharey=True)
    for j, ax in enumerate(axs[0]):
        for key, label in COSTS:
            ax.plot(b, table[key][:, j], marker=".", label=label)
        ax.set(xlabel="imitation b", title=f"p = {p[j]:g}")
    axs[0][0].set_ylabel("leader's cost J0")
    axs[0][0].legend(fontsize="small")
    fig.suptitle(f"{model}: the leader's cost in the mean field limit")
    save(fig, Path(f"{stem}_costs.png"))
    fig, ax = plt.subplots(figsize=(6.5, 4.5), constrained_layout=True)
    for key, label in ERRORS:
        y = res.fields[f"mean_field_{key}"][0]
        ax.loglog(N, np.where(y > 0, y, np.nan), "o-", ms=3, label=label)
    for order, style, key in ((1, "k--", "major_error"), (2, "k:", "loss")):  # through the last point
        ax.loglog(N, (N[-1] / N) ** order * res.fields[f"mean_field_{key}"][0][-1], style, lw=1,
                  label=f"∝ 1/N{'²' if order == 2 else ''}")
    ax.set(xlabel="minors N", ylabel="error", title=f"{model}: the N = ∞ design applied to N minors")
    ax.legend(fontsize="x-small")
    save(fig, Path(f"{stem}_mean_field.png"))
