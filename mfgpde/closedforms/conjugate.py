"""The first conjugate time of the Riccati equation φ' = φMφ − Q, φ(0) = S (backward time
τ): the first τ > 0 with det X(τ) = 0 for (X, Y)' = (MY, QX), X(0) = I, Y(0) = S, beyond
which φ = Y X⁻¹ does not exist.  conjugate_search follows the eigenphases of an
orthonormal frame of the Lagrangian plane span[X; Y], so a root of det X of any
multiplicity counts and long horizons keep their accuracy; the scalar blow-up times along
M's negative eigen-directions set how far it looks."""
import math

import numpy as np
from scipy.linalg import expm
from scipy.optimize import brentq, minimize_scalar


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
