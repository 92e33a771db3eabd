"""The three-player game (q = 7) of Bauso & Başar (2016), Section 8.1, by the Riccati closed
form and a Monte Carlo simulation of the closed loop (no grid reaches 7 dimensions).

Excess x ∈ R^7 of the coalitions {1}, {2}, {3}, {1,2}, {1,3}, {2,3}, N; B the 7×3 incidence;
the designer tracks the internal model ρ(t) = m̄(0) e^{−θt}.  With ∇v = φx + h (φ' = φMφ − Q,
h' = φMh + Qρ, h(T) = −Sρ(T)) the equilibrium feedbacks are u* = −R⁻¹Bᵀ∇v, w* = −Γ⁻¹∇v and

    dx = (B u* − w*) dt + σ dW = −M(φx + h) dt + σ dW,   M = BR⁻¹Bᵀ − Γ⁻¹.

Γ = γI: M is −1/γ on ker Bᵀ (4 directions no allocation reaches), so φ blows up at the
conjugate time τ* = √γ atan(√γ) ≈ (π/2)√γ; the paper's horizon T = 500 needs γ > 1.01e5.

    python -m mfgpde.validation.robust_q7 OUTDIR [--samples N] [--dt DT] [--gamma G]
"""
import argparse
import os

import numpy as np
from scipy.integrate import solve_ivp

from ..models.registry import create

X0 = [1.0, 3.0, 2.0, 3.0, 2.0, 5.0, 4.0]            # the paper's x(0)
MBAR0 = [10.0, 20.0, 50.0, 30.0, 20.0, 50.0, 40.0]  # the paper's m̄(0)
GAMMA, T_PAPER, DT_PAPER = 4e5, 500.0, 0.1          # τ* = 992.46 ≈ 2T
SCENARIOS = {"theta=0.01, sigma=0.01": (0.01, 0.01), "theta=0, sigma=0": (0.0, 0.0)}
_ODE = {"method": "DOP853", "rtol": 1e-10, "atol": 1e-12, "dense_output": True}


def mean_from(cf, x0):
    """t ↦ E x(t) from x(0) = x0 under the equilibrium feedbacks: x̄' = −M(φx̄ + h)."""
    return solve_ivp(lambda t, x: -cf.M @ (cf.phi(t) @ x + cf.h(t)), (0.0, cf.T), np.asarray(x0, float),
                     **_ODE).sol


def build(T=T_PAPER, gamma=GAMMA, theta=0.01, sigma=0.01, s0=0.01):
    """The registry's q = 7 model (horizon checked against τ*) and its closed form."""
    model = create("robust_designer", 7, players=3, R=1.0, Gamma=gamma, Q=1.0, S=1.0, sigma=sigma,
                   mu0=MBAR0, s0=s0, tracking="internal", theta=theta)
    model.set_horizon(T)
    return model, model.closed_form(T).cf


def simulate(cf, x0=X0, samples=1000, dt=DT_PAPER, seed=0):
    """Euler–Maruyama of dx = (Bu* − w*) dt + σ dW for N samples at once, x(0) ~ N(x0, s0²I):
    sample mean and covariance paths at t_k = k dt (and the mean of the Euler recursion)."""
    nt = int(round(cf.T / dt))
    t = np.linspace(0.0, cf.T, nt + 1)
    dt = cf.T / nt
    phi, h = cf.phi(t), cf.h(t)
    Ku, Kw = -np.linalg.solve(cf.R, cf.B.T), -np.linalg.inv(cf.Gamma)
    rng = np.random.default_rng(seed)
    x = np.asarray(x0, float) + cf.s0 * rng.standard_normal((samples, cf.q))
    mean, cov, euler = np.empty((nt + 1, cf.q)), np.empty((nt + 1, cf.q, cf.q)), np.empty((nt + 1, cf.q))
    euler[0] = x0
    for k in range(nt + 1):
        mean[k] = x.mean(axis=0)
        d = x - mean[k]
        cov[k] = d.T @ d / (samples - 1)
        if k == nt:
            break
        grad = x @ phi[:, :, k] + h[:, k]                        # ∇v = φx + h (φ symmetric)
        u, w = grad @ Ku.T, grad @ Kw.T                          # u* = −R⁻¹Bᵀ∇v, w* = −Γ⁻¹∇v
        x = x + (u @ cf.B.T - w) * dt + cf.sigma * np.sqrt(dt) * rng.standard_normal(x.shape)
        euler[k + 1] = euler[k] - dt * cf.M @ (phi[:, :, k] @ euler[k] + h[:, k])
    return t, mean, cov, euler


def study(T=T_PAPER, gamma=GAMMA, theta=0.01, sigma=0.01, s0=0.01, x0=X0, samples=1000, dt=DT_PAPER, seed=0):
    """Closed form and Monte Carlo of one scenario: paths, allocations and consensus measures."""
    model, cf = build(T, gamma, theta, sigma, s0)
    t, mc_mean, mc_cov, euler = simulate(cf, x0, samples, dt, seed)
    cf_mean = mean_from(cf, x0)(t).T
    cf_cov = np.array([cf.covariance(s) for s in t])
    B, x0 = cf.B, np.asarray(x0, float)
    rho = np.outer(np.exp(-theta * t), cf.means0[0])
    P = B @ np.linalg.solve(B.T @ B, B.T)                        # projection on range B
    e_ls = np.linalg.solve(B.T @ B, B.T @ (rho - mc_mean).T).T   # the paper's least-squares error
    grad = np.einsum("ijk,kj->ki", cf.phi(t), mc_mean) + cf.h(t).T
    alloc, w = -grad @ np.linalg.solve(cf.R, B.T).T, -grad @ np.linalg.inv(cf.Gamma).T
    surplus = alloc @ B.T - w                                    # s = Bũ − η with η = w*: the excess' drift
    eps = np.maximum(np.max(-surplus[:, :-1], axis=1), np.abs(surplus[:, -1]))  # in the ε-core
    se = np.sqrt(np.maximum(np.einsum("kii->ki", mc_cov), 1e-300) / samples)
    norm = lambda a: np.linalg.norm(a, axis=-1)  # noqa: E731
    uncontrolled = (x0 - rho[0]) @ (np.eye(7) - P)
    return {
        "model": model, "cf": cf, "t": t, "samples": samples, "dt": t[1] - t[0], "theta": theta, "sigma": sigma,
        "gamma": gamma, "tau_star": model.tau_star, "notes": model.notes(),
        "mc_mean": mc_mean, "mc_cov": mc_cov, "cf_mean": cf_mean, "cf_cov": cf_cov, "euler_mean": euler,
        "rho": rho, "allocation": alloc, "disturbance": w, "surplus": surplus, "core_eps": eps,
        "se": se, "e_ls": norm(e_ls),
        "consensus": {
            "e_ls(0)": norm(e_ls[0]), "e_ls(T)": norm(e_ls[-1]), "e_ls factor": norm(e_ls[-1]) / norm(e_ls[0]),
            "|x(T)|": norm(mc_mean[-1]), "max |x|": norm(mc_mean).max(),
            "|x(T)| / max |x|": norm(mc_mean[-1]) / norm(mc_mean).max(),
            "|(I-P)x(0)|": norm(x0 @ (np.eye(7) - P)), "|(I-P)(x(0)-m(0))|": norm(uncontrolled),
            "ker B^T drift |(I-P)(x(T)-x(0))|": norm((mc_mean[-1] - x0) @ (np.eye(7) - P)),
            "core eps(0)": eps[0], "core eps(T)": eps[-1]},
        "agreement": {
            "max |MC - CF| mean": np.abs(mc_mean - cf_mean).max(),
            "max |MC - Euler| / SE": np.max(np.abs(mc_mean - euler) / se),
            "max |MC - CF| / SE for t >= 10": np.max(np.abs(mc_mean - cf_mean)[t >= 10] / se[t >= 10], initial=0.0),
            "max |Euler - CF| mean (time step bias)": np.abs(euler - cf_mean).max(),
            "max rel. cov error": np.max(norm((mc_cov - cf_cov).reshape(len(t), -1))
                                         / norm(cf_cov.reshape(len(t), -1)))},
    }


def write_plots(results, outdir):
    """Excesses (the paper's Figs 5, 6), MC mean against the closed form, allocations and
    surpluses, for each scenario of results ({name: study(...)}); the paths of the files."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    os.makedirs(outdir, exist_ok=True)
    names, paths = list(results), []

    def figure(stem, rows, draw, linear=()):
        fig, axes = plt.subplots(rows, len(names), figsize=(6 * len(names), 3.6 * rows), squeeze=False)
        for j, name in enumerate(names):
            r = results[name]
            draw(axes[:, j], r, f"{name} (Γ = {r['gamma']:.3g}, N = {r['samples']}, dt = {r['dt']:g})")
            for i, ax in enumerate(axes[:, j]):
                if i not in linear:
                    ax.set_xscale("symlog", linthresh=0.1)
                ax.set_xlabel("t")
                ax.grid(alpha=0.3)
        fig.tight_layout()
        paths.append(os.path.join(outdir, stem + ".png"))
        fig.savefig(paths[-1], dpi=100)
        plt.close(fig)

    def excesses(ax, r, title):
        for a in ax:
            for i in range(7):
                a.plot(r["t"], r["mc_mean"][:, i], color=f"C{i}", label=f"x{i + 1}")
                a.plot(r["t"], r["rho"][:, i], color=f"C{i}", ls=":", lw=0.8)
        ax[0].set_title("excesses x(t) (MC mean; dotted: target ρ)\n" + title, fontsize=9)
        ax[0].legend(fontsize=7, ncol=4)

    def agreement(ax, r, title):
        for i in range(7):
            ax[0].plot(r["t"], r["mc_mean"][:, i], color=f"C{i}")
            ax[0].plot(r["t"], r["cf_mean"][:, i], color="k", ls="--", lw=0.7)
        ax[0].set_title("MC mean (colour) and closed-form mean (dashed)\n" + title, fontsize=9)
        t = r["t"][1:]
        ax[1].semilogy(t, np.abs(r["mc_mean"] - r["cf_mean"]).max(axis=1)[1:], label="max |MC - closed form|")
        ax[1].semilogy(t, np.abs(r["euler_mean"] - r["cf_mean"]).max(axis=1)[1:],
                       label="max |Euler recursion - closed form| (the dt bias)")
        ax[1].semilogy(t, np.abs(r["mc_mean"] - r["euler_mean"]).max(axis=1)[1:], label="max |MC - Euler recursion|")
        ax[1].semilogy(t, 4 * r["se"].max(axis=1)[1:], label="4 SE (largest)")
        ax[1].legend(fontsize=7)

    def allocations(ax, r, title):
        for i in range(3):
            ax[0].plot(r["t"], r["allocation"][:, i], label=f"ũ{i + 1}")
        ax[0].set_title("allocations ũ = u*(t, x̄)\n" + title, fontsize=9)
        ax[0].legend(fontsize=7)
        for i in range(7):
            ax[1].plot(r["t"], r["surplus"][:, i], label=f"s{i + 1}")
        ax[1].set_yscale("symlog", linthresh=1e-3)
        ax[1].set_title("surpluses s = Bũ − w* (core: s1..s6 ≥ 0, s7 = 0)", fontsize=9)
        ax[1].legend(fontsize=7, ncol=4)

    figure("q7_excesses", 2, excesses, linear=(0,))
    figure("q7_mc_vs_closed_form", 2, agreement)
    figure("q7_allocations", 2, allocations)
    return paths


def main(argv=None):
    p = argparse.ArgumentParser(prog="python -m mfgpde.validation.robust_q7", description=__doc__.split("\n")[0])
    p.add_argument("outdir")
    p.add_argument("--samples", type=int, default=1000)
    p.add_argument("--dt", type=float, default=DT_PAPER)
    p.add_argument("--gamma", type=float, default=GAMMA)
    p.add_argument("--T", type=float, default=T_PAPER)
    p.add_argument("--seed", type=int, default=0)
    a = p.parse_args(argv)
    results = {}
    for name, (theta, sigma) in SCENARIOS.items():
        r = results[name] = study(a.T, a.gamma, theta, sigma, samples=a.samples, dt=a.dt, seed=a.seed)
        print(f"== {name}: Gamma = {a.gamma:g} I, T = {a.T:g}, dt = {r['dt']:g}, N = {a.samples}, seed = {a.seed}")
        print(f"   conjugate time of the Riccati equation tau* = {r['tau_star']:.6g} > T = {a.T:g} "
              f"(M = BB^T - I/{a.gamma:g} is -1/{a.gamma:g} on ker B^T): the game has a value on [0, T]")
        for what in ("consensus", "agreement"):
            print("   " + what + ": " + ", ".join(f"{k} = {v:.3g}" for k, v in r[what].items()))
    for path in write_plots(results, a.outdir):
        print("plot:", path)


if __name__ == "__main__":
    main()
