"""Robust crowd-seeking designers (Bauso & Başar 2016): an HJI equation.

Excess x ∈ R^q of an n-player TU game, q = 2ⁿ − 1 coalitions; dx = (Bu − w) dt + σ dW with
B the coalition incidence (q×n); the designer (allocation u) minimises and the adversary
(coalition values w) maximises  ½[(ρ − x)ᵀQ(ρ − x) + uᵀRu − wᵀΓw], terminal ½(ρ − x)ᵀS(ρ − x):

    H(x, p; m) = ½ pᵀMp − ½ (x − ρ)ᵀQ(x − ρ),   M = BR⁻¹Bᵀ − Γ⁻¹,
    u* = −R⁻¹Bᵀ∇v,  w* = −Γ⁻¹∇v,  drift −M∇v.

ρ is the population's mean m̄ (tracking = "mean"), the internal model m̄(0) e^{−θt}
(tracking = "internal", Section 5), or with several populations on a graph the average of
the neighbours' means (Section 7; graph = "chain" | "ring" | "complete" | a list, per
population, of its neighbours numbered from 1).

The grid axes are the principal directions of M (y = Vᵀx, V orthogonal): there H is a sum
of ½λ_k p_k² plus a potential, convex along λ_k > 0 and concave along λ_k < 0, so the
Engquist–Osher upwinding stays monotone for an indefinite M.  With q = 1, y = x.  The
parameters (mu0, B, Q, …) are in the original coordinates.  Matrices may be given as
scalars (times the identity).  An indefinite M (always, for a tall B) makes the game
ill-posed beyond the conjugate time of its Riccati equation; such a horizon is refused.
"""
import math

import numpy as np

from ..closedforms.conjugate import conjugate_search
from ..closedforms.robust_designer import GridClosedForm, RobustDesignerClosedForm, coalition_matrix, neighbour_weights
from ..config import HUGE
from .base import MFGModel, ModelError
from .registry import register

GRAPHS = ("none", "chain", "ring", "complete")


def _vector(text):
    return "(" + ", ".join(f"{v:.3g}" for v in text) + ")"


@register
class RobustDesigner(MFGModel):
    name = "robust_designer"
    parameters = {"players": "auto", "B": "coalitions", "R": 1.0, "Gamma": 4.0, "Q": 1.0, "S": 1.0,
                  "sigma": 0.3, "mu0": 0.0, "s0": 0.2, "tracking": "mean", "theta": 0.0,
                  "graph": "none", "populations": 1}

    # -- parameters ------------------------------------------------------------------
    def _matrix(self, key, size, definite):
        value = self.params[key]
        try:
            with np.errstate(invalid="ignore"):  # inf · 0 off the diagonal: refused below
                A = np.array(value, dtype=float) * (np.eye(size) if np.ndim(value) == 0 else 1.0)
        except (TypeError, ValueError):
            raise ModelError(f"model.{key}: must be a number or a {size}x{size} matrix, got {value!r}") from None
        if A.shape != (size, size) or not np.all(np.abs(A) <= HUGE):
            raise ModelError(f"model.{key}: must be a finite number or a {size}x{size} matrix (entries at most "
                             f"{HUGE:g} in magnitude), got {value!r}")
        if not np.allclose(A, A.T, rtol=0, atol=1e-12 * max(1.0, np.abs(A).max())):
            raise ModelError(f"model.{key}: must be symmetric")
        low = np.linalg.eigvalsh(A)[0]
        if low <= 0 if definite else low < -1e-12 * max(1.0, np.abs(A).max()):
            raise ModelError(f"model.{key}: must be positive {'definite' if definite else 'semidefinite'}, "
                             f"smallest eigenvalue {low:.3g}")
        return A

    def _incidence(self):
        q = self.dim
        if isinstance(self.B, str):
            if self.B != "coalitions":
                raise ModelError(f"model.B: \"coalitions\" or a {q}xn matrix, got {self.B!r}")
            players = {1: 1, 3: 2}.get(q) if self.players == "auto" else self.players
            if players is None:
                raise ModelError(f"model.players: a {q}-D grid is no coalition space (q = 2^n - 1 is 1, 3, 7, ...); "
                                 "give B explicitly")
            if isinstance(players, bool) or not isinstance(players, int) or players < 1:
                raise ModelError(f"model.players: a positive integer, got {players!r}")
            if 2 ** players - 1 != q:
                raise ModelError(f"model.players: {players} players have {2 ** players - 1} coalitions, "
                                 f"the grid has {q} axes")
            return coalition_matrix(players)
        try:
            B = np.array(self.B, dtype=float)
        except (TypeError, ValueError):
            raise ModelError(f"model.B: must be a {q}xn matrix of numbers") from None
        if B.ndim != 2 or B.shape[0] != q or B.shape[1] < 1 or not np.all(np.abs(B) <= HUGE):
            raise ModelError(f"model.B: must be a {q}xn matrix (one row per grid axis, entries at most "
                             f"{HUGE:g} in magnitude), got {self.B!r}")
        return B

    def _graph(self):
        """Neighbour lists (0-based) of the populations."""
        g, p = self.graph, self.populations
        if isinstance(p, bool) or not isinstance(p, int) or p < 1:
            raise ModelError(f"model.populations: a positive integer, got {p!r}")
        if isinstance(g, list):
            if self.params["populations"] not in (1, len(g)):
                raise ModelError(f"model.graph: lists {len(g)} populations, model.populations is {p}")
            p = len(g)
            nbs = []
            for k, nb in enumerate(g):
                if not isinstance(nb, list) or not nb or any(
                        isinstance(j, bool) or not isinstance(j, int) or not 1 <= j <= p or j == k + 1 for j in nb):
                    raise ModelError(f"model.graph: entry {k + 1} must list its neighbours, numbers in 1..{p} "
                                     f"other than {k + 1}, got {nb!r}")
                nbs.append(sorted({j - 1 for j in nb}))
            return nbs
        if g not in GRAPHS:
            raise ModelError(f"model.graph: one of {', '.join(GRAPHS)} or a list of neighbour lists, got {g!r}")
        if g == "none" and p > 1:
            raise ModelError(f"model.populations: {p} populations need a model.graph")
        if g != "none" and p < 2:
            raise ModelError(f"model.graph: {g!r} needs model.populations >= 2")
        if g == "none":
            return [[0]]
        if g == "chain":
            return [[j for j in (k - 1, k + 1) if 0 <= j < p] for k in range(p)]
        if g == "ring":
            return [sorted({(k - 1) % p, (k + 1) % p}) for k in range(p)]
        return [[j for j in range(p) if j != k] for k in range(p)]

    def _means0(self):
        """Initial means (populations × q), original coordinates.  A number is every
        population's mean on every axis.  Otherwise: with one population, q numbers (or
        one when q = 1); with P > 1 populations, one list of q numbers per population
        ([[...], ...]), where for q = 1 a flat list of P numbers is the same.  With P > 1
        and q > 1 a flat list is refused: one number per population and one per axis
        would read alike when P = q."""
        value, p, q = self.mu0, self.populations, self.dim
        if p > 1 and q > 1 and isinstance(value, list) and not all(isinstance(row, list) for row in value):
            raise ModelError(f"model.mu0: with {p} populations on a {q}-D grid, a list of {p} lists of {q} "
                             f"numbers (one list per population, [[...], ...]), or one number; got {value!r}")
        rows = value if isinstance(value, list) and p > 1 else [value] * p
        if len(rows) != p:
            raise ModelError(f"model.mu0: one entry per population ({p}), got {value!r}")
        out = []
        for row in rows:
            entry = row if isinstance(row, list) else [row] * q
            if len(entry) != q or any(isinstance(v, bool) or not isinstance(v, (int, float)) or not abs(v) <= HUGE
                                      for v in entry):
                raise ModelError(f"model.mu0: {q} finite numbers (magnitude at most {HUGE:g}) per population, "
                                 f"got {row!r}")
            out.append(entry)
        return np.array(out, dtype=float)

    def validate(self):
        q = self.dim
        self.B_matrix = self._incidence()
        n = self.B_matrix.shape[1]
        self.R_matrix = self._matrix("R", n, definite=True)
        self.Gamma_matrix = self._matrix("Gamma", q, definite=True)
        self.Q_matrix = self._matrix("Q", q, definite=False)
        self.S_matrix = self._matrix("S", q, definite=False)
        self.sigma = self._sigma()
        self.s0 = self._number("s0", 0.0, strict=True)
        self.theta = self._number("theta", 0.0)
        if self.tracking not in ("mean", "internal"):
            raise ModelError(f"model.tracking: \"mean\" or \"internal\", got {self.tracking!r}")
        self.neighbours = self._graph()
        self.populations = len(self.neighbours)
        if self.tracking == "internal" and self.populations > 1:
            raise ModelError("model.tracking: \"internal\" is for one population (the graph sets what each tracks)")
        self.means0 = self._means0()
        self.W = neighbour_weights(self.neighbours)
        with np.errstate(all="ignore"):
            self.M = self.B_matrix @ np.linalg.solve(self.R_matrix, self.B_matrix.T) - np.linalg.inv(self.Gamma_matrix)
        if not np.all(np.abs(self.M) <= HUGE):
            raise ModelError("model.B: M = BR^-1B^T - Gamma^-1 is too large to compute with (B, R, Gamma)")
        self.lam, V = np.linalg.eigh(0.5 * (self.M + self.M.T))
        V = V * np.sign(V[np.argmax(np.abs(V), axis=0), range(q)])  # largest entry of each direction > 0
        self.V = V
        self.Qy, self.Sy = V.T @ self.Q_matrix @ V, V.T @ self.S_matrix @ V
        self.means0_y = self.means0 @ V
        self.couples_through_mean = self.tracking == "mean" and self.populations == 1
        self.tau_star = self.searched = None  # set_horizon looks up to T and a little beyond

    def _conjugate_search(self, T):
        """(τ*, how far the search went) of the Riccati equation, looking at least up to 1.06 T."""
        try:
            return conjugate_search(self.M, self.Q_matrix, self.S_matrix, horizon=T)
        except ArithmeticError as e:
            raise ModelError(f"model.Gamma: the conjugate time of the game's Riccati equation cannot be computed "
                             f"({e})") from None

    def set_horizon(self, T):
        super().set_horizon(T)
        self.tau_star, self.searched = self._conjugate_search(T)
        if math.isinf(self.tau_star) and self.searched < 1.06 * T:
            raise ModelError(f"time.T: {T:g} is too long to decide whether the game's Riccati solution exists: "
                             f"the conjugate-time search stopped at {self.searched:.6g}; choose a shorter T")
        if T >= self.tau_star:
            raise ModelError(f"time.T: {T:g} is beyond the conjugate time {self.tau_star:.6g} of the game's Riccati "
                             f"equation (M = BR^-1B^T - Gamma^-1 is indefinite along {self._indefinite()}): "
                             f"the game has no value there; choose T < {self.tau_star:.6g}")

    def _indefinite(self):
        return ", ".join(f"{_vector(self.V[:, k])} (eigenvalue {self.lam[k]:.3g})"
                         for k in range(self.dim) if self.lam[k] < 0)

    def notes(self):
        if self.tau_star is None:
            self.tau_star, self.searched = self._conjugate_search(None)
        horizon = "" if self.T is None else f" (T = {self.T:g})"
        lines = [f"M = BR^-1B^T - Gamma^-1 has eigenvalues {_vector(self.lam)}; grid axis k is its "
                 f"principal direction V[:, k] (y = V^T x), V = {[list(np.round(r, 6)) for r in self.V]}"]
        if self.lam[0] > 0:
            lines.append("M > 0 (condition (17) holds): the Riccati solution exists on every horizon")
        elif self.lam[0] == 0:
            lines.append("M >= 0: the Riccati solution exists on every horizon")
        elif math.isinf(self.tau_star):
            upto = "" if math.isinf(self.searched) else f" up to {self.searched:.6g}"
            lines.append(f"M is indefinite along {self._indefinite()}, yet the Riccati solution has no conjugate "
                         f"time{upto}{horizon}")
        else:
            lines.append(f"M is indefinite along {self._indefinite()}: the Riccati solution exists up to the "
                         f"conjugate time {self.tau_star:.6g}{horizon}")
            if self.T is not None and self.T > 0.95 * self.tau_star:
                lines.append(f"T = {self.T:g} is within 5 % of the conjugate time {self.tau_star:.6g}: the value "
                             f"grows like 1/(tau* - T); expect a stiff problem")
        return lines

    # -- the Hamiltonian in the principal coordinates y -----------------------------------
    def concave_axes(self):
        return [bool(v < 0) for v in self.lam]

    def _signal(self, t, density):
        """ρ in grid coordinates."""
        if self.tracking == "internal":
            return self.means0_y[0] * math.exp(-self.theta * t)
        return self.W[density.population] @ density.means

    @staticmethod
    def _form(A, d):
        return sum(A[i, j] * d[i] * d[j] for i in range(len(d)) for j in range(len(d)))

    def hamiltonian(self, t, x, p, density):
        d = [xi - ri for xi, ri in zip(x, self._signal(t, density))]
        return 0.5 * sum(lk * pk ** 2 for lk, pk in zip(self.lam, p)) - 0.5 * self._form(self.Qy, d)

    def dH_dp(self, t, x, p, density):
        return [lk * pk for lk, pk in zip(self.lam, p)]

    def d2H_dp2(self, t, x, p, density):
        return [[self.lam[i] if i == j else 0.0 for j in range(self.dim)] for i in range(self.dim)]

    def dH_dmean(self, t, x, p, density):
        d = [xi - ri for xi, ri in zip(x, self._signal(t, density))]
        return [sum(self.Qy[i, j] * d[j] for j in range(self.dim)) for i in range(self.dim)]

    def terminal(self, x, density):
        d = [xi - ri for xi, ri in zip(x, self._signal(self.T, density))]
        return 0.5 * self._form(self.Sy, d)

    def dg_dmean(self, x, density):
        d = [xi - ri for xi, ri in zip(x, self._signal(self.T, density))]
        return [-sum(self.Sy[i, j] * d[j] for j in range(self.dim)) for i in range(self.dim)]

    def initial_density(self, x, population=0):
        mu = self.means0_y[population]
        return np.exp(-sum((xi - mi) ** 2 for xi, mi in zip(x, mu)) / (2 * self.s0 ** 2))

    def feedbacks(self, grad_u):
        """allocation_j = u*_j = −(R⁻¹Bᵀ∇v)_j and disturbance_i = w*_i = −(Γ⁻¹∇v)_i, with
        ∇_x v = V ∇_y v."""
        grad_x = [sum(self.V[i, k] * grad_u[k] for k in range(self.dim)) for i in range(self.dim)]
        Ku = -np.linalg.solve(self.R_matrix, self.B_matrix.T)
        Kw = -np.linalg.inv(self.Gamma_matrix)
        out = {f"allocation_{j + 1}": sum(Ku[j, i] * grad_x[i] for i in range(self.dim)) for j in range(len(Ku))}
        out.update({f"disturbance_{i + 1}": sum(Kw[i, k] * grad_x[k] for k in range(self.dim))
                    for i in range(self.dim)})
        return out

    def closed_form(self, T):
        cf = RobustDesignerClosedForm(self.B_matrix, self.R_matrix, self.Gamma_matrix, self.Q_matrix,
                                      self.S_matrix, self.sigma, T, self.means0, self.s0, W=self.W,
                                      tracking=self.tracking, theta=self.theta)
        return GridClosedForm(cf, self.V)

