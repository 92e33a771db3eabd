"""The contract checks of MFG models (`MFGModel`) (see the package docstring)."""

import numpy as np

from .common import (
    EO_RTOL,
    MAX_GRID,
    NOT_IMPLEMENTED,
    Check,
    _arr,
    _box,
    _compare,
    _difference,
    _g,
    _guard,
    _Sample,
    _step,
    _Tally,
    _vec,
)


def _mfg_checks(model, cfg, points, rng, cheap):
    dim = model.dim
    lower, upper, n, T = _box(cfg, dim)
    if getattr(model, "T", None) is None:
        model.set_horizon(T)  # the terminal cost may read the horizon (a ModelError says why not)
    populations = int(getattr(model, "populations", 1) or 1)
    batches = 8  # a few times and means per population
    per = max(1, -(-points // batches))
    samples = [_Sample(rng, lower, upper, n, T, per, populations, k)
               for k in range(populations) for _ in range(batches)]
    out = [_guard("m0", _m0_check, model, lower, upper, n, populations),
           _guard("Engquist-Osher", _eo_check, model, samples, rng)]
    if cheap:
        return out
    out.append(_guard("dH_dp", _dH_dp_check, model, samples))
    out.append(_guard("d2H_dp2", _d2H_dp2_check, model, samples))
    out.append(_guard("dH_dm", _m_check, model, samples, "dH_dm"))
    out.append(_guard("d2H_dpdm", _m_check, model, samples, "d2H_dpdm"))
    out.append(_guard("dg_dm", _m_check, model, samples, "dg_dm"))
    if model.couples_through_mean:
        out.append(_guard("dH_dmean", _mean_check, model, samples, "dH_dmean"))
        out.append(_guard("dg_dmean", _mean_check, model, samples, "dg_dmean"))
    if not out[2].ok:  # the second derivatives are differences of dH_dp, what Newton differentiates
        for c in out:
            if c.name in ("d2H_dp2", "d2H_dpdm") and not c.ok:
                c.detail += "; dH_dp, which it is compared with, fails too"
    return out


def _m0_check(model, lower, upper, n, populations):
    h = (upper - lower) / n
    stride = np.ones(len(n), dtype=int)
    while np.prod(-(-n // stride)) > MAX_GRID:
        stride[np.argmax(-(-n // stride))] *= 2
    axes = [lower[d] + (np.arange(0, n[d], stride[d]) + 0.5) * h[d] for d in range(len(n))]
    shape = tuple(len(a) for a in axes)
    rows = max(1, (1 << 20) // max(1, int(np.prod(shape[1:]))))
    lows, masses = [], []
    for k in range(populations):
        total, low, low_at = 0.0, np.inf, None
        for start in range(0, shape[0], rows):
            block = [axes[0][start:start + rows]] + axes[1:]
            x = tuple(np.meshgrid(*block, indexing="ij", sparse=True))
            m0 = np.broadcast_to(np.asarray(model.initial_density(x, k), dtype=float), tuple(len(b) for b in block))
            bad = ~np.isfinite(m0)
            who = f" of population {k}" if populations > 1 else ""
            if bad.any():
                i = np.unravel_index(int(np.argmax(bad)), m0.shape)
                at = _vec([b[j] for b, j in zip(block, i)])
                return Check("m0", False, f"the initial density m0{who} is not finite ({_g(m0[i])}) at x={at}")
            i = np.unravel_index(int(np.argmin(m0)), m0.shape)
            if m0[i] < low:
                low, low_at = float(m0[i]), [b[j] for b, j in zip(block, i)]
            total += float(np.sum(m0))
        mass = total * float(np.prod(h * stride))
        if low < 0:
            return Check("m0", False, f"the initial density m0{who} is negative ({_g(low)}) at x={_vec(low_at)}")
        if not (mass > 0 and np.isfinite(mass)):
            return Check("m0", False, f"the initial density m0{who} has total {_g(mass)} on the grid: it cannot be "
                                      "normalised")
        lows.append(low)
        masses.append(mass)
    sub = "" if np.all(stride == 1) else f" (on a subgrid, strides {tuple(int(s) for s in stride)})"
    return Check("m0", True, f"finite, min {_g(min(lows))}, total {', '.join(_g(v) for v in masses)} on the grid{sub}")


def _eo_check(model, samples, rng):
    """Inside the orthants of p_b and p_f, H moves away from H(p_d = 0) monotonically as
    |p_d| grows: up along a convex axis, down along a concave one."""
    dim = model.dim
    concave = [bool(c) for c in model.concave_axes()]
    if len(concave) != dim:
        return Check("Engquist-Osher", False, f"concave_axes() gives {len(concave)} entries for {dim} axes")
    orient = np.where(concave, -1.0, 1.0)  # direction of p_b's entries, and of H's growth
    tally = _Tally("Engquist-Osher", "decrease")
    for s in samples:
        N = s.N
        for side in (1.0, -1.0):  # p_b's orthant, p_f's
            base = [side * orient[e] * np.abs(s.p[e]) for e in range(dim)]
            density = s.density()
            for d in range(dim):
                a = side * orient[d] * 10.0 ** rng.uniform(-4.0, 0.5, N)
                r = rng.uniform(0.0, 1.0, N)
                H = []
                for v in (np.zeros(N), r * a, a):
                    p = list(base)
                    p[d] = v
                    H.append(_arr(model.hamiltonian(s.t, s.x, p, density), N))
                # growth away from 0: κ (H(a) − H(ra)) ≥ 0 and κ (H(ra) − H(0)) ≥ 0
                fall = np.stack([orient[d] * (H[1] - H[2]), orient[d] * (H[0] - H[1])])
                tol = EO_RTOL * (1.0 + np.abs(H[0]) + np.abs(H[1]) + np.abs(H[2]))

                def where(c, i, d=d, a=a, r=r, base=base, H=H, s=s):
                    kind = "concave" if concave[d] else "convex"
                    lo, hi = (r[i] * a[i], a[i]) if c == 0 else (0.0, r[i] * a[i])
                    Hlo, Hhi = (H[1][i], H[2][i]) if c == 0 else (H[0][i], H[1][i])
                    other = [base[e][i] for e in range(dim)]
                    other[d] = hi
                    return (f"axis {d} (declared {kind}): H(p_{d}={_g(hi)}) = {_g(Hhi)} vs H(p_{d}={_g(lo)}) = "
                            f"{_g(Hlo)}, at t={_g(s.t)}, x={_vec([xd[i] for xd in s.x])}, p={_vec(other)}")
                tally.add(np.maximum(fall, 0.0), np.stack([tol, tol]), where, count=0)
    tally.count = sum(s.N for s in samples)
    axes = ", ".join(str(i) for i, c in enumerate(concave) if c) or "none"
    return tally.check(f"H grows away from p_d = 0 along every convex axis, falls along the concave ones ({axes}), "
                       f"in the orthants of p_b and p_f, at {tally.count} points x {dim} axes")


def _dH_dp_check(model, samples):
    dim, tally = model.dim, _Tally("dH_dp", against="H in p")
    for s in samples:
        density = s.density()
        analytic = model.dH_dp(s.t, s.x, s.p, density)
        if len(analytic) != dim:
            return Check("dH_dp", False, f"returns {len(analytic)} arrays for {dim} axes")
        errs, tols, scales = [], [], []
        for d in range(dim):
            def H(v, d=d):
                p = list(s.p)
                p[d] = v
                return _arr(model.hamiltonian(s.t, s.x, p, density), s.N)
            fd, noise = _difference(H, s.p[d], _step(s.p[d]))
            e, t, sc = _compare(_arr(analytic[d], s.N), fd, noise)
            errs.append(e), tols.append(t), scales.append(sc)
        tally.add(np.stack(errs), np.stack(tols), lambda c, i, s=s: f"axis {c}, {s.where(i)}", scales)
    return tally.check()


def _d2H_dp2_check(model, samples):
    dim, tally = model.dim, _Tally("d2H_dp2", against="dH_dp in p")
    for s in samples:
        density = s.density()
        try:
            analytic = model.d2H_dp2(s.t, s.x, s.p, density)
        except NotImplementedError:
            return Check("d2H_dp2", True, NOT_IMPLEMENTED)
        if len(analytic) != dim or any(len(row) != dim for row in analytic):
            return Check("d2H_dp2", False, f"is not a {dim}x{dim} nested list")
        errs, tols, scales, labels = [], [], [], []
        for e in range(dim):
            def dH(v, e=e):
                p = list(s.p)
                p[e] = v
                return np.stack([_arr(g, s.N) for g in model.dH_dp(s.t, s.x, p, density)])
            fd, noise = _difference(dH, s.p[e], _step(s.p[e]))
            for d in range(dim):
                err, tol, sc = _compare(_arr(analytic[d][e], s.N), fd[d], noise[d])
                errs.append(err), tols.append(tol), scales.append(sc), labels.append((d, e))
        tally.add(np.stack(errs), np.stack(tols),
                  lambda c, i, s=s: f"entry {labels[c]} (difference of dH_dp), {s.where(i)}", scales)
    return tally.check()


def _m_check(model, samples, name):
    """dH_dm, d2H_dpdm, dg_dm against differences in m at every point (mass and mean held:
    the unknowns Newton linearises in)."""
    against = {"dH_dm": "H in m", "d2H_dpdm": "dH_dp in m", "dg_dm": "g in m"}[name]
    dim, tally = model.dim, _Tally(name, against=against)
    local = bool(model.couples_locally)
    if not local:
        tally.note = "couples_locally is False, so it must not depend on m"
    for s in samples:
        density = s.density()
        try:
            if name == "dH_dm":
                analytic = [model.dH_dm(s.t, s.x, s.p, density)]
            elif name == "d2H_dpdm":
                analytic = list(model.d2H_dpdm(s.t, s.x, s.p, density))
            else:
                analytic = [model.dg_dm(s.x, density)]
        except NotImplementedError:
            return Check(name, True, NOT_IMPLEMENTED)
        if len(analytic) != (dim if name == "d2H_dpdm" else 1):
            return Check(name, False, f"returns {len(analytic)} entries, expected {dim}")

        def f(m):
            d = s.density(m=m)
            if name == "dH_dm":
                return _arr(model.hamiltonian(s.t, s.x, s.p, d), s.N)[None]
            if name == "d2H_dpdm":
                return np.stack([_arr(v, s.N) for v in model.dH_dp(s.t, s.x, s.p, d)])
            return _arr(model.terminal(s.x, d), s.N)[None]
        fd, noise = _difference(f, s.m, _step(s.m))
        errs, tols, scales = [], [], []
        for c, a in enumerate(analytic):
            err, tol, sc = _compare(_arr(a, s.N), fd[c], noise[c])
            if not local:
                err = np.maximum(err, np.abs(fd[c]))
            errs.append(err), tols.append(tol), scales.append(sc)
        hjb = name != "dg_dm"
        label = (lambda c: f"axis {c}, ") if name == "d2H_dpdm" else (lambda c: "")
        tally.add(np.stack(errs), np.stack(tols),
                  lambda c, i, s=s: label(c) + s.where(i, p=hjb, t=hjb), scales)
    return tally.check()


def _mean_check(model, samples, name):
    """dH_dmean, dg_dmean against differences in m̄_d (the population's row of means moves
    with it)."""
    dim, tally = model.dim, _Tally(name, against="H in the mean" if name == "dH_dmean" else "g in the mean")
    for s in samples:
        hjb = name == "dH_dmean"
        try:
            analytic = list(model.dH_dmean(s.t, s.x, s.p, s.density()) if hjb else model.dg_dmean(s.x, s.density()))
        except NotImplementedError:
            return Check(name, True, NOT_IMPLEMENTED)
        if len(analytic) != dim:
            return Check(name, False, f"returns {len(analytic)} entries for {dim} axes")
        errs, tols, scales = [], [], []
        for d in range(dim):
            h = float(_step(s.mean[d]))

            def f(v, d=d):
                mean = s.mean.copy()
                mean[d] = v
                dens = s.density(mean=mean)
                return _arr(model.hamiltonian(s.t, s.x, s.p, dens) if hjb else model.terminal(s.x, dens), s.N)
            fd, noise = _difference(f, s.mean[d], h)
            err, tol, sc = _compare(_arr(analytic[d], s.N), fd, noise)
            errs.append(err), tols.append(tol), scales.append(sc)
        tally.add(np.stack(errs), np.stack(tols),
                  lambda c, i, s=s: f"axis {c}, " + s.where(i, p=hjb, t=hjb, mean=True), scales)
    return tally.check()

