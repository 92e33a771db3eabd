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
for a tall B, has one.  conjugate_search finds it from the eigenphases of an orthonormal
frame of the Lagrangian plane span[X; Y], so a root of det X of any multiplicity counts
and long horizons keep their accuracy.
"""
import itertools
import math

import numpy as np
from scipy.integrate import solve_ivp
from scipy.linalg import expm
from scipy.optimize import brentq, minimize_scalar

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


def _blow_up(a, q, s):
    """Blow-up time of the scalar backward Riccati equation φ' = aφ² + q, φ(0) = s (inf if none)."""
    if q > 0:  # (π/2 − atan(s√(a/q)))/√(qa), without cancellation or overflow
        return math.atan2(math.sqrt(q), s * math.sqrt(a)) / (math.sqrt(q) * math.sqrt(a))
    return 1.0 / a / s if s > 0 else math.inf


def _symmetric(*arrays):
    out = [np.atleast_2d(np.asarray(A, float)) for A in arrays]
    return [0.5 * (A + A.T) for A in out]


def _scalar_times(M, Q, S):
    """Blow-up times of the scalar equations along the negative eigen-directions e of M
    (the exact conjugate time when M, Q, S are simultaneously diagonal); [] when M ≥ 0."""
    lam, E = np.linalg.eigh(M)
    tiny = 1e-12 * float(np.abs(lam).max())  # round-off of a zero eigenvalue
    qs, ss = 1e-13 * np.linalg.norm(Q, 2), 1e-13 * np.linalg.norm(S, 2)
    out = []
    for a, e in zip(-lam, E.T):
        if a > tiny:
            qe, se = float(e @ Q @ e), float(e @ S @ e)
            out.append(_blow_up(a, qe if qe > qs else 0.0, se if se > ss else 0.0))
    return out


def search_horizon(M, Q, S):
    """τ up to which conjugate_time looks for a conjugate point (given no horizon): 8 times
    the longest scalar blow-up time along a negative direction of M; 0 when none can blow up
    (M ≥ 0, or Q and S vanish on M's negative eigenspace, which then keeps φ on the rest)."""
    times = [t for t in _scalar_times(*_symmetric(M, Q, S)) if math.isfinite(t)]
    return 8.0 * max(times) if times else 0.0


# the search for the first conjugate point (conjugate_time)
_CHART = 0.25        # a step keeps the plane within ‖P‖ ≤ _CHART in the chart of its start, so
_REACH = 2.5 * math.atan(_CHART)  # W's eigenphases move by less than 2 atan _CHART in it (+25 %)
_ACCURACY = 1e4      # largest ‖expm(hK)‖ / σ_min(expm(hK)Z) in one step: the plane to ~1e-12
_TOUCH = 1e-9        # a phase this close to π at a local minimum is a (tangential) conjugate point
_LONGEST = 16        # steps are at most 2^16 / ‖K‖ (balanced: ‖K‖ = 1)
_MAX_STEPS = 20_000  # steps of one search (a few seconds)
_EXTRA_STEPS = 500   # of them past the horizon asked about (for the notes)


def _comparison(v, b, d, p):
    """∫₀ᵖ dx/(v + bx + dx²) (v > 0, d ≥ 0, b of either sign): the time the solution of
    x' = v + bx + dx², x(0) = 0, takes to reach p; inf if the right-hand side vanishes on
    [0, p] first (x then stops below it).  Closed forms without cancellation."""
    if d <= 1e-14 * (v + abs(b) * p) / p:  # linear
        if abs(b) * p <= 1e-14 * v:
            return p / v
        return math.inf if v + b * p <= 0 else math.log1p(b * p / v) / b
    disc = b * b - 4 * v * d
    if disc < 0:  # (2/r)(atan((2dp + b)/r) − atan(b/r))
        r = math.sqrt(-disc)
        return 2.0 / r * math.atan2(p * r, 2 * v + b * p)
    r = math.sqrt(disc)  # v + bx + dx² = d(x + u)(x + w)
    if b >= 0:
        u, w = 2 * v / (b + r), (b + r) / (2 * d)
    else:
        w = -2 * v / (r - b)  # −(the smaller positive root)
        if p + w >= 0:
            return math.inf
        u = -(r - b) / (2 * d)
    scale = p / (d * (p + w) * u)
    z = r * scale
    return scale * (math.log1p(z) / z if z > 1e-12 else 1.0 - z / 2)


def _excursion(v, b, d, h, p):
    """min(p, x(h)) for x' = v + bx + dx², x(0) = 0 (an upper bound within 0.1 %): the
    inverse of _comparison."""
    if _comparison(v, b, d, p) <= h:
        return p
    lo, hi = 0.0, p
    for _ in range(60):
        mid = 0.5 * (lo + hi)
        lo, hi = (mid, hi) if _comparison(v, b, d, mid) < h else (lo, mid)
        if hi - lo <= 1e-3 * hi:
            break
    return hi


class _Frame:
    """The Lagrangian plane span[X; Y] of (X, Y)' = (MY, QX) as an orthonormal frame Z
    (2q×q), re-orthonormalised after every step of the exact propagator expm(hK).  Steps are
    powers of two times unit = 1/‖K‖."""

    def __init__(self, M, Q):
        q = self.q = len(M)
        Z0 = np.zeros((q, q))
        self.K = np.block([[Z0, M], [Q, Z0]])
        self.unit = 1.0 / max(float(np.linalg.norm(self.K, 2)), 1e-300)
        self._expm, self.last, self.calm = {}, _LONGEST, 0

    def propagator(self, j):
        """expm(h_j K) and its norm, h_j = unit · 2^j (cached)."""
        if j not in self._expm:
            E = expm(self.unit * 2.0 ** j * self.K)
            self._expm[j] = E, float(np.linalg.norm(E, 2)) if np.all(np.isfinite(E)) else math.inf
        return self._expm[j]

    @staticmethod
    def orthonormal(P):
        """The orthonormal frame of span P and P's smallest singular value."""
        if not np.all(np.isfinite(P)):
            raise ArithmeticError("conjugate time: the Hamiltonian flow is not finite")
        Z, R = np.linalg.qr(P)
        return Z, float(np.linalg.svd(R, compute_uv=False)[-1])

    def phase(self, Z):
        """Signed distance from π of the eigenphase of W = UᵀU (U = X̃ + iỸ, unitary for an
        orthonormal Lagrangian frame) nearest to π.  X̃ = Ū(W + I)/2, so X̃ is singular exactly
        when W has the eigenvalue −1, and its singular values are |cos(α/2)| over W's
        eigenphases α: a root of det X of multiplicity k is k phases at π."""
        U = Z[:self.q] + 1j * Z[self.q:]
        d = np.angle(-np.linalg.eigvals(U.T @ U))
        return float(d[np.argmin(np.abs(d))])

    def step(self, Z):
        """(j, (v, b, d)): the exponent j of a step over which the plane stays in the chart
        [I; P], ‖P‖ ≤ _CHART, of the orthogonal symplectic basis T = [Z, JZ] (None: no bound,
        the plane cannot leave it).  There P' = K21 + K22P − PK11 − PK12P with the blocks of
        TᵀKT, so ‖P‖ ≤ x with x' = v + bx + dx², x(0) = 0: v = ‖K21‖ the plane's speed, b the
        logarithmic norm μ(K22) + μ(−K11) (negative where the plane is attracting), d = ‖K12‖."""
        q = self.q
        T = np.hstack([Z, np.vstack([Z[q:], -Z[:q]])])
        Kh = T.T @ self.K @ T
        K11, K12, K21, K22 = Kh[:q, :q], Kh[:q, q:], Kh[q:, :q], Kh[q:, q:]
        v = float(np.linalg.norm(K21))
        if v == 0.0:
            return None, None
        b = float(np.linalg.eigvalsh(0.5 * (K22 + K22.T))[-1] + np.linalg.eigvalsh(-0.5 * (K11 + K11.T))[-1])
        coef = v, b, float(np.linalg.norm(K12))
        h = _comparison(*coef, _CHART)
        return (None if h > 2.0 ** _LONGEST * self.unit else math.floor(math.log2(h / self.unit))), coef

    def advance(self, Z, j):
        """(j, frame) of the largest step 2^j·unit (j at most the given one, and at most one
        more than the last one taken) whose propagation keeps the plane accurate (_ACCURACY)."""
        j = min(_LONGEST if j is None else j, self.last + (1 if self.calm >= 8 else 0))
        first = j
        while True:
            E, norm = self.propagator(j)
            if not math.isinf(norm) or j <= -60:
                Zn, low = self.orthonormal(E @ Z)
                if norm <= _ACCURACY * low or j <= -60:
                    break
            j -= 1
        self.calm = self.calm + 1 if j == first else 0  # try a longer step after 8 without a cut
        self.last = j
        return j, Zn

    def at(self, Z, s):
        """The frame s later (s no longer than the step it refines)."""
        return self.orthonormal(expm(s * self.K) @ Z)[0]


def _refine(frame, Z, j, d0, reach):
    """The first zero in (0, h] (h = unit · 2^j) of the distance of W's eigenphases from π
    along s ↦ expm(sK)Z, or None.  Nine samples on [0, h] and one on either side: a sign
    change of the signed distance is refined by brentq (any multiplicity: equal phases
    cross together), a local minimum of the distance without one (a touch) by minimisation
    and taken when below _TOUCH."""
    n, hs = 8, frame.unit * 2.0 ** (j - 3)
    frames = [frame.at(Z, -hs), Z]
    for _ in range(n + 1):
        frames.append(frame.orthonormal(frame.propagator(j - 3)[0] @ frames[-1])[0])
    s = hs * np.arange(-1, n + 2)
    d = np.array([frame.phase(frames[0]), d0, *(frame.phase(F) for F in frames[2:])])
    f = np.abs(d)
    for i in range(1, n + 2):  # s[1] = 0, s[n + 1] = h
        if d[i] == 0.0 and i > 1:
            return s[i]
        if (f[i] <= min(f[i - 1], f[i + 1]) and f[i] < reach
                and np.all(np.sign(d[i - 1:i + 2]) == np.sign(d[i]))):  # a crossing is a sign change below
            g = lambda x, F=frames[i - 1], x0=s[i - 1]: abs(frame.phase(frame.at(F, x - x0)))  # noqa: E731
            best = minimize_scalar(g, bounds=(s[i - 1], s[i + 1]), method="bounded", options={"xatol": 1e-4 * hs})
            if best.fun <= _TOUCH and 0.0 < best.x <= s[n + 1]:
                return float(best.x)
        if i <= n and d[i] * d[i + 1] < 0:
            g = lambda x, F=frames[i], x0=s[i]: frame.phase(frame.at(F, x - x0))  # noqa: E731
            root = brentq(g, s[i], s[i + 1], xtol=1e-15 * s[n + 1], rtol=4 * np.finfo(float).eps)
            if abs(g(root)) <= 1e-7:  # not a jump between two phases on either side of π
                return root
    return None


def _balance(M, Q, S):
    """c and (M̂, Q̂, Ŝ) = (cM/α², cα²Q, α²S): X̂(τ̂) = X(cτ̂)/α, Ŷ = αY solve the same system,
    so τ* = c τ̂*.  c is the shorter of the time scales 1/√(‖M‖‖Q‖) and 1/(‖M‖‖S‖) and
    α² = c‖M‖, so that ‖M̂‖ = 1 and ‖Q̂‖, ‖Ŝ‖ ≤ 1, one of them 1."""
    nM, nQ, nS = (float(np.linalg.norm(A, 2)) for A in (M, Q, S))
    c = min(1.0 / (math.sqrt(nM) * math.sqrt(nQ)) if nQ > 0 else math.inf, 1.0 / nM / nS if nS > 0 else math.inf)
    a2 = c * nM
    return c, (M / nM, (c * a2) * Q, a2 * S)


def conjugate_search(M, Q, S, horizon=None):
    """(τ*, covered): the first τ > 0 at which the backward Riccati solution φ(T − τ) blows
    up (inf if none was found) and how far the search went (τ* itself when found).

    The plane span[X; Y] of (X, Y)' = (MY, QX), X(0) = I, Y(0) = S, is carried as an
    orthonormal frame [X̃; Ỹ] (QR after each step of expm(hK), K = [[0, M], [Q, 0]]
    Hamiltonian, so the plane stays Lagrangian and U = X̃ + iỸ unitary).  det X = 0 exactly
    when W = UᵀU has the eigenvalue −1 (an eigenphase at π, as many as the multiplicity), so
    the conjugate time is the first zero of the distance of W's eigenphases from π: a sign
    change of the signed distance (equal phases cross together) or a touch.  No
    determinant: it would lose a root of even multiplicity, and its round-off grows like
    the frame's condition number.  Each step keeps the plane in a small chart around its
    start (_Frame.step), which bounds how far the phases move in it.  The phases turn at
    2vᴴAv with A the plane's velocity, whose quadratic form is xᵀQx − yᵀMy (JK = diag(Q, −M)):
    monotone only when that is definite (Q > 0, M < 0), so with M indefinite a phase may
    also turn back, and a touch of π is looked for as well.  M, Q, S are first balanced
    (_balance).

    The search covers [0, max(search_horizon, 1.06 horizon)], in at most _MAX_STEPS steps
    and at most _EXTRA_STEPS past 1.06 horizon; covered says where it stopped.
    ArithmeticError for non-finite input or flow."""
    M, Q, S = _symmetric(M, Q, S)
    with np.errstate(all="ignore"):
        if not all(np.all(np.isfinite(A)) for A in (M, Q, S)):
            raise ArithmeticError("conjugate time: M, Q or S is not finite")
        tau_max = search_horizon(M, Q, S)
        if tau_max == 0.0:
            return math.inf, math.inf
        c, (M, Q, S) = _balance(M, Q, S)
        needed = math.inf if horizon is None else 1.06 * float(horizon) / c
        tau_max = max(tau_max / c, 0.0 if horizon is None else needed)
        frame = _Frame(M, Q)
        Z = frame.orthonormal(np.vstack([np.eye(len(M)), S]))[0]
        d, tau, extra = frame.phase(Z), 0.0, 0
        for _ in range(_MAX_STEPS):
            if tau >= tau_max or extra >= _EXTRA_STEPS:
                return math.inf, c * tau
            j, coef = frame.step(Z)
            if coef is None:  # an invariant plane: X stays as it is
                return math.inf, math.inf
            j, Zn = frame.advance(Z, j)
            h, dn = frame.unit * 2.0 ** j, frame.phase(Zn)
            near = max(abs(d), abs(dn))
            if near <= _REACH:
                # the phases move by at most 2 atan ‖P‖ in the step (+25 %)
                reach = 2.5 * math.atan(_excursion(*coef, h, _CHART)) + 1e-12
                if near <= reach:
                    root = _refine(frame, Z, j, d, reach)
                    if root is not None:
                        return c * (tau + root), c * (tau + root)
            tau, Z, d = tau + h, Zn, dn
            extra += tau > needed
        return math.inf, c * tau


def conjugate_time(M, Q, S, horizon=None):
    """First τ > 0 at which the backward Riccati solution φ(T − τ) blows up (inf if never):
    conjugate_search, where inf means no conjugate point on [0, max(search_horizon, 1.06
    horizon)] (given a horizon: on [0, 1.06 horizon] at least).  ArithmeticError when the
    search cannot cover that."""
    tau, covered = conjugate_search(M, Q, S, horizon)
    need = 1.06 * float(horizon) if horizon is not None else search_horizon(M, Q, S)
    if math.isinf(tau) and covered < need:
        raise ArithmeticError(f"conjugate time: the search stopped at tau = {covered:.6g} of {need:.6g} "
                              f"(its {_MAX_STEPS} steps are too few for these time scales)")
    return tau


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
