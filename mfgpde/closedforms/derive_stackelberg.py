r"""Symbolic (sympy) derivation of the Riccati ODEs of the LQ mean field Stackelberg game.

The model, the reduced master HJB system and the ansatz are stated in
:mod:`mfgpde.closedforms.stackelberg_lq`.  :func:`derive` substitutes the quadratic ansatz,
the Stackelberg feedbacks

    u0* = -1/(2 R0) (B0 V0_x0 + Dt V0_z),        Dt = D - B R2 / R,
    u1* = -1/(2 R)  (B V1_x1 + 2 R2 u0*),
    zdot = (A + F) z + G x0 + D u0* + B u1*|_{x1 = z},

into  V_t = rho V - [L + V_x0 f0 + V_x1 f1 + V_z zdot + 1/2 sigma0^2 V_x0x0 + 1/2 sigma^2 V_x1x1]
and reads dP/dt off the monomials x0^2, x1^2, z^2, x0 x1, x0 z, x1 z, 1 (a cross coefficient
P_ij carries the factor 2 of the ansatz).  :func:`printed_equations` transcribes the nine ODEs
as printed by Huang & Yang (2020, scalar case, K_0^0 = K00, K_1^0 = K10,
P_0^0 = P00, P_1^0 = P10, P_01^0 = P010) and :func:`compare_with_printed` says which agree.
"""

PARAMS = ("A0", "B0", "F0", "A", "B", "D", "F", "G", "Gamma0", "Gamma1", "Gamma2",
          "Q", "Q0", "R", "R0", "R1", "R2", "rho", "sigma0", "sigma")
COEFFS = ("P0", "P1", "P2", "P01", "P02", "P12", "P00", "P10", "P010", "r0", "r1")


def symbols():
    """Dict name -> sympy Symbol for every parameter, coefficient and the states x0, x1, z."""
    import sympy as sp
    return {n: sp.Symbol(n, real=True) for n in PARAMS + COEFFS + ("x0", "x1", "z")}


def gains(s):
    """Feedback gains K00, K10, K0, K1, K2 as sympy expressions of the P's (s = symbols())."""
    Dt = s["D"] - s["B"] * s["R2"] / s["R"]
    K00 = -(s["B0"] * s["P00"] + Dt * s["P010"]) / s["R0"]
    K10 = -(s["B0"] * s["P010"] + Dt * s["P10"]) / s["R0"]
    return dict(K00=K00, K10=K10, K0=-(s["B"] * s["P01"] + s["R2"] * K00) / s["R"],
                K1=-s["B"] * s["P1"] / s["R"], K2=-(s["B"] * s["P12"] + s["R2"] * K10) / s["R"])


def derive():
    """dP/dt for the 11 coefficients, from the HJB system; dict name -> sympy expression."""
    import sympy as sp
    s = symbols()
    p = {n: s[n] for n in PARAMS + COEFFS}
    x0, x1, z = s["x0"], s["x1"], s["z"]
    V0 = p["P00"] * x0**2 + p["P10"] * z**2 + 2 * p["P010"] * x0 * z + p["r0"]
    V1 = (p["P0"] * x0**2 + p["P1"] * x1**2 + p["P2"] * z**2
          + 2 * (p["P01"] * x0 * x1 + p["P02"] * x0 * z + p["P12"] * x1 * z) + p["r1"])
    Dt = p["D"] - p["B"] * p["R2"] / p["R"]
    u0 = -(p["B0"] * V0.diff(x0) + Dt * V0.diff(z)) / (2 * p["R0"])
    u1 = -(p["B"] * V1.diff(x1) + 2 * p["R2"] * u0) / (2 * p["R"])
    f0 = p["A0"] * x0 + p["B0"] * u0 + p["F0"] * z
    f1 = p["A"] * x1 + p["B"] * u1 + p["D"] * u0 + p["F"] * z + p["G"] * x0
    zdot = (p["A"] + p["F"]) * z + p["G"] * x0 + p["D"] * u0 + p["B"] * u1.subs(x1, z)
    L0 = p["Q0"] * (x0 - p["Gamma0"] * z)**2 + p["R0"] * u0**2
    L1 = (p["Q"] * (x1 - p["Gamma1"] * x0 - p["Gamma2"] * z)**2 + p["R"] * u1**2
          + p["R1"] * u0**2 + 2 * p["R2"] * u0 * u1)
    H0 = L0 + V0.diff(x0) * f0 + V0.diff(z) * zdot + p["sigma0"]**2 / 2 * V0.diff(x0, 2)
    H1 = (L1 + V1.diff(x0) * f0 + V1.diff(x1) * f1 + V1.diff(z) * zdot
          + p["sigma0"]**2 / 2 * V1.diff(x0, 2) + p["sigma"]**2 / 2 * V1.diff(x1, 2))
    Vt0 = sp.Poly(sp.expand(p["rho"] * V0 - H0), x0, z)
    Vt1 = sp.Poly(sp.expand(p["rho"] * V1 - H1), x0, x1, z)
    monomials = {"P0": (Vt1, x0**2, 1), "P1": (Vt1, x1**2, 1), "P2": (Vt1, z**2, 1),
                 "P01": (Vt1, x0 * x1, 2), "P02": (Vt1, x0 * z, 2), "P12": (Vt1, x1 * z, 2),
                 "r1": (Vt1, 1, 1), "P00": (Vt0, x0**2, 1), "P10": (Vt0, z**2, 1),
                 "P010": (Vt0, x0 * z, 2), "r0": (Vt0, 1, 1)}
    return {n: sp.simplify(poly.coeff_monomial(m) / w) for n, (poly, m, w) in monomials.items()}


def printed_equations():
    """The nine Riccati ODEs as printed by Huang & Yang (2020, scalar case); dict name -> dP/dt."""
    s = symbols()
    k = gains(s)
    K00, K10, K0, K1, K2 = (k[n] for n in ("K00", "K10", "K0", "K1", "K2"))
    (A0, B0, F0, A, B, D, F, G, Gm0, Gm1, Gm2, Q, Q0, R, R0, R1, R2, rho) = (
        s[n] for n in PARAMS[:18])
    P0, P1, P2, P01, P02, P12, P00, P10, P010 = (s[n] for n in COEFFS[:9])
    a00, g, m = A0 + B0 * K00, G + B * K0 + D * K00, A + B * K1 + B * K2 + D * K10 + F
    return {
        "P0": rho * P0 - 2 * P0 * a00 - 2 * (P01 + P02) * g
        - 2 * K00 * R2 * K0 - R * K0**2 - R1 * K00**2 - Q * Gm1**2,
        "P1": rho * P1 - 2 * P1 * (A + B * K1) - R * K1**2 - Q,
        "P2": rho * P2 - 2 * P02 * (B0 * K10 + F0) - 2 * P12 * (B * K2 + D * K10 + F)
        - 2 * m * P2 - R * K2**2 - R1 * K10**2 - 2 * K10 * R2 * K2 - Q * Gm2**2,
        "P01": rho * P01 - a00 * P01 - P01 * (A + B * K1) - g * (P1 + P12)
        - K0 * R * K1 - K00 * R2 * K1 + Gm1 * Q,
        "P02": rho * P02 - 2 * P0 * (B0 * K10 + F0) - a00 * P02
        - P01 * (B * K2 + D * K10 + F) - g * (P12 + P2) - P02 * m - K0 * R * K2
        - K00 * R1 * K10 - K00 * R2 * K2 - K0 * R2 * K10 - Gm1 * Q * Gm2,
        "P12": rho * P12 - P01 * (B0 * K10 + F0) - P1 * (B * K2 + D * K10 + F) - P12 * m
        - (A + B * K1) * P12 - K1 * R * K2 - K1 * R2 * K10 + Q * Gm2,
        "P00": rho * P00 - 2 * P00 * a00 - 2 * P010 * g - R0 * K00**2 - Q0,
        "P10": rho * P10 - 2 * P010 * (B0 * K00 + F0) - 2 * m * P10 - R0 * K10**2 - Q0 * Gm0**2,
        "P010": rho * P010 - P00 * (B0 * K10 + F0) - a00 * P010 - P010 * m - g * P10
        - K00 * R0 * K10 + Q0 * Gm0,
    }


def compare_with_printed(derived=None):
    """Dict name -> (agrees, simplified derived - printed) for the nine printed ODEs."""
    import sympy as sp
    derived = derive() if derived is None else derived
    out = {}
    for name, printed in printed_equations().items():
        diff = sp.factor(sp.simplify(derived[name] - printed))
        out[name] = (diff == 0, diff)
    return out
