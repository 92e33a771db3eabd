r"""Checks of the LQ mean field Stackelberg closed form that do not use its value formulas.

(a) :func:`expected_costs`, :func:`monte_carlo_costs`: the discounted costs of leader and
    follower along the closed loop of the limit model, state X = (x0, x1, z, 1),
    dX = M(t) X dt + diag(sigma0, sigma, 0, 0) dW, L_i = X^T C_i(t) X, from the moment ODE
    S' = M S + S M^T + diag(sigma0^2, sigma^2, 0, 0), S = E[X X^T], J_i' = e^{-rho (s - t0)}
    tr(C_i S), or from Monte Carlo.  The follower may deviate alone: u1 = (K0 + d0) x0 +
    (K1 + d1) x1 + (K2 + d2) z + offset, while z keeps the equilibrium mean drift; or the
    leader may deviate, with the followers re-responding to its control.
(b) :func:`follower_deviation_gain`: in the game with N followers and the leader, all others on
    the computed feedbacks with the empirical mean zN = (x1 + (N - 1) y) / N in place of z
    (y = mean of the other N - 1 followers, noise sigma / sqrt(N - 1)), what follower 1 saves
    by its best response: an LQ problem in (x0, x1, y) solved exactly by its Riccati ODE and
    compared with the Lyapunov ODE of keeping u1*.  N = inf is the limit model (gain 0).
(c) :func:`mean_gap`: Monte Carlo (Euler-Maruyama) of the N-follower + leader system; E sup_t
    |zN(t) - z(t)|, with z(t) the limit mean driven by the same leader noise.
(d) :func:`finite_population_study`, :func:`plot_finite_population`.
"""
import numpy as np
from scipy.integrate import solve_ivp

_TOL = dict(method="DOP853", rtol=1e-11, atol=1e-13)


def _outer(u, v):
    """Batched outer product u v^T over the last axis."""
    return u[..., :, None] * v[..., None, :]


def _closed_loop(cf, t, dK=(0.0, 0.0, 0.0), offset=0.0, dK0=(0.0, 0.0), offset0=0.0):
    """M, C0, C1 (shape t.shape + (4, 4)) of the limit closed loop in X = (x0, x1, z, 1).

    dK, offset: follower 1 deviates alone (z keeps the population's feedback).  dK0,
    offset0: the leader deviates, u0 = (K00 + d00) x0 + (K10 + d10) z + offset0, and every
    follower re-responds to the u0 it sees, u1 = -(B V1_x1 + 2 R2 u0) / (2 R) with the
    equilibrium V1: its feedback moves by -(R2 / R) (u0 - u0*)."""
    k = cf.gains(t)
    zero, one = np.zeros_like(k["K00"]), np.ones_like(k["K00"])
    k0_eq = np.stack([k["K00"], zero, k["K10"], zero], -1)     # u0* = k0_eq . X
    k0 = k0_eq + np.stack([dK0[0] * one, zero, dK0[1] * one, offset0 * one], -1)
    react = -(cf.R2 / cf.R) * (k0 - k0_eq)
    bar = np.stack([k["K0"], zero, k["K1"] + k["K2"], zero], -1) + react   # ubar1 = u1(x1 = z)
    k1 = np.stack([k["K0"] + dK[0], k["K1"] + dK[1], k["K2"] + dK[2], offset * one], -1) + react
    M = np.zeros(np.shape(zero) + (4, 4))
    M[..., 0, :] = np.array([cf.A0, 0, cf.F0, 0]) + cf.B0 * k0
    M[..., 1, :] = np.array([cf.G, cf.A, cf.F, 0]) + cf.D * k0 + cf.B * k1
    M[..., 2, :] = np.array([cf.G, 0, cf.A + cf.F, 0]) + cf.D * k0 + cf.B * bar
    e0, e1 = np.array([1.0, 0, -cf.Gamma0, 0]), np.array([-cf.Gamma1, 1.0, -cf.Gamma2, 0])
    C0 = cf.Q0 * _outer(e0, e0) + cf.R0 * _outer(k0, k0)
    C1 = (cf.Q * _outer(e1, e1) + cf.R * _outer(k1, k1) + cf.R1 * _outer(k0, k0)
          + cf.R2 * (_outer(k0, k1) + _outer(k1, k0)))
    return M, C0, C1


def expected_costs(cf, t0, x0, x1, z, dK=(0.0, 0.0, 0.0), offset=0.0, dK0=(0.0, 0.0), offset0=0.0):
    """(J0, J1): expected discounted costs from (x0, x1, z) at t0, by the moment ODEs
    (deviations as in _closed_loop)."""
    noise = np.diag([cf.sigma0**2, cf.sigma**2, 0.0, 0.0])

    def rhs(t, y):
        S = y[:16].reshape(4, 4)
        M, C0, C1 = _closed_loop(cf, t, dK, offset, dK0, offset0)
        disc = np.exp(-cf.rho * (t - t0))
        dS = M @ S + S @ M.T + noise
        return np.concatenate((dS.ravel(), [disc * np.sum(C0 * S), disc * np.sum(C1 * S)]))

    X = np.array([x0, x1, z, 1.0])
    sol = solve_ivp(rhs, (t0, cf.T), np.concatenate((np.outer(X, X).ravel(), [0.0, 0.0])), **_TOL)
    return sol.y[16, -1], sol.y[17, -1]


def monte_carlo_costs(cf, t0, x0, x1, z, paths, seed, steps=400, dK=(0.0, 0.0, 0.0),
                      offset=0.0):
    """Monte Carlo of expected_costs: dict J0, J0_se, J1, J1_se (mean, standard error).

    Stochastic Heun scheme with trapezoidal cost quadrature (weak order 2 for additive noise;
    Euler-Maruyama's O(dt) bias would exceed the standard error at these path counts).
    """
    rng = np.random.default_rng(seed)
    tk = np.linspace(t0, cf.T, steps + 1)
    dt = tk[1] - tk[0]
    M, C0, C1 = _closed_loop(cf, tk, dK, offset)
    disc = np.exp(-cf.rho * (tk - t0))
    scale = np.array([cf.sigma0, cf.sigma, 0.0, 0.0]) * np.sqrt(dt)
    X = np.tile([x0, x1, z, 1.0], (paths, 1))

    def running(k, X):
        return disc[k] * np.stack([np.sum((X @ C[k]) * X, axis=1) for C in (C0, C1)])

    J, Lk = 0.0, running(0, X)
    for k in range(steps):
        dW = scale * rng.standard_normal((paths, 4))
        f = X @ M[k].T
        Xp = X + f * dt + dW
        X = X + 0.5 * (f + Xp @ M[k + 1].T) * dt + dW
        Lk1 = running(k + 1, X)
        J, Lk = J + 0.5 * (Lk + Lk1) * dt, Lk1
    mean, se = J.mean(axis=1), J.std(axis=1, ddof=1) / np.sqrt(paths)
    return dict(J0=mean[0], J0_se=se[0], J1=mean[1], J1_se=se[1])


def _follower_problem(cf, t, N):
    """Follower 1's LQ problem at t in (x0, x1, y), N followers (N = inf: limit model).

    Returns M, b, noise variances, Cx, s, k1: dX = (M X + b u) dt + noise,
    running cost X^T Cx X + R u^2 + 2 u s.X, and the equilibrium feedback u1* = k1.X.
    """
    k = cf.gains(t)
    e0, e1, e2 = np.eye(3)
    w = np.array([0.0, 1.0 / N, 1.0 - 1.0 / N])                # zN = w.X
    k0 = k["K00"] * e0 + k["K10"] * w                          # u0 = k0.X
    M = np.array([cf.A0 * e0 + cf.B0 * k0 + cf.F0 * w,
                  cf.G * e0 + cf.A * e1 + cf.D * k0 + cf.F * w,
                  (cf.G + cf.B * k["K0"]) * e0 + (cf.A + cf.B * k["K1"]) * e2
                  + (cf.B * k["K2"] + cf.F) * w + cf.D * k0])
    noise = np.array([cf.sigma0**2, cf.sigma**2, cf.sigma**2 / (N - 1)])
    e = -cf.Gamma1 * e0 + e1 - cf.Gamma2 * w
    Cx = cf.Q * np.outer(e, e) + cf.R1 * np.outer(k0, k0)
    k1 = k["K0"] * e0 + k["K1"] * e1 + k["K2"] * w
    return M, cf.B * e1, noise, Cx, cf.R2 * k0, k1


def follower_deviation_gain(cf, N, x0=1.0, z0=1.0, s0=0.5, t0=0.0):
    """Dict gain, cost_keep, cost_best: follower 1's expected costs from t0 keeping u1* and
    best-responding, x0 given, followers iid N(z0, s0^2) at t0 (N >= 2, or np.inf).

    Best response: Pi' = rho Pi - M^T Pi - Pi M - Cx + (Pi b + s)(Pi b + s)^T / R; keeping u1*:
    Pk' = rho Pk - Mk^T Pk - Pk Mk - Ck, Mk = M + b k1^T, Ck = Cx + R k1 k1^T + s k1^T + k1 s^T;
    pi' = rho pi - tr(noise Pi); all zero at T.  Cost = E[X^T Pi X] + pi.
    """
    if not N >= 2:
        raise ValueError(f"N must be >= 2 (follower 1 and at least one other), got {N}")

    def rhs(t, y):
        M, b, noise, Cx, s, k1 = _follower_problem(cf, t, N)
        Pi, Pk = y[:9].reshape(3, 3), y[10:19].reshape(3, 3)
        h = Pi @ b + s
        Mk = M + np.outer(b, k1)
        Ck = Cx + cf.R * np.outer(k1, k1) + np.outer(s, k1) + np.outer(k1, s)
        dPi = cf.rho * Pi - M.T @ Pi - Pi @ M - Cx + np.outer(h, h) / cf.R
        dPk = cf.rho * Pk - Mk.T @ Pk - Pk @ Mk - Ck
        return np.concatenate((dPi.ravel(), [cf.rho * y[9] - noise @ np.diag(Pi)],
                               dPk.ravel(), [cf.rho * y[19] - noise @ np.diag(Pk)]))

    y = solve_ivp(rhs, (cf.T, t0), np.zeros(20), **_TOL).y[:, -1]
    m = np.array([x0, z0, z0])
    S = np.outer(m, m) + np.diag([0.0, s0**2, s0**2 / (N - 1)])
    best = np.sum(y[:9].reshape(3, 3) * S) + y[9]
    keep = np.sum(y[10:19].reshape(3, 3) * S) + y[19]
    return dict(gain=keep - best, cost_keep=keep, cost_best=best)


def mean_gap(cf, N, paths, seed, x0=1.0, z0=1.0, s0=0.5, steps=240):
    """(E sup_t |zN(t) - z(t)|, standard error) over `paths` runs of N followers + leader.

    Followers start iid N(z0, s0^2), the leader at x0; all use the feedbacks with the empirical
    mean zN.  The limit pair (x0, z), z(0) = z0, uses the same leader increments.
    """
    rng = np.random.default_rng(seed)
    tk = np.linspace(0.0, cf.T, steps + 1)
    dt = tk[1] - tk[0]
    K = cf.gains(tk)
    X = z0 + s0 * rng.standard_normal((paths, N))
    lead, lead_lim, z = np.full(paths, x0), np.full(paths, x0), np.full(paths, z0)
    gap = np.abs(X.mean(axis=1) - z)
    for k in range(steps):
        K00, K10, K0, K1, K2 = (K[n][k] for n in ("K00", "K10", "K0", "K1", "K2"))
        dW0 = np.sqrt(dt) * rng.standard_normal(paths)
        zN = X.mean(axis=1)                                    # N-follower system
        u0N = K00 * lead + K10 * zN
        common = (cf.B * (K0 * lead + K2 * zN) + cf.D * u0N + cf.F * zN + cf.G * lead) * dt
        X *= 1.0 + (cf.A + cf.B * K1) * dt
        X += common[:, None] + cf.sigma * np.sqrt(dt) * rng.standard_normal((paths, N))
        lead = lead + (cf.A0 * lead + cf.B0 * u0N + cf.F0 * zN) * dt + cf.sigma0 * dW0
        u0 = K00 * lead_lim + K10 * z                          # limit pair (x0, z)
        zdot = ((cf.A + cf.F + cf.B * (K1 + K2) + cf.D * K10) * z
                + (cf.G + cf.B * K0 + cf.D * K00) * lead_lim)
        lead_lim = lead_lim + (cf.A0 * lead_lim + cf.B0 * u0 + cf.F0 * z) * dt + cf.sigma0 * dW0
        z = z + zdot * dt
        gap = np.maximum(gap, np.abs(X.mean(axis=1) - z))
    return gap.mean(), gap.std(ddof=1) / np.sqrt(paths)


def loglog_slope(N, y):
    """Least-squares slope of log y against log N."""
    return np.polyfit(np.log(N), np.log(y), 1)[0]


def finite_population_study(cf, Ns=(10, 100, 1000, 10000), paths=200, seed=0, steps=240,
                            x0=1.0, z0=1.0, s0=0.5):
    """Dict of arrays N, gap, gap_se, gain, and gain_limit, slope_gap, slope_gain."""
    seeds = np.random.SeedSequence(seed).spawn(len(Ns))
    gaps = np.array([mean_gap(cf, N, paths, sd, x0, z0, s0, steps) for N, sd in zip(Ns, seeds)])
    gain = np.array([follower_deviation_gain(cf, N, x0, z0, s0)["gain"] for N in Ns])
    N = np.asarray(Ns, dtype=float)
    return dict(N=N, gap=gaps[:, 0], gap_se=gaps[:, 1], gain=gain,
                gain_limit=follower_deviation_gain(cf, np.inf, x0, z0, s0)["gain"],
                slope_gap=loglog_slope(N, gaps[:, 0]), slope_gain=loglog_slope(N, gain))


def plot_finite_population(table, path):
    """Log-log plot of the mean gap (with 2 s.e. bars) and the deviation gain against N."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    N = table["N"]
    fig, ax = plt.subplots(figsize=(6, 4.5))
    ax.errorbar(N, table["gap"], yerr=2 * table["gap_se"], marker="o", capsize=3,
                label=f"E sup |zN - z|  (slope {table['slope_gap']:.2f})")
    ax.plot(N, table["gain"], marker="s",
            label=f"follower deviation gain  (slope {table['slope_gain']:.2f})")
    ax.plot(N, table["gap"][0] * np.sqrt(N[0] / N), "k--", label="1/sqrt(N) reference")
    ax.set(xscale="log", yscale="log", xlabel="N (followers)",
           title="LQ mean field Stackelberg game: finite population")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
