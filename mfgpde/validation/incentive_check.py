"""Checks of the incentive games that do not trust the closed forms: best responses found
numerically from the cost functionals (written out again here), by golden-section search
of sample-average expected costs, and the minors' Nash equilibrium as a fixed point of
those numerical best responses, each strategy a piecewise-linear function of the type.

The types are antithetic normal samples, common to every candidate, with their sample mean
and covariance made exact, so that sampled expectations of quadratics are exact.
"""
import numpy as np

NODES = 17  # types at which a best response is computed: mu + s * linspace(-4, 4)


def golden(f, lo, hi, iterations=60, delta=1e-3):
    """argmin of a strictly convex f on [lo, hi], elementwise (f maps arrays to arrays):
    golden-section search, then two parabolic steps through u and u ± delta (exact for a
    quadratic, and free of the sqrt(eps) floor of comparing values)."""
    r = (np.sqrt(5.0) - 1) / 2
    a, b = np.array(lo, float), np.array(hi, float)
    c, d = b - r * (b - a), a + r * (b - a)
    fc, fd = f(c), f(d)
    for _ in range(iterations):
        left = fc < fd
        a, b = np.where(left, a, c), np.where(left, d, b)
        keep, fkeep = np.where(left, c, d), np.where(left, fc, fd)
        new = np.where(left, b - r * (b - a), a + r * (b - a))
        fnew = f(new)
        c, fc = np.where(left, new, keep), np.where(left, fnew, fkeep)
        d, fd = np.where(left, keep, new), np.where(left, fkeep, fnew)
    u = (a + b) / 2
    for _ in range(2):
        fm, f0, fp = f(u - delta), f(u), f(u + delta)
        u = u - delta * (fp - fm) / (2 * (fp - 2 * f0 + fm))
    return u


class Strategy:
    """A strategy u(x), piecewise linear through (nodes, values), linear beyond them."""

    def __init__(self, nodes, values):
        self.nodes, self.values = np.asarray(nodes, float), np.asarray(values, float)

    def __call__(self, x):
        n, v = self.nodes, self.values
        inner = np.interp(x, n, v)
        lo = v[0] + (v[1] - v[0]) / (n[1] - n[0]) * (x - n[0])
        hi = v[-1] + (v[-1] - v[-2]) / (n[-1] - n[-2]) * (x - n[-1])
        return np.where(x < n[0], lo, np.where(x > n[-1], hi, inner))


def affine(g, h):
    return lambda x: g * x + h


class Sampled:
    """Sample-average costs of one game (a closedforms.incentive game, for its parameters
    only): N minors (the first one deviating), a major of type x_M when the game has one."""

    def __init__(self, game, samples=2000, seed=1):
        self.game, N = game, int(game.N)
        z = np.random.default_rng(seed).standard_normal((samples, N + 1))
        z = np.concatenate([z, -z])  # mean exactly 0; covariance made exactly I:
        z = np.linalg.solve(np.linalg.cholesky(z.T @ z / len(z)), z.T).T
        self.x = game.mu + game.s * z[:, :N]  # column 0: the deviating minor's, replaced by a node
        self.x_M = game.mu_M + game.s_M * z[:, N] if hasattr(game, "mu_M") else None
        self.nodes = game.mu + game.s * np.linspace(-4, 4, NODES)

    def profile(self, minor, major=None):
        """Actions (samples, N) of every minor playing `minor`, and the major's (samples,)."""
        return minor(self.x), (major(self.x_M) if major is not None else None)

    def minor_cost(self, minor, major=None, leader=None):
        """f(u) = E[J_1 | x_1 = node] for u (nodes,), the others playing `minor`/`major`."""
        G, N = self.game, int(self.game.N)
        u_all, u_M = self.profile(minor, major)
        others = u_all[:, 1:].sum(axis=1)

        def f(u):
            x1, u1 = self.nodes[:, None], u[:, None]
            ub = (u1 + others) / N
            cost = 0.5 * (u1 - x1) ** 2 + G.a * u1 * ub
            if u_M is not None:
                cost = cost + 0.5 * G.b * (u1 - u_M) ** 2
            if leader is not None:  # the transfer u0 = leader(types, actions)
                x = np.broadcast_to(self.x, (NODES,) + self.x.shape).copy()
                a = np.broadcast_to(u_all, x.shape).copy()
                x[:, :, 0], a[:, :, 0] = self.nodes[:, None], u[:, None]
                cost = cost + leader(x, a)
            return cost.mean(axis=1)
        return f

    def major_cost(self, minor, leader):
        """f(u) = E[J_M | x_M = node] for u (nodes,), the minors playing `minor`; leader(x_M, u_M)."""
        G = self.game
        ub = minor(self.x).mean(axis=1)
        nodes = G.mu_M + G.s_M * np.linspace(-4, 4, NODES)

        def f(u):
            x_M, u_M = nodes[:, None], u[:, None]
            return (0.5 * (u_M - x_M) ** 2 + G.e * u_M * ub + leader(x_M, u_M)).mean(axis=1)
        return nodes, f

    def leader_cost(self, minor, major=None):
        """J0 sampled, every minor playing `minor` (and the major `major`), and its standard
        error (over antithetic pairs)."""
        G = self.game
        u, u_M = self.profile(minor, major)
        J = 0.5 * G.q * u.mean(axis=1) ** 2 + 0.5 * G.rho * ((u - self.x) ** 2).mean(axis=1)
        if u_M is not None:
            J = J + 0.5 * G.p * (u_M - self.x_M) ** 2
        pairs = J.reshape(2, -1).mean(axis=0)
        return J.mean(), pairs.std(ddof=1) / np.sqrt(pairs.size)


def best_response(f, nodes, width=50.0):
    """The numerical best answer at each node: golden section on nodes ± width."""
    return golden(f, nodes - width, nodes + width)


def minors_nash(sampled, major, tolerance=1e-12, max_iterations=200):
    """The minors' symmetric Nash equilibrium against `major`, by iterating numerical best
    responses from u = x; a Strategy.  Raises if the iteration does not settle."""
    minor = Strategy(sampled.nodes, sampled.nodes)
    for _ in range(max_iterations):
        new = best_response(sampled.minor_cost(minor, major), sampled.nodes)
        change = np.max(np.abs(new - minor.values))
        minor = Strategy(sampled.nodes, new)
        if change < tolerance:
            return minor
    raise RuntimeError(f"minors' best-response iteration did not settle (last change {change:.3g})")


def _gap(a, b):
    """max |a − b| relative to 1 + max |b|."""
    return float(np.max(np.abs(np.asarray(a) - b)) / (1.0 + np.max(np.abs(b))))


def _vertex(costs, step):
    """Offset of the vertex of the parabola through costs at −step, 0, +step."""
    return -step * (costs[2] - costs[0]) / (2 * (costs[2] - 2 * costs[1] + costs[0]))


STEP = 0.1  # of the leader's cost parabolas
TOLERANCE = 1e-8  # of every relative discrepancy the checks report (the pipeline's and the contract's)


def followers_checks(game, samples=1000, seed=1):
    """Discrepancies of the followers' game of N = game.N, from numerical best responses:
    the answer to the incentive against the leader-optimal u*, the answer without it against
    the closed form's uncontrolled answer (its departure from u*: `uncontrolled_gap`), the
    vertex of the leader's sampled cost in g and in h against u*, and that cost itself."""
    sampled = Sampled(game, samples, seed)
    g, h = game.team()
    nodes, team = sampled.nodes, affine(g, h)
    target = g * nodes + h
    answer = best_response(sampled.minor_cost(team, leader=game.incentive), nodes)
    uncontrolled = best_response(sampled.minor_cost(team), nodes)
    offsets = [_vertex([sampled.leader_cost(affine(*np.add((g, h), c * STEP * np.eye(2)[i])))[0]
                        for c in (-1, 0, 1)], STEP) for i in (0, 1)]
    J = game.leader_cost(g, h)
    return {"incentive_answer": _gap(answer, target),
            "uncontrolled_answer": _gap(uncontrolled, game.uncontrolled_answer(nodes)),
            "uncontrolled_gap": float(np.max(np.abs(uncontrolled - target))),
            "leader_vertex": float(np.max(np.abs(offsets)) / (1 + abs(g) + abs(h))),
            "leader_cost": abs(sampled.leader_cost(team)[0] - J) / (1 + abs(J))}


def major_minor_checks(game, samples=1000, seed=1):
    """Discrepancies of the major-minor game of N = game.N at its leader-major optimum, from
    numerical best responses: the minors' Nash answer to the major, the major's answer to
    its incentive and without it (against x_M − e m; its departure: `uncontrolled_gap`, |k_M|),
    the vertex in h_M of the leader's sampled cost with the minors re-answering, that cost.
    A best-response iteration that does not settle is an infinite discrepancy."""
    sampled, d = Sampled(game, samples, seed), game.leader_major()
    target = d["g"] * sampled.nodes + d["h"]
    try:
        minors = minors_nash(sampled, affine(1.0, d["h_M"]))
        costs = [sampled.leader_cost(minors_nash(sampled, affine(1.0, d["h_M"] + c * STEP)) if c else minors,
                                     affine(1.0, d["h_M"] + c * STEP))[0] for c in (-1, 0, 1)]
    except RuntimeError:
        return dict.fromkeys(("minors_nash", "major_answer", "uncontrolled_answer", "uncontrolled_gap",
                              "leader_vertex", "leader_cost"), np.inf)
    nodes, f = sampled.major_cost(minors, lambda x_M, u_M: d["k_M"] * (u_M - x_M - d["h_M"]))
    _, f0 = sampled.major_cost(minors, lambda x_M, u_M: 0.0 * u_M)
    answer, uncontrolled = best_response(f, nodes), best_response(f0, nodes)
    return {"minors_nash": _gap(minors.values, target),
            "major_answer": _gap(answer, nodes + d["h_M"]),
            "uncontrolled_answer": _gap(uncontrolled, nodes - game.e * d["m"]),
            "uncontrolled_gap": float(np.max(np.abs(uncontrolled - nodes - d["h_M"]))),
            "leader_vertex": abs(_vertex(costs, STEP)) / (1 + abs(d["h_M"])),
            "leader_cost": abs(sampled.leader_cost(minors, affine(1.0, d["h_M"]))[0] - d["J0"]) / (1 + abs(d["J0"]))}
