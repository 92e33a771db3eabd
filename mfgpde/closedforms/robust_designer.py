"""Riccati closed forms of the robust crowd-seeking designer game (Bauso & Başar
2016), derived here from the PDEs rather than copied from the paper.

State x ∈ R^q, dx = (Bu − w) dt + σ dW, running cost ½[(ρ − x)ᵀQ(ρ − x) + uᵀRu − wᵀΓw],
terminal ½(ρ − x)ᵀS(ρ − x), where the tracked signal ρ is the population's own mean m̄
(Theorem 1), a neighbourhood average of the means of several populations (Theorem 3), or
an internal model ρ = m̃(t) = m̄(0) e^{−θt} (Section 5).  With M = BR⁻¹Bᵀ − Γ⁻¹ and
ν = σ²/2 the HJI and Fokker–Planck equations are

    −∂t v − νΔv + ½∇vᵀM∇v − ½(x − ρ)ᵀQ(x − ρ) = 0,   v(T) = ½(x − ρ(T))ᵀS(x − ρ(T))
     ∂t m − νΔm − div(m M∇v) = 0,                      u* = −R⁻¹Bᵀ∇v,  w* = −Γ⁻¹∇v.

The ansatz v = ½xᵀφx + hᵀx + χ gives, population by population,

    φ' = φMφ − Q,                φ(T) = S
    h' = φMh + Qρ,               h(T) = −Sρ(T)
    χ' = ½hᵀMh − ½ρᵀQρ − ν tr φ, χ(T) = ½ρ(T)ᵀSρ(T)
    m̄' = −M(φm̄ + h),            m̄(0) = ∫ x m0,

and m stays Gaussian: mean m̄, covariance Σ' = AΣ + ΣAᵀ + σ²I with A = −Mφ.  For the
single population e = h + φm̄ satisfies e' = 0, e(T) = 0, so h = −φm̄ and m̄ is constant.

Where the paper's printing differs (and is wrong): in (15) and (35) the constant term
needs ½σ² tr φ, not ½σ²φ, and χ(T) = ½m̄ᵀSm̄, not ½Sm̄; the equation after (40) writes
dm̄/dt = Bū + w̄ (it is Bū − w̄), and the consensus law (34) carries the factor
(−BR⁻¹Bᵀ + Γ⁻¹)φ where the derivation gives +Mφ (with −M the means would diverge); its
h = −φρ_k is exact only for a constant ρ_k, so (35) is solved here as the two-point
boundary value problem it is.  In Section 5, p' = −σ² tr P11 (the noise drives x only),
not −σ² tr P.  Well-posedness: φ exists on [0, T] iff T is below the conjugate time, the
first τ > 0 with det X(τ) = 0 for (X, Y)' = (MY, QX), X(0) = I, Y(0) = S (then
φ(T − τ) = Y X⁻¹).  With M > 0 (the paper's (17)) there is none; an indefinite M, as
for a tall B, has one.  conjugate.conjugate_search finds it from the eigenphases of an orthonormal
frame of the Lagrangian plane span[X; Y], so a root of det X of any multiplicity counts
and long horizons keep their accuracy.
"""
import itertools
import math

import numpy as np
from scipy.integrate import solve_ivp

from .conjugate import conjugate_time

_ODE = {"method": "DOP853", "rtol": 1e-11, "atol": 1e-13, "dense_output": True}
_MAX_EVALUATIONS = 200_000  # right-hand sides per ODE of the closed form (DOP853: 12 a step)


def _solve(rhs, span, y0, what):
    """solve_ivp(rhs, span, y0) raising one-line ArithmeticErrors rather than running on:
    a non-finite right-hand side (where solve_ivp would shrink its step forever on NaN),
    too many evaluations, or a failed integration."""
    count = [0]

    def guarded(t, y):
        count[0] += 1
        if count[0] > _MAX_EVALUATIONS:
            raise ArithmeticError(f"closed form: {what} needs more than {_MAX_EVALUATIONS} evaluations "
                                  f"(stopped at t = {t:.6g}; is T close to the conjugate time?)")
        dy = np.asarray(rhs(t, y), float)
        if not np.isfinite(dy).all():
            raise ArithmeticError(f"closed form: {what} is not finite at t = {t:.6g}")
        return dy
    with np.errstate(all="ignore"):  # overflow and NaN are reported above, not warned about
        sol = solve_ivp(guarded, span, np.asarray(y0, float), **_ODE)
    if sol.status != 0 or not np.all(np.isfinite(sol.y)):
        raise ArithmeticError(f"closed form: {what} failed: {sol.message}")
    return sol


def coalition_matrix(players):
    """B (q×n, q = 2ⁿ − 1): one row per nonempty coalition, by size then lexicographically
    ({1}, {2}, …, {1, 2}, …, N), ones at its members."""
    rows = [c for size in range(1, players + 1) for c in itertools.combinations(range(players), size)]
    B = np.zeros((len(rows), players))
    for j, coalition in enumerate(rows):
        B[j, list(coalition)] = 1.0
    return B


def neighbour_weights(neighbours):
    """W (p×p) with ρ = W m̄: row k averages the means of the neighbours of k (0-based)."""
    W = np.zeros((len(neighbours), len(neighbours)))
    for k, nb in enumerate(neighbours):
        W[k, list(nb)] = 1.0 / len(nb)
    return W


class RobustDesignerClosedForm:
    """The semi-explicit equilibrium of one game: φ, h_k, χ_k, m̄_k, Σ on [0, T].

    tracking: "mean" (ρ_k = Σ_j W_kj m̄_j; W = [[1]] is Theorem 1, a graph is Theorem 3)
    or "internal" (ρ = m̄(0) e^{−θt}, Section 5, with P(t) of (20) available).
    means0: (p, q) initial means; s0: initial standard deviation (isotropic Gaussians).
    """

    def __init__(self, B, R, Gamma, Q, S, sigma, T, means0, s0, W=None, tracking="mean", theta=0.0):
        self.B, self.R, self.Gamma = (np.atleast_2d(np.asarray(a, float)) for a in (B, R, Gamma))
        self.Q, self.S = np.atleast_2d(np.asarray(Q, float)), np.atleast_2d(np.asarray(S, float))
        self.M = self.B @ np.linalg.solve(self.R, self.B.T) - np.linalg.inv(self.Gamma)
        self.sigma, self.nu, self.T, self.s0 = float(sigma), 0.5 * float(sigma) ** 2, float(T), float(s0)
        self.means0 = np.atleast_2d(np.asarray(means0, float))
        self.p, self.q = self.means0.shape
        self.W = np.eye(1) if W is None else np.asarray(W, float)
        self.tracking, self.theta = tracking, float(theta)
        self.tau_star = conjugate_time(self.M, self.Q, self.S, horizon=self.T)
        if self.T >= self.tau_star:
            raise ArithmeticError(f"the Riccati equation blows up at the conjugate time {self.tau_star:.6g} <= T")
        self._phi = self._riccati()
        self._mean_h = self._two_point()
        self._chi = self._constants()
        self._cov = self._covariance()

    # -- the Riccati solution and its companions -----------------------------------------
    def _riccati(self):
        q, M, Q = self.q, self.M, self.Q

        def rhs(tau, y):  # dφ/dτ = Q − φMφ, τ = T − t
            phi = y.reshape(q, q)
            return (Q - phi @ M @ phi).ravel()
        return _solve(rhs, (0.0, self.T), self.S.ravel(), "the Riccati solution φ (τ = T − t)").sol

    def phi(self, t):
        f = self._phi(self.T - np.asarray(t, float)).reshape(self.q, self.q, *np.shape(t))
        return 0.5 * (f + np.swapaxes(f, 0, 1))

    def _signal(self, means, t):
        """ρ (p, q) from the means (p, q)."""
        if self.tracking == "internal":
            return self.means0 * math.exp(-self.theta * t)
        return self.W @ means

    def _two_point(self):
        """m̄ forward from m̄(0), h backward from −Sρ(T).  With the internal model ρ does not
        depend on m̄: h is integrated backward (stable) and then m̄ forward.  Otherwise the
        linear two-point problem is solved by shooting on h(0), whose round-off grows like
        the forward growth of h (mild on the 1-D graphs this tracking serves)."""
        if self.tracking == "internal":
            return self._backward_then_forward()
        p, q, M, Q = self.p, self.q, self.M, self.Q
        n = p * q

        def rhs(t, z):
            means, h = z[:n].reshape(p, q), z[n:].reshape(p, q)
            phi = self.phi(t)
            dmeans = -(means @ phi + h) @ M          # rows: −M(φ m̄_k + h_k) (M, φ symmetric)
            dh = h @ M @ phi + self._signal(means, t) @ Q
            return np.concatenate([dmeans.ravel(), dh.ravel()])

        def end(h0):
            z = _solve(rhs, (0.0, self.T), np.concatenate([self.means0.ravel(), h0]), "the means and h")
            zT = z.y[:, -1]
            rhoT = self._signal(zT[:n].reshape(p, q), self.T)
            return zT[n:] + (rhoT @ self.S).ravel(), z
        base, _ = end(np.zeros(n))
        J = np.column_stack([end(np.eye(n)[i])[0] - base for i in range(n)])
        _, sol = end(np.linalg.solve(J, -base))
        return sol.sol

    def _backward_then_forward(self):
        """h' = φMh + Qρ backward from h(T) = −Sρ(T), then m̄' = −M(φm̄ + h) forward: the
        path t ↦ (m̄, h) of every population, stacked as the shooting returns it."""
        p, q, M = self.p, self.q, self.M
        rhoT = self._signal(None, self.T)
        back = _solve(lambda tau, h: -(h.reshape(p, q) @ M @ self.phi(self.T - tau)
                                       + self._signal(None, self.T - tau) @ self.Q).ravel(),
                      (0.0, self.T), -(rhoT @ self.S).ravel(), "h (τ = T − t)").sol
        h = lambda t: back(self.T - np.asarray(t, float))  # noqa: E731
        fwd = _solve(lambda t, m: -(m.reshape(p, q) @ self.phi(t) + h(t).reshape(p, q)).dot(M).ravel(),
                     (0.0, self.T), self.means0.ravel(), "the means").sol
        return lambda t: np.concatenate([fwd(t), h(t)])

    def mean(self, t, k=0):
        """m̄_k(t), shape (q,) or (q, len(t))."""
        return self._mean_h(t)[k * self.q:(k + 1) * self.q]

    def h(self, t, k=0):
        n = self.p * self.q
        return self._mean_h(t)[n + k * self.q:n + (k + 1) * self.q]

    def signal(self, t, k=0):
        means = self._mean_h(t)[:self.p * self.q].reshape(self.p, self.q)
        return self._signal(means, t)[k]

    def _constants(self):
        def rhs(tau, chi):  # dχ_k/dτ = −χ'_k
            t = self.T - tau
            out = np.empty(self.p)
            for k in range(self.p):
                h, rho = self.h(t, k), self.signal(t, k)
                out[k] = -0.5 * h @ self.M @ h + 0.5 * rho @ self.Q @ rho + self.nu * np.trace(self.phi(t))
            return out
        chiT = [0.5 * r @ self.S @ r for r in (self.signal(self.T, k) for k in range(self.p))]
        return _solve(rhs, (0.0, self.T), chiT, "the constant χ (τ = T − t)").sol

    def chi(self, t, k=0):
        return self._chi(self.T - np.asarray(t, float))[k]

    def _covariance(self):
        q = self.q

        def rhs(t, y):
            A = -self.M @ self.phi(t)
            C = y.reshape(q, q)
            return (A @ C + C @ A.T + self.sigma ** 2 * np.eye(q)).ravel()
        return _solve(rhs, (0.0, self.T), (self.s0 ** 2 * np.eye(q)).ravel(), "the covariance").sol

    def covariance(self, t):
        return self._cov(t).reshape(self.q, self.q)

    # -- fields at points x (a tuple of q broadcastable arrays, original coordinates) --
    def gradient(self, t, x, k=0):
        """∇v = φx + h_k, one array per axis."""
        phi, h = self.phi(t), self.h(t, k)
        return [sum(phi[i, j] * x[j] for j in range(self.q)) + h[i] for i in range(self.q)]

    def value(self, t, x, k=0):
        phi, h = self.phi(t), self.h(t, k)
        quad = sum(phi[i, j] * x[i] * x[j] for i in range(self.q) for j in range(self.q))
        return 0.5 * quad + sum(h[i] * x[i] for i in range(self.q)) + self.chi(t, k)

    def density(self, t, x, k=0):
        C, mu = self.covariance(t), self.mean(t, k)
        Ci = np.linalg.inv(C)
        d = [xi - mi for xi, mi in zip(x, mu)]
        quad = sum(Ci[i, j] * d[i] * d[j] for i in range(self.q) for j in range(self.q))
        return np.exp(-0.5 * quad) / math.sqrt((2 * math.pi) ** self.q * np.linalg.det(C))

    def feedbacks(self, t, x, k=0):
        """u* = −R⁻¹Bᵀ∇v (n entries) and w* = −Γ⁻¹∇v (q entries)."""
        g = self.gradient(t, x, k)
        Ru, Gw = np.linalg.solve(self.R, self.B.T), np.linalg.inv(self.Gamma)
        return ([-sum(Ru[i, j] * g[j] for j in range(self.q)) for i in range(len(Ru))],
                [-sum(Gw[i, j] * g[j] for j in range(self.q)) for i in range(self.q)])

    # -- Section 5: the augmented-state game Riccati (20) ---------------------------------
    def augmented(self):
        """P(t) (2q×2q) and p(t) of (20) for the internal model m̃' = −θ m̃:
        Ṗ + PF + FᵀP − P diag(M, 0) P + Q̃ = 0, P(T) = [[S, −S], [−S, S]], ṗ = −σ² tr P11,
        so that V(x, m̃) = ½ XᵀPX + ½p with X = (x, m̃)."""
        q = self.q
        Z = np.zeros((q, q))
        F = np.block([[Z, Z], [Z, -self.theta * np.eye(q)]])
        D = np.block([[self.M, Z], [Z, Z]])
        Qt = np.block([[self.Q, -self.Q], [-self.Q, self.Q]])

        def rhs(tau, y):
            P = y[:-1].reshape(2 * q, 2 * q)
            dP = P @ F + F.T @ P - P @ D @ P + Qt
            return np.concatenate([dP.ravel(), [self.sigma ** 2 * np.trace(P[:q, :q])]])
        PT = np.block([[self.S, -self.S], [-self.S, self.S]])
        sol = _solve(rhs, (0.0, self.T), np.concatenate([PT.ravel(), [0.0]]), "the augmented Riccati solution P").sol

        def at(t):
            y = sol(self.T - t)
            return y[:-1].reshape(2 * q, 2 * q), y[-1]
        return at


class GridClosedForm:
    """The closed form on the grid's coordinates y (x = V y): u, m, the mean and the
    feedbacks, per population."""

    def __init__(self, cf, V):
        self.cf, self.V = cf, V

    def _x(self, y):
        return tuple(sum(self.V[i, k] * y[k] for k in range(len(y))) for i in range(len(y)))

    def u(self, t, *y, population=0):
        return self.cf.value(t, self._x(y), population)

    def m(self, t, *y, population=0):
        return self.cf.density(t, self._x(y), population)

    def mean(self, t, population=0):
        """The mean in grid coordinates."""
        return self.V.T @ self.cf.mean(t, population)

    def var(self, t, population=0):
        """Per-axis variances in grid coordinates, (q, len(t)) for an array of times."""
        times = np.atleast_1d(t)
        out = np.array([np.diag(self.V.T @ self.cf.covariance(s) @ self.V) for s in times]).T
        return out if np.ndim(t) else out[:, 0]

    def feedbacks(self, t, *y, population=0):
        u, w = self.cf.feedbacks(t, self._x(y), population)
        out = {f"allocation_{j + 1}": v for j, v in enumerate(u)}
        out.update({f"disturbance_{i + 1}": v for i, v in enumerate(w)})
        return out
