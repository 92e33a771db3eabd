"""Finite-population study of the LQ mean field Stackelberg game (Huang & Yang's parameters, T = 12).

Usage:  python runs/stackelberg_finite_population.py [PNG]
        (PNG defaults to out/stackelberg_finite_population.png)
Prints the gains and Riccati coefficients at t = 0, 3, 6, 9, 12 and the table N, E sup_t |zN - z|
(+- standard error), follower 1's best-response gain; writes the log-log plot to PNG.
"""
import pathlib
import sys
import time

from mfgpde.closedforms.stackelberg_finite import finite_population_study, plot_finite_population
from mfgpde.closedforms.stackelberg_lq import COEFFS, GAINS, StackelbergLQ


def main(png="out/stackelberg_finite_population.png"):
    start = time.perf_counter()
    cf = StackelbergLQ()
    cols = ("t",) + GAINS + COEFFS
    print(" ".join(f"{c:>9}" for c in cols))
    for row in cf.table([0.0, 3.0, 6.0, 9.0, 12.0]):
        print(" ".join(f"{row[c] + 0.0:9.5f}" for c in cols))
    table = finite_population_study(cf)
    print(f"\n{'N':>6} {'E sup|zN - z|':>14} {'s.e.':>9} {'deviation gain':>15}")
    for N, gap, se, gain in zip(table["N"], table["gap"], table["gap_se"], table["gain"]):
        print(f"{N:6.0f} {gap:14.5f} {se:9.5f} {gain:15.4e}")
    print(f"{'inf':>6} {0.0:14.5f} {'':>9} {table['gain_limit']:15.4e}")
    print(f"slopes (log-log in N): mean gap {table['slope_gap']:.3f}, "
          f"deviation gain {table['slope_gain']:.3f}")
    path = pathlib.Path(png)
    path.parent.mkdir(parents=True, exist_ok=True)
    plot_finite_population(table, path)
    print(f"plot: {path}  ({time.perf_counter() - start:.1f} s)")


if __name__ == "__main__":
    main(*sys.argv[1:2])
