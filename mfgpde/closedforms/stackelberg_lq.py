r"""Closed form of the continuous-time LQ mean field Stackelberg game (Huang & Yang, scalar case).

Leader x0, representative follower x1, population mean z:

    dx0 = (A0 x0 + B0 u0 + F0 z) dt + sigma0 dW0
    dx1 = (A x1 + B u1 + D u0 + F z + G x0) dt + sigma dW1
    dz  = (A z + B ubar1 + D u0 + F z + G x0) dt,     ubar1 = u1*(x1 = z),
    L0  = Q0 (x0 - Gamma0 z)^2 + R0 u0^2,
    L   = Q (x1 - Gamma1 x0 - Gamma2 z)^2 + R u1^2 + R1 u0^2 + 2 R2 u0 u1,

values V0(t, x0, z), V1(t, x0, x1, z) = E int_t^T e^{-rho (s - t)} L ds, zero terminal values,
solving  rho V = V_t + L(u0*, u1*) + (generator of (x0, x1) and transport along z) V.
The follower answers any u0 with u1 = -(B V1_x1 + 2 R2 u0) / (2 R); the leader anticipates it,
so z moves with u0 through Dt = D - B R2 / R.  With the ansatz

    V0 = P00 x0^2 + P10 z^2 + 2 P010 x0 z + r0,
    V1 = P0 x0^2 + P1 x1^2 + P2 z^2 + 2 (P01 x0 x1 + P02 x0 z + P12 x1 z) + r1,

the feedbacks are u0* = K00 x0 + K10 z, u1* = K0 x0 + K1 x1 + K2 z with

    K00 = -(B0 P00 + Dt P010) / R0,   K10 = -(B0 P010 + Dt P10) / R0,
    K1 = -B P1 / R,   K0 = -(B P01 + R2 K00) / R,   K2 = -(B P12 + R2 K10) / R,

and, writing the closed-loop drifts as f0 = a00 x0 + a0z z, f1 = g x0 + a x1 + c z,
zdot = g x0 + m z  (a00 = A0 + B0 K00, a0z = B0 K10 + F0, g = G + B K0 + D K00,
a = A + B K1, c = B K2 + D K10 + F, m = a + c), the Riccati system (derived with sympy in
:mod:`mfgpde.closedforms.derive_stackelberg`, all zero at T) is

    P0'   = rho P0 - 2 a00 P0 - 2 g (P01 + P02) - (Q Gamma1^2 + R K0^2 + R1 K00^2 + 2 R2 K00 K0)
    P1'   = rho P1 - 2 a P1 - (Q + R K1^2)
    P2'   = rho P2 - 2 a0z P02 - 2 c P12 - 2 m P2
            - (Q Gamma2^2 + R K2^2 + R1 K10^2 + 2 R2 K10 K2)
    P01'  = rho P01 - (a00 + a) P01 - g (P1 + P12) - (-Q Gamma1 + R K0 K1 + R2 K00 K1)
    P02'  = rho P02 - a0z P0 - (a00 + m) P02 - c P01 - g (P12 + P2)
            - (Q Gamma1 Gamma2 + R K0 K2 + R1 K00 K10 + R2 (K00 K2 + K10 K0))
    P12'  = rho P12 - a0z P01 - c P1 - (a + m) P12 - (-Q Gamma2 + R K1 K2 + R2 K10 K1)
    P00'  = rho P00 - 2 a00 P00 - 2 g P010 - (Q0 + R0 K00^2)
    P10'  = rho P10 - 2 a0z P010 - 2 m P10 - (Q0 Gamma0^2 + R0 K10^2)
    P010' = rho P010 - a0z P00 - (a00 + m) P010 - g P10 - (-Q0 Gamma0 + R0 K00 K10)
    r0'   = rho r0 - sigma0^2 P00
    r1'   = rho r1 - sigma0^2 P0 - sigma^2 P1

Differences with the nine ODEs printed by Huang & Yang 2020 (K_0^0 = K00, K_1^0 = K10, P_0^0 = P00,
P_1^0 = P10, P_01^0 = P010; :func:`~mfgpde.closedforms.derive_stackelberg.compare_with_printed`
finds exactly these two, the other seven agree identically):

    P02' : printed  -2 P0 (B0 K10 + F0),         correct  -P0 (B0 K10 + F0)
           (x0 z is the cross monomial 2 P02 x0 z; V1_x0 f0 gives 2 P0 a0z x0 z, i.e. P0 a0z)
    P10' : printed  -2 P010 (B0 K00 + F0),       correct  -2 P010 (B0 K10 + F0)
           (the z^2 term of V0_x0 f0 = 2 (P00 x0 + P010 z)(a00 x0 + a0z z) has a0z, not a00)

The printed system has no r0, r1 (the printed game has no noise).
"""
import numpy as np
from scipy.integrate import solve_ivp

COEFFS = ("P0", "P1", "P2", "P01", "P02", "P12", "P00", "P10", "P010", "r0", "r1")
GAINS = ("K00", "K10", "K0", "K1", "K2")
DEFAULTS = dict(A0=1.0, B0=2.0, F0=0.5, A=0.5, B=1.0, D=1.0, F=0.2, G=0.4, Gamma0=0.8,
                Gamma1=0.3, Gamma2=0.5, Q=2.0, Q0=1.0, R=1.0, R0=0.5, R1=1.0, R2=0.5,
                rho=0.1, T=12.0, sigma0=0.3, sigma=0.3)
BLOW_UP = 1e8


class StackelbergLQ:
    """Equilibrium of the LQ mean field Stackelberg game of the module docstring.

    Keyword parameters as in DEFAULTS (Huang & Yang's set plus sigma0 = sigma = 0.3).  The Riccati
    system is integrated backward from 0 at T (DOP853, rtol 1e-10, atol 1e-12, dense output);
    ValueError if a parameter is out of range or the solution blows up before t = 0.
    leader="nash": the leader does not anticipate the followers' answer to u0 (Dt = D), the
    Nash equilibrium of the same game, for comparison and for checks that must tell the two
    apart (they coincide when R2 = 0).
    """

    def __init__(self, leader="stackelberg", **params):
        if leader not in ("stackelberg", "nash"):
            raise ValueError(f"leader must be 'stackelberg' or 'nash', got {leader!r}")
        unknown = set(params) - set(DEFAULTS)
        if unknown:
            raise ValueError(f"unknown parameter(s): {', '.join(sorted(unknown))}")
        p = {k: float(v) for k, v in {**DEFAULTS, **params}.items()}
        for name, ok, need in (("R", p["R"] > 0, "> 0"), ("R0", p["R0"] > 0, "> 0"),
                               ("T", p["T"] > 0, "> 0"), ("rho", p["rho"] >= 0, ">= 0"),
                               ("sigma0", p["sigma0"] >= 0, ">= 0"),
                               ("sigma", p["sigma"] >= 0, ">= 0")):
            if not ok:
                raise ValueError(f"parameter {name} must be {need}, got {p[name]}")
        self.params = p
        self.__dict__.update(p)
        self.leader = leader
        self.Dt = self.D - self.B * self.R2 / self.R if leader == "stackelberg" else self.D

        def blow_up(t, y):
            return BLOW_UP - np.max(np.abs(y))
        blow_up.terminal = True
        with np.errstate(all="ignore"):  # overflowing trial steps: a blow-up, reported below
            sol = solve_ivp(self.rhs, (self.T, 0.0), np.zeros(len(COEFFS)), method="DOP853",
                            rtol=1e-10, atol=1e-12, dense_output=True, events=blow_up)
        if sol.status != 0:
            raise ValueError(f"Riccati solution blows up near t = {sol.t[-1]:.6g} "
                             f"(|P| > {BLOW_UP:g} or step failure; horizon T = {self.T:g})")
        self._sol = sol.sol

    # ---- Riccati system ----------------------------------------------------------------------
    def _gains(self, P0, P1, P2, P01, P02, P12, P00, P10, P010):
        """(K00, K10, K0, K1, K2) from the P's."""
        K00 = -(self.B0 * P00 + self.Dt * P010) / self.R0
        K10 = -(self.B0 * P010 + self.Dt * P10) / self.R0
        K0 = -(self.B * P01 + self.R2 * K00) / self.R
        K2 = -(self.B * P12 + self.R2 * K10) / self.R
        return K00, K10, K0, -self.B * P1 / self.R, K2

    def rhs(self, t, y):
        """d/dt of (P0, P1, P2, P01, P02, P12, P00, P10, P010, r0, r1) (module docstring)."""
        P0, P1, P2, P01, P02, P12, P00, P10, P010, r0, r1 = y
        K00, K10, K0, K1, K2 = self._gains(*y[:9])
        Q, Q0, R, R0, R1, R2 = self.Q, self.Q0, self.R, self.R0, self.R1, self.R2
        G1, G2, G0, rho = self.Gamma1, self.Gamma2, self.Gamma0, self.rho
        a00, a0z = self.A0 + self.B0 * K00, self.B0 * K10 + self.F0
        g = self.G + self.B * K0 + self.D * K00
        a, c = self.A + self.B * K1, self.B * K2 + self.D * K10 + self.F
        m = a + c
        return np.array([
            rho * P0 - 2 * a00 * P0 - 2 * g * (P01 + P02)
            - (Q * G1**2 + R * K0**2 + R1 * K00**2 + 2 * R2 * K00 * K0),
            rho * P1 - 2 * a * P1 - (Q + R * K1**2),
            rho * P2 - 2 * a0z * P02 - 2 * c * P12 - 2 * m * P2
            - (Q * G2**2 + R * K2**2 + R1 * K10**2 + 2 * R2 * K10 * K2),
            rho * P01 - (a00 + a) * P01 - g * (P1 + P12) - (-Q * G1 + R * K0 * K1 + R2 * K00 * K1),
            rho * P02 - a0z * P0 - (a00 + m) * P02 - c * P01 - g * (P12 + P2)
            - (Q * G1 * G2 + R * K0 * K2 + R1 * K00 * K10 + R2 * (K00 * K2 + K10 * K0)),
            rho * P12 - a0z * P01 - c * P1 - (a + m) * P12
            - (-Q * G2 + R * K1 * K2 + R2 * K10 * K1),
            rho * P00 - 2 * a00 * P00 - 2 * g * P010 - (Q0 + R0 * K00**2),
            rho * P10 - 2 * a0z * P010 - 2 * m * P10 - (Q0 * G0**2 + R0 * K10**2),
            rho * P010 - a0z * P00 - (a00 + m) * P010 - g * P10 - (-Q0 * G0 + R0 * K00 * K10),
            rho * r0 - self.sigma0**2 * P00,
            rho * r1 - self.sigma0**2 * P0 - self.sigma**2 * P1,
        ])

    # ---- coefficients and feedbacks ----------------------------------------------------------
    def coefficients(self, t):
        """Dict name -> value (shape of t) of the 11 coefficients; t in [0, T]."""
        t = np.asarray(t, dtype=float)
        if np.any(t < -1e-12 * self.T) or np.any(t > self.T * (1 + 1e-12)):
            raise ValueError(f"t must lie in [0, T] = [0, {self.T:g}]")
        y = self._sol(t.ravel()).reshape((len(COEFFS),) + t.shape)
        return dict(zip(COEFFS, y))

    def gains(self, t):
        """Dict K00, K10, K0, K1, K2 (shape of t)."""
        c = self.coefficients(t)
        return dict(zip(GAINS, self._gains(*(c[n] for n in COEFFS[:9]))))

    def V0(self, t, x0, z):
        """Leader value P00 x0^2 + P10 z^2 + 2 P010 x0 z + r0."""
        c = self.coefficients(t)
        return c["P00"] * x0**2 + c["P10"] * z**2 + 2 * c["P010"] * x0 * z + c["r0"]

    def V1(self, t, x0, x1, z):
        """Follower value P0 x0^2 + P1 x1^2 + P2 z^2 + 2 (P01 x0 x1 + P02 x0 z + P12 x1 z) + r1."""
        c = self.coefficients(t)
        return (c["P0"] * x0**2 + c["P1"] * x1**2 + c["P2"] * z**2
                + 2 * (c["P01"] * x0 * x1 + c["P02"] * x0 * z + c["P12"] * x1 * z) + c["r1"])

    def u0(self, t, x0, z):
        """Leader feedback K00 x0 + K10 z."""
        k = self.gains(t)
        return k["K00"] * x0 + k["K10"] * z

    def u1(self, t, x0, x1, z):
        """Follower feedback K0 x0 + K1 x1 + K2 z."""
        k = self.gains(t)
        return k["K0"] * x0 + k["K1"] * x1 + k["K2"] * z

    def leader_drift(self, t, x0, z):
        """Closed-loop leader drift A0 x0 + B0 u0* + F0 z."""
        return self.A0 * x0 + self.B0 * self.u0(t, x0, z) + self.F0 * z

    def mean_drift(self, t, x0, z):
        """Closed-loop mean drift zdot = (A + F) z + G x0 + D u0* + B u1*(x1 = z)."""
        return ((self.A + self.F) * z + self.G * x0 + self.D * self.u0(t, x0, z)
                + self.B * self.u1(t, x0, z, z))

    def table(self, times):
        """List of rows (dicts): t, the gains and the 11 coefficients at each time."""
        times = np.asarray(times, dtype=float)
        k, c = self.gains(times), self.coefficients(times)
        return [{"t": t, **{n: k[n][i] for n in GAINS}, **{n: c[n][i] for n in COEFFS}}
                for i, t in enumerate(times)]
