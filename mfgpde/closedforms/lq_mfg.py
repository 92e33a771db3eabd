r"""Closed form of the linear-quadratic (LQ) mean field game.

Model (state x in R^d, d = 1, 2, 3, coordinates independent, nu = sigma^2/2):

    HJB  -u_t + rho u - nu Lap u + 1/2 |grad u|^2 - 1/2 q |x - kappa mbar(t)|^2 = 0,
         u(T, x) = 1/2 s |x - kappa mbar(T)|^2,
    FP    m_t - nu Lap m - div(m grad u) = 0,   m(0) = prod_i N(mu0_i, s0^2),
    mbar(t) = int x m(t, x) dx.

This is the MFG with running cost L = 1/2 |a|^2 + 1/2 q |x - kappa mbar|^2, discount rho,
dynamics dX = a dt + sigma dW and optimal feedback a* = -grad u.

Ansatz, per axis i:  u(t, x) = sum_i [1/2 P(t) x_i^2 + beta_i(t) x_i + c_i(t)].
Matching powers of x_i in the HJB (the Laplacian contributes nu P per axis) gives

    P'      = rho P + P^2 - q,                                  P(T)      = s,
    beta_i' = (rho + P) beta_i + q kappa mbar_i,                beta_i(T) = -s kappa mbar_i(T),
    c_i'    = rho c_i - nu P + 1/2 beta_i^2 - 1/2 q kappa^2 mbar_i^2,
                                                                c_i(T)    = 1/2 s kappa^2 mbar_i(T)^2.

The drift -(P x_i + beta_i) is affine, so m stays Gaussian, N(mbar_i, V) in each axis, with

    mbar_i' = -(P mbar_i + beta_i),   mbar_i(0) = mu0_i,
    V'      = -2 P V + sigma^2,       V(0)      = s0^2.

(mbar_i, beta_i) solve a linear two-point boundary value problem z' = A(t) z,
A = [[-P, -1], [q kappa, rho + P]], with mbar_i(0) = mu0_i and beta_i(T) = -s kappa mbar_i(T).
It is solved exactly by linearity: with Psi the fundamental matrix, Psi' = A Psi, Psi(T) = I,
every solution meeting the terminal condition is z(t) = mbar_i(T) w(t), w = Psi (1, -s kappa)^T,
and the initial condition fixes mbar_i(T) = mu0_i / w_1(0).  If w_1(0) = 0 the problem is
singular (no solution or infinitely many) and a ValueError is raised.  Since c_i is affine in
mbar_i(T)^2, c_i = c_a + mbar_i(T)^2 c_b with

    c_a' = rho c_a - nu P,                          c_a(T) = 0,
    c_b' = rho c_b + 1/2 w_2^2 - 1/2 q kappa^2 w_1^2,  c_b(T) = 1/2 s kappa^2,

so P, Psi, c_a, c_b come out of one backward integration, and V out of one forward one
(scipy DOP853, rtol 1e-11, atol 1e-13, dense output).
"""
import numpy as np
from scipy.integrate import solve_ivp

_TOL = dict(method="DOP853", rtol=1e-11, atol=1e-13, dense_output=True)


class LQMFGClosedForm:
    """Equilibrium (u, m) of the LQ mean field game stated in the module docstring.

    Parameters (keyword only): q, kappa, s (running / coupling / terminal weights), sigma
    (noise), mu0 (initial mean, a float or one per axis; dim = len(mu0)), s0 (initial standard
    deviation, every axis), rho (discount), T (horizon).
    """

    def __init__(self, *, q, kappa, s, sigma, mu0, s0, rho, T):
        self.q, self.kappa, self.s = float(q), float(kappa), float(s)
        self.sigma, self.s0, self.rho, self.T = float(sigma), float(s0), float(rho), float(T)
        self.nu = 0.5 * self.sigma**2
        self.mu0 = np.atleast_1d(np.asarray(mu0, dtype=float))
        if self.mu0.ndim != 1 or not 1 <= self.mu0.size <= 3:
            raise ValueError(f"mu0 must be a float or a sequence of 1 to 3 floats, got {mu0!r}")
        self.dim = self.mu0.size
        if self.q < 0 or self.s < 0 or self.rho < 0:
            raise ValueError("need q >= 0, s >= 0 and rho >= 0 (the Riccati equation may blow up)")
        if self.T <= 0 or self.s0 <= 0 or self.sigma < 0:
            raise ValueError("need T > 0, s0 > 0 and sigma >= 0")
        q, kappa, s, rho, nu = self.q, self.kappa, self.s, self.rho, self.nu

        # Backward pass, y = (P, Psi[0,0], Psi[0,1], Psi[1,0], Psi[1,1], c_a, c_b).
        def backward(t, y):
            P = y[0]
            Psi = y[1:5].reshape(2, 2)
            A = np.array([[-P, -1.0], [q * kappa, rho + P]])
            w = Psi @ np.array([1.0, -s * kappa])
            return np.concatenate(([rho * P + P * P - q], (A @ Psi).ravel(),
                                   [rho * y[5] - nu * P,
                                    rho * y[6] + 0.5 * w[1]**2 - 0.5 * q * kappa**2 * w[0]**2]))

        yT = np.array([s, 1.0, 0.0, 0.0, 1.0, 0.0, 0.5 * s * kappa**2])
        self._bwd = solve_ivp(backward, (self.T, 0.0), yT, **_TOL)
        if not self._bwd.success:
            raise RuntimeError(f"backward integration failed: {self._bwd.message}")
        Psi0 = self._bwd.y[1:5, -1].reshape(2, 2)
        w10 = Psi0[0] @ np.array([1.0, -s * kappa])
        if abs(w10) <= 1e-12 * np.abs(Psi0).max() * max(1.0, s * abs(kappa)):
            raise ValueError("the mean / beta two-point boundary value problem is singular: "
                             "mbar(0) = mu0 cannot be met by a solution with "
                             f"beta(T) = -s kappa mbar(T) (w_1(0) = {w10:.3e})")
        self._mbarT = self.mu0 / w10        # mbar_i(T), one per axis

        # Forward pass for the variance.
        self._fwd = solve_ivp(lambda t, v: -2.0 * self._P(t) * v + self.sigma**2,
                              (0.0, self.T), [self.s0**2], **_TOL)
        if not self._fwd.success:
            raise RuntimeError(f"forward integration failed: {self._fwd.message}")

    # ---- evaluation helpers -------------------------------------------------------------
    def _sample(self, sol, t):
        """Dense output of sol at t (any shape), shape (n_components,) + shape(t)."""
        t = np.asarray(t, dtype=float)
        if np.any(t < -1e-12 * self.T) or np.any(t > self.T * (1 + 1e-12)):
            raise ValueError(f"t must lie in [0, T] = [0, {self.T}]")
        y = sol.sol(np.clip(t.ravel(), 0.0, self.T))
        return y.reshape((y.shape[0],) + t.shape)

    def _P(self, t):
        return self._bwd.sol(t)[0]

    def _w(self, t):
        """w(t) = Psi(t) (1, -s kappa): the unit (mbar(T) = 1) solution, shape (2,) + shape(t)."""
        y = self._sample(self._bwd, t)
        Psi = y[1:5].reshape((2, 2) + y.shape[1:])
        return Psi[:, 0] - self.s * self.kappa * Psi[:, 1]

    def _axes(self, f):
        """Per-axis array mbar_i(T) * f, shape (dim,) + shape(f)."""
        return self._mbarT.reshape((-1,) + (1,) * np.ndim(f)) * f

    # ---- public API -----------------------------------------------------------------------
    def P(self, t):
        """Riccati coefficient: P' = rho P + P^2 - q, P(T) = s."""
        return self._sample(self._bwd, t)[0]

    def beta(self, t):
        """beta_i' = (rho + P) beta_i + q kappa mbar_i, beta_i(T) = -s kappa mbar_i(T); (dim,)+shape(t)."""
        return self._axes(self._w(t)[1])

    def c(self, t):
        """c_i' = rho c_i - nu P + beta_i^2/2 - q kappa^2 mbar_i^2/2, c_i(T) = s kappa^2 mbar_i(T)^2/2."""
        y = self._sample(self._bwd, t)
        return y[5] + self._mbarT.reshape((-1,) + (1,) * (y.ndim - 1))**2 * y[6]

    def mean(self, t):
        """Population mean: mbar_i' = -(P mbar_i + beta_i), mbar_i(0) = mu0_i; (dim,)+shape(t)."""
        return self._axes(self._w(t)[0])

    def var(self, t):
        """Variance per axis: V' = -2 P V + sigma^2, V(0) = s0^2; shape(t)."""
        return self._sample(self._fwd, t)[0]

    def _check_x(self, x):
        if len(x) != self.dim:
            raise ValueError(f"expected {self.dim} coordinate arrays, got {len(x)}")
        return [np.asarray(xi, dtype=float) for xi in x]

    def u(self, t, *x):
        """Value u(t, x) = sum_i [P x_i^2 / 2 + beta_i x_i + c_i] (t scalar, x one array per axis)."""
        x = self._check_x(x)
        P, beta, c = self.P(t), self.beta(t), self.c(t)
        return sum(0.5 * P * xi**2 + beta[i] * xi + c[i] for i, xi in enumerate(x))

    def m(self, t, *x):
        """Density m(t, x) = prod_i N(x_i; mbar_i(t), V(t))."""
        x = self._check_x(x)
        mean, V = self.mean(t), self.var(t)
        norm = 1.0 / np.sqrt(2.0 * np.pi * V)
        out = 1.0
        for i, xi in enumerate(x):
            out = out * norm * np.exp(-0.5 * (xi - mean[i])**2 / V)
        return out

    def drift(self, t, *x):
        """Optimal feedback a*_i = -d u / d x_i = -(P x_i + beta_i), one array per axis."""
        x = self._check_x(x)
        P, beta = self.P(t), self.beta(t)
        return tuple(-(P * xi + beta[i]) for i, xi in enumerate(x))
