"""The 1-D LQ MFG of runs/lq_mfg_1d.toml (ρ = 0) solved by the peer package mfgsolver
(PyPI; finite differences and policy iteration), run by `mfgpde bench --peer PYTHON` in
that interpreter (which needs mfgsolver, not mfgpde):

    PYTHON peer_mfgsolver.py q kappa s sigma mu0 s0 lower upper nx nt T tol max_iterations out.npz

Policy iteration until the sup-change of M is below tol · max M; writes xs, U(0), M(T), the
iterations and the wall time of the solve to out.npz.
"""
import sys
import time

import numpy as np
from mfgsolver import MfgBase

q, kappa, s, sigma, mu0, s0, lower, upper = map(float, sys.argv[1:9])
nx, nt = int(sys.argv[9]), int(sys.argv[10])
T, tol, max_iterations, out = float(sys.argv[11]), float(sys.argv[12]), int(sys.argv[13]), sys.argv[14]


class LQ(MfgBase):
    """H(x, p; m) = ½ p² − ½ q (x − κ m̄)², g = ½ s (x − κ m̄(T))², as mfgsolver's
    H = ½ |p|² / F1(m) − F2(m) with F1 = 1."""

    def M0_func(self, x):
        return np.exp(-(x - mu0) ** 2 / (2 * s0 ** 2))

    def UT_func(self, x):
        raise NotImplementedError  # get_UT reads m(T)

    def get_UT(self, mT):
        return 0.5 * s * (self.xs - kappa * np.sum(self.xs * mT) * self.dx) ** 2

    def F1_func(self, m):
        return np.ones_like(m)

    def F2_func(self, m):
        return 0.5 * q * (self.xs - kappa * np.sum(self.xs * m) * self.dx) ** 2


start = time.perf_counter()
game = LQ(nv=0.5 * sigma ** 2, x1=lower, x2=upper, Nx=nx, Nt=nt, T=T, bc="neumann")
iterations = 0
while iterations < max_iterations:
    game.solve(maxit=1)  # one policy iteration; the policy persists between calls
    iterations += 1
    if game.diff_M[-1] < tol * np.max(np.abs(game.M)):
        break
wall = time.perf_counter() - start
np.savez(out, xs=game.xs, u0=game.U[0], mT=game.M[-1], iterations=iterations, wall=wall,
         converged=game.diff_M[-1] < tol * np.max(np.abs(game.M)))
