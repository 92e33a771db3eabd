r"""The discrete-time LQ mean field Stackelberg game of Huang & Yang's slides (scalar states),
solved by the time-consistent (t-selves) backward recursion, derived here:

    x0' = A0 x0 + B0 u0 + F0 xb + W0,
    x1' = A x1 + B u1 + D u0 + F xb + G x0 + W1,
    xb' = (A + F) xb + B ub + D u0 + G x0,            ub = u1 at x1 = xb,
    J0 = E sum_t alpha^t [Q0 (x0 − Gamma0 xb)^2 + R0 u0^2],
    J1 = E sum_t alpha^t [Q (x1 − Gamma1 x0 − Gamma2 xb)^2 + R u1^2 + R1 u0^2 + 2 R2 u0 u1],

t = 0..T−1, Var W0 = var0, Var W1 = var1.  With s = (x0, x1, xb), s' = Phi s + g0 u0 + g1 u1
+ gb ub + w, V0_t = s^T M0_t s + r0_t (no x1 terms), V1_t = s^T M1_t s + r1_t, M = 0 at T:

- follower (u0 announced, ub taken as given): u1 = −[R2 u0 + alpha g1^T M1' (Phi s + g0 u0
  + gb ub)] / (R + alpha g1^T M1' g1); ub is the same at x1 = xb, a linear equation, so
  ub = lam_s s + lam_0 u0 and u1 = mu_s s + mu_0 u0;
- leader: minimises Q0 (x0 − Gamma0 xb)^2 + R0 u0^2 + alpha V0'(s') with s' = Phi_c s + g_c u0,
  Phi_c = Phi + g1 mu_s + gb lam_s, g_c = g0 + g1 mu_0 + gb lam_0 (the answers anticipated):
  u0 = k0 s, k0 = −alpha g_c^T M0' Phi_c / (R0 + alpha g_c^T M0' g_c).  A Nash leader
  (leader="nash") does not anticipate them: it differentiates along g0 only.
- closed loop Phi_cl = Phi + g0 k0 + g1 k1 + gb kb; M0 = Q0 e0 e0^T + R0 k0 k0^T + alpha
  Phi_cl^T M0' Phi_cl, M1 likewise with the follower's cost; r = alpha (tr(M' Sigma) + r').

Unlike continuous time, the followers answer u0 through the next values even when R2 = 0,
so the leader still leads there (the slides' remark).  :func:`euler_game` gives the
discrete game of step h for the continuous game of stackelberg_lq (A0 → 1 + A0 h, B0 → B0 h,
costs × h, alpha = e^{−rho h}, variances sigma^2 h); its recursion converges to the Riccati
solution at first order in h.
"""
import numpy as np

PARAMS = ("A0", "B0", "F0", "A", "B", "D", "F", "G", "Gamma0", "Gamma1", "Gamma2",
          "Q", "Q0", "R", "R0", "R1", "R2", "alpha", "var0", "var1")


class DiscreteStackelbergLQ:
    """The recursion of the module docstring over T steps; `gains[t]` = (k0, k1, kb) as
    3-vectors on s, `answers[t]` = (lam_0, mu_0), `M0[t]`, `M1[t]`, `r0[t]`, `r1[t]` for
    t = 0..T (T: zero)."""

    def __init__(self, T, leader="stackelberg", **p):
        missing = set(PARAMS) - set(p)
        if missing or set(p) - set(PARAMS):
            raise ValueError(f"parameters: need exactly {', '.join(PARAMS)}")
        if leader not in ("stackelberg", "nash"):
            raise ValueError(f"leader must be 'stackelberg' or 'nash', got {leader!r}")
        self.p, self.T, self.leader = {k: float(v) for k, v in p.items()}, int(T), leader
        P = self.p
        self.Phi = np.array([[P["A0"], 0.0, P["F0"]], [P["G"], P["A"], P["F"]], [P["G"], 0.0, P["A"] + P["F"]]])
        self.g0 = np.array([P["B0"], P["D"], P["D"]])
        self.g1, self.gb = np.array([0.0, P["B"], 0.0]), np.array([0.0, 0.0, P["B"]])
        self.e0 = np.array([1.0, 0.0, -P["Gamma0"]])
        self.e1 = np.array([-P["Gamma1"], 1.0, -P["Gamma2"]])
        self.Sigma = np.diag([P["var0"], P["var1"], 0.0])
        S = np.array([[1.0, 0, 0], [0, 0, 1.0], [0, 0, 1.0]])  # s at x1 = xb
        zero = np.zeros((3, 3))
        self.M0, self.M1, self.r0, self.r1 = [zero] * (T + 1), [zero] * (T + 1), [0.0] * (T + 1), [0.0] * (T + 1)
        self.gains, self.answers = [None] * T, [None] * T  # (k0, k1, kb); the answers (lam_0, mu_0) to u0
        for t in range(T - 1, -1, -1):
            M0n, M1n, a = self.M0[t + 1], self.M1[t + 1], P["alpha"]
            h1 = P["R"] + a * self.g1 @ M1n @ self.g1
            if not h1 > 0:
                raise ValueError(f"the follower's problem is not convex at t = {t}")
            # ub (h1 + a g1'M1'gb) = −[R2 u0 + a g1'M1'(Phi S s + g0 u0)]
            w = a * self.g1 @ M1n
            den = h1 + w @ self.gb
            lam_s, lam_0 = -(w @ self.Phi @ S) / den, -(P["R2"] + w @ self.g0) / den
            mu_s = -(w @ self.Phi + (w @ self.gb) * lam_s) / h1
            mu_0 = -(P["R2"] + w @ self.g0 + (w @ self.gb) * lam_0) / h1
            Phi_c = self.Phi + np.outer(self.g1, mu_s) + np.outer(self.gb, lam_s)
            g_c = self.g0 + self.g1 * mu_0 + self.gb * lam_0
            along = g_c if leader == "stackelberg" else self.g0
            k0 = -a * (along @ M0n @ Phi_c) / (P["R0"] + a * along @ M0n @ g_c)
            k1, kb = mu_s + mu_0 * k0, lam_s + lam_0 * k0
            Phi_cl = self.Phi + np.outer(self.g0, k0) + np.outer(self.g1, k1) + np.outer(self.gb, kb)
            self.gains[t] = (k0, k1, kb)
            self.M0[t] = P["Q0"] * np.outer(self.e0, self.e0) + P["R0"] * np.outer(k0, k0) + a * Phi_cl.T @ M0n @ Phi_cl
            self.M1[t] = (P["Q"] * np.outer(self.e1, self.e1) + P["R"] * np.outer(k1, k1) + P["R1"] * np.outer(k0, k0)
                          + P["R2"] * (np.outer(k0, k1) + np.outer(k1, k0)) + a * Phi_cl.T @ M1n @ Phi_cl)
            self.r0[t] = a * (np.sum(M0n * self.Sigma) + self.r0[t + 1])
            self.r1[t] = a * (np.sum(M1n * self.Sigma) + self.r1[t + 1])
            self.answers[t] = (lam_0, mu_0)

    def V0(self, t, x0, xb):
        s = np.array([x0, 0.0, xb])
        return s @ self.M0[t] @ s + self.r0[t]

    def V1(self, t, x0, x1, xb):
        s = np.array([x0, x1, xb])
        return s @ self.M1[t] @ s + self.r1[t]


def euler_game(cf, n):
    """Parameters of the discrete game with n steps of h = T/n for a continuous StackelbergLQ."""
    c, h = cf.params, cf.T / n
    return dict(A0=1 + c["A0"] * h, B0=c["B0"] * h, F0=c["F0"] * h, A=1 + c["A"] * h, B=c["B"] * h,
                D=c["D"] * h, F=c["F"] * h, G=c["G"] * h, Gamma0=c["Gamma0"], Gamma1=c["Gamma1"],
                Gamma2=c["Gamma2"], Q=c["Q"] * h, Q0=c["Q0"] * h, R=c["R"] * h, R0=c["R0"] * h, R1=c["R1"] * h,
                R2=c["R2"] * h, alpha=np.exp(-c["rho"] * h), var0=c["sigma0"] ** 2 * h, var1=c["sigma"] ** 2 * h)


def expected_costs(game, s0, dk0=(0.0, 0.0, 0.0)):
    """(J0, J1) from s0 by the exact second-moment recursion of the closed loop, not the
    value matrices.  dk0: the leader's gain moved by dk0 at every step while the followers
    re-respond (u1 and ub move by mu_0 and lam_0 times the change in u0: their answers
    to it, with their equilibrium continuation)."""
    P, a = game.p, game.p["alpha"]
    E, J0, J1, d = np.outer(s0, s0), 0.0, 0.0, np.asarray(dk0, float)
    for t in range(game.T):
        k0, k1, kb = game.gains[t]
        lam_0, mu_0 = game.answers[t]
        k0, k1, kb = k0 + d, k1 + mu_0 * d, kb + lam_0 * d
        C0 = P["Q0"] * np.outer(game.e0, game.e0) + P["R0"] * np.outer(k0, k0)
        C1 = (P["Q"] * np.outer(game.e1, game.e1) + P["R"] * np.outer(k1, k1) + P["R1"] * np.outer(k0, k0)
              + P["R2"] * (np.outer(k0, k1) + np.outer(k1, k0)))
        J0 += a ** t * np.sum(C0 * E)
        J1 += a ** t * np.sum(C1 * E)
        Phi_cl = game.Phi + np.outer(game.g0, k0) + np.outer(game.g1, k1) + np.outer(game.gb, kb)
        E = Phi_cl @ E @ Phi_cl.T + game.Sigma
    return J0, J1
