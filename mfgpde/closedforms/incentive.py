r"""Incentive design with many followers, and with a major follower: static quadratic
Gaussian Stackelberg games in the setting of Sanjari, Bose & Başar, derived here.

Minor followers i = 1..N have private types x_i ~ N(mu, s^2), i.i.d., and act
simultaneously with (in the second game) a major follower of private type
x_M ~ N(mu_M, s_M^2).  The leader moves last: it observes the types and the actions and
charges a transfer u0.  With ub = (1/N) sum_j u_j,

    followers' game     J_i = E[1/2 (u_i − x_i)^2 + a u_i ub + u0]
                        J0  = E[1/2 q ub^2 + rho/(2N) sum_i (u_i − x_i)^2]
    major-minor game    J_i = E[1/2 (u_i − x_i)^2 + a u_i ub + 1/2 b (u_i − u_M)^2]
                        J_M = E[1/2 (u_M − x_M)^2 + e u_M ub + u0]
                        J0  = E[1/2 q ub^2 + 1/2 p (u_M − x_M)^2 + rho/(2N) sum_i (u_i − x_i)^2]

(a, b, e ≥ 0: congestion, imitation of the major, the major's congestion).  Every solution
below is affine, u_i = g x_i + h, u_M = g_M x_M + h_M (person-by-person optimal and
quadratic-Gaussian, so optimal by Radner's theorem); m = g mu + h is the minors' mean.

- Leader-optimal outcome (the team optimum of J0 over all strategies): u_M = x_M and
  g = N rho/(N rho + q), m = rho mu/(rho + q), independent of N.
- Incentive in the followers' game: u0 = (1/N) sum_j k(x_j)(u_j − u*(x_j)), zero on the
  path, with k(x) = −N [u*(x) − x + 2a u*(x)/N + a (N − 1) m/N], so that each follower's
  first-order condition holds at u* (its cost is strictly convex in u_i).  k0 + k1 mu ~
  −N [(1 + a) m − mu]: the gain grows without bound with N unless the team mean equals the
  uncontrolled one, so in the limit no finite-energy incentive exists: a follower's action
  no longer moves u0, and the followers play the mean field equilibrium g = 1,
  m = mu/(1 + a) whatever the leader does.
- Minors' Nash answer to a major of mean m_M: g = 1/(1 + b + 2a/N),
  m = c (mu + b m_M), c = 1/(1 + b + a (N + 1)/N).
- Leader-major-optimal solution: the leader picks the major's strategy, the minors answer
  with their Nash equilibrium: g_M = 1 and m_M minimises 1/2 q m^2 + 1/2 p (m_M − mu_M)^2
  + 1/2 rho (m − mu)^2, m_M = [p mu_M + c b mu (rho − (q + rho) c)] / [p + (q + rho) c^2 b^2].
  The incentive u0 = k_M (u_M − u_M*(x_M)), k_M = −(h_M + e m), makes u_M* the major's best
  answer; k_M stays finite as N → ∞, where the mean field Stackelberg solution is the
  same formulas at 1/N = 0.
"""
import math
from dataclasses import dataclass

import numpy as np


def _inv(N):
    return 0.0 if math.isinf(N) else 1.0 / N


@dataclass(frozen=True)
class FollowersGame:
    """The leader and N symmetric followers (N may be math.inf)."""
    N: float = 10
    a: float = 0.5
    q: float = 2.0
    rho: float = 1.0
    mu: float = 1.0
    s: float = 0.5

    def __post_init__(self):
        _check(self, ("a",), ("q", "rho", "s"))

    def team(self):
        """(g, h) of the leader-optimal outcome."""
        return team(self.N, self.q, self.rho, self.mu)

    def nash(self):
        """(g, h) of the followers' Nash equilibrium when u0 does not depend on their actions."""
        iN = _inv(self.N)
        g = 1.0 / (1.0 + 2 * self.a * iN)
        m = self.mu / (1.0 + self.a * (1.0 + iN))
        return g, m - g * self.mu

    def gain(self):
        """(k1, k0) of k(x) = k1 x + k0, the incentive's gain (finite N only)."""
        if math.isinf(self.N):
            raise ValueError("the incentive gain grows like N: no finite gain exists for N = inf")
        N, a = self.N, self.a
        g, h = self.team()
        m = g * self.mu + h
        return -N * (g - 1.0 + 2 * a * g / N), -N * (h + 2 * a * h / N + a * (N - 1) * m / N)

    def gain_norm(self):
        """sqrt(E k(x)^2): the size of the incentive per follower's action."""
        k1, k0 = self.gain()
        return math.hypot(k1 * self.mu + k0, k1 * self.s)

    def uncontrolled_answer(self, x):
        """A follower's best answer to the others playing the leader-optimal outcome when
        u0 does not depend on its action: u*(x) + k(x)/(N + 2a), from its first-order condition."""
        g, h = self.team()
        k1, k0 = self.gain()
        return g * x + h + (k1 * x + k0) / (self.N + 2 * self.a)

    def incentive(self, x, u):
        """u0 of the incentive strategy for types x and actions u (the last axis: followers)."""
        g, h = self.team()
        k1, k0 = self.gain()
        return np.mean((k1 * x + k0) * (u - (g * x + h)), axis=-1)

    def leader_cost(self, g, h):
        return leader_cost(self, g, h)


@dataclass(frozen=True)
class MajorMinorGame:
    """The leader, a major follower and N minor followers (N may be math.inf)."""
    N: float = 10
    a: float = 0.5
    b: float = 1.0
    e: float = 0.2
    q: float = 2.0
    p: float = 0.5
    rho: float = 1.0
    mu: float = 1.0
    s: float = 0.5
    mu_M: float = 1.0
    s_M: float = 0.5

    def __post_init__(self):
        _check(self, ("a", "b", "e", "p"), ("q", "rho", "s", "s_M"))
        if self.p == 0 and self.b == 0:
            raise ValueError("p and b: one of them must be > 0 for the major's strategy to be determined")

    def team(self):
        """(g, h) of the minors in the leader-optimal outcome (u_M = x_M there)."""
        return team(self.N, self.q, self.rho, self.mu)

    def _c(self):
        return 1.0 / (1.0 + self.b + self.a * (1.0 + _inv(self.N)))

    def minors(self, m_M):
        """(g, h): the minors' Nash answer to a major whose action has mean m_M."""
        g = 1.0 / (1.0 + self.b + 2 * self.a * _inv(self.N))
        m = self._c() * (self.mu + self.b * m_M)
        return g, m - g * self.mu

    def leader_major(self):
        """The leader-major-optimal solution: dict of h_M, m_M, g, h, m, k_M, J0."""
        c, b, p, q, rho, mu = self._c(), self.b, self.p, self.q, self.rho, self.mu
        m_M = (p * self.mu_M + c * b * mu * (rho - (q + rho) * c)) / (p + (q + rho) * c * c * b * b)
        return self._outcome(m_M - self.mu_M, self.incentive_gain(m_M - self.mu_M))

    def incentive_gain(self, h_M):
        """k_M of u0 = k_M (u_M − x_M − h_M): the major's best answer is then x_M + h_M."""
        g, h = self.minors(self.mu_M + h_M)
        return -(h_M + self.e * (g * self.mu + h))

    def nash(self):
        """The outcome without incentive (u0 independent of u_M): dict as leader_major."""
        # h_M = −e m and m = c (mu + b (mu_M + h_M)), solved together
        c = self._c()
        m = c * (self.mu + self.b * self.mu_M) / (1.0 + c * self.b * self.e)
        return self._outcome(-self.e * m, 0.0)

    def answer(self, k_M):
        """The followers' equilibrium when the leader charges u0 = k_M (u_M − x_M − target):
        dict as leader_major (used to apply one game's design in another).  The major plays
        x_M − e m − k_M, whatever the target."""
        c = self._c()
        m = c * (self.mu + self.b * (self.mu_M - k_M)) / (1.0 + c * self.b * self.e)
        return self._outcome(-self.e * m - k_M, k_M)

    def _outcome(self, h_M, k_M):
        g, h = self.minors(self.mu_M + h_M)
        return {"h_M": h_M, "m_M": self.mu_M + h_M, "g": g, "h": h, "m": g * self.mu + h, "k_M": k_M,
                "J0": self.leader_cost(g, h, 1.0, h_M)}

    def leader_optimal(self):
        """The leader-optimal (team) outcome: dict of g, h, m, J0 (u_M = x_M)."""
        g, h = self.team()
        return {"h_M": 0.0, "m_M": self.mu_M, "g": g, "h": h, "m": g * self.mu + h,
                "J0": self.leader_cost(g, h, 1.0, 0.0)}

    def leader_cost(self, g, h, g_M=1.0, h_M=0.0):
        return leader_cost(self, g, h) + 0.5 * self.p * (((g_M - 1.0) * self.mu_M + h_M) ** 2
                                                         + ((g_M - 1.0) * self.s_M) ** 2)


def team(N, q, rho, mu):
    """(g, h) minimising E[1/2 q ub^2 + rho/(2N) sum (u_i − x_i)^2] over u_i(x_i)."""
    g = rho / (rho + q * _inv(N))
    return g, rho * mu / (rho + q) - g * mu


def leader_cost(game, g, h):
    """E[1/2 q ub^2 + rho/(2N) sum (u_i − x_i)^2] for minors playing u_i = g x_i + h."""
    m = g * game.mu + h
    return 0.5 * game.q * (m * m + g * g * game.s ** 2 * _inv(game.N)) + 0.5 * game.rho * (
        (m - game.mu) ** 2 + ((g - 1.0) * game.s) ** 2)


def _check(game, nonnegative, positive):
    if not (game.N >= 1 and (math.isinf(game.N) or float(game.N).is_integer())):
        raise ValueError(f"N: a whole number ≥ 1 or inf, got {game.N!r}")
    for k in nonnegative:
        if not getattr(game, k) >= 0:
            raise ValueError(f"{k}: must be ≥ 0, got {getattr(game, k)!r}")
    for k in positive:
        if not getattr(game, k) > 0:
            raise ValueError(f"{k}: must be > 0, got {getattr(game, k)!r}")


def gain_growth(game, Ns):
    """N and the incentive's size sqrt(E k^2) in the followers' game, and its log-log slope."""
    Ns = np.asarray(Ns, dtype=float)
    norms = np.array([FollowersGame(**{**_params(game), "N": N}).gain_norm() for N in Ns])
    return {"N": Ns, "gain": norms, "slope": log_slope(Ns, norms)}


def log_slope(N, y):
    """The least-squares slope of log y against log N; nan where some y is not > 0 (an
    error that vanishes: b = e = 0, say)."""
    N, y = np.asarray(N, float), np.asarray(y, float)
    return float(np.polyfit(np.log(N), np.log(y), 1)[0]) if np.all(y > 0) else math.nan


def mean_field_errors(game, Ns):
    """The mean field Stackelberg solution (N = inf) applied in the game of N minors, for
    each N: the leader's loss against that game's leader-major optimum, the error of the
    predicted cost, of the major's and the minors' strategies; and their log-log slopes."""
    limit = MajorMinorGame(**{**_params(game), "N": math.inf}).leader_major()
    rows = {"N": np.asarray(Ns, dtype=float), "loss": [], "cost_error": [], "major_error": [], "minor_error": []}
    for N in rows["N"]:
        finite = MajorMinorGame(**{**_params(game), "N": N})
        applied, best = finite.answer(limit["k_M"]), finite.leader_major()
        rows["loss"].append(applied["J0"] - best["J0"])
        rows["cost_error"].append(abs(applied["J0"] - limit["J0"]))
        rows["major_error"].append(abs(applied["h_M"] - best["h_M"]))
        rows["minor_error"].append(abs(applied["g"] - limit["g"]) + abs(applied["h"] - limit["h"]))
    for k in ("loss", "cost_error", "major_error", "minor_error"):
        rows[k] = np.array(rows[k])
        rows[f"slope_{k}"] = log_slope(rows["N"], rows[k])
    return rows


def comparison(game, b_values, p_values):
    """The leader's cost under the leader-optimal, leader-major-optimal and uncontrolled
    outcomes, over the imitation b (rows) and the leader's weight p (columns)."""
    out = {"b": np.asarray(b_values, float), "p": np.asarray(p_values, float)}
    for key in ("leader_optimal", "leader_major", "nash"):
        out[key] = np.array([[getattr(MajorMinorGame(**{**_params(game), "b": b, "p": p}), key)()["J0"]
                              for p in out["p"]] for b in out["b"]])
    return out


def _params(game):
    return {k: getattr(game, k) for k in game.__dataclass_fields__}
