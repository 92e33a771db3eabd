"""The run-file schema as data: per game family, its sections and keys with type, default
and meaning.  `config` takes its defaults, required keys and unknown-key checks from here
(the range checks stay in its validators), and the key tables of docs/run-files.md are
generated from it (`tools/write_run_files.py` rewrites them; a test checks they agree).
"""
from dataclasses import dataclass

REQUIRED = "required"  # the default of a key a run file must give


@dataclass(frozen=True)
class Key:
    name: str
    type: str
    default: object
    meaning: str


def _doc_default(value):
    if value is REQUIRED:
        return "required"
    if value is None:
        return "none"
    if isinstance(value, float) and value != round(value, 6):
        return f"`{value:.6g}`"
    return f"`{value!r}`".replace("'", '"')


MODEL = [Key("name", "string", REQUIRED, "a registered model (`mfgpde models` lists them; an unknown name lists the "
                                         "known ones by family)"),
         Key("source", "string", None, "where a user's model is defined: a `.py` file (relative to the run file) or a "
                                       "dotted module on the Python path. Imported before the run file is validated; "
                                       "every failure in it is one line naming the file and line, exit 2")]
CHECKPOINT = [
    Key("checkpoint_file", "string", None, "where checkpoints go (default `OUT.ckpt.h5`)"),
    Key("checkpoint_every", "integer ≥ 0", 0, "write a checkpoint every k iterations (levels); 0: none"),
    Key("checkpoint_seconds", "number ≥ 0", 0.0, "write a checkpoint every w seconds; 0: none"),
    Key("max_wall_time", "duration", None, "wall-time budget: `HH:MM:SS`, `D-HH:MM:SS`, `MM:SS` or seconds, counted "
                                           "from the start; then the run checkpoints and exits with 124. "
                                           "`--max-time` wins over it"),
]
OUTPUT = [Key("file", "string", None, "the output file; `-o` wins over it; with neither, `out/<run file name>.h5`"),
          Key("plots", "boolean", False, "write the plots after a converged run"),
          Key("plot_formats", "list of `\"png\"`, `\"pdf\"`, `\"svg\"`", ["png"], "the plots' file formats"),
          Key("plot_dpi", "integer in [10, 2400]", 100, "resolution of PNG plots")]
PLOT_TIMES = Key("plot_times", "list of numbers ≥ 0", None, "times of the snapshot plots (default 0, T/2, T); "
                                                            "those beyond T are plotted at T, said in a note")

SCHEMA = {
    "mfg": {
        "model": MODEL,
        "grid": [
            Key("lower", "list of numbers, one per axis", REQUIRED, "lower corner of the box"),
            Key("upper", "list of numbers, one per axis", REQUIRED, "upper corner; must exceed `lower` on every axis"),
            Key("n", "list of integers ≥ 2 (1 to 3 entries)", REQUIRED,
                "cells per axis; the number of entries sets the dimension (a bare number: one axis)"),
            Key("boundary", "`\"reflecting\"` \\| `\"periodic\"`, or one per axis", "reflecting",
                "reflecting walls mirror the edge cell; periodic edges wrap"),
            Key("axes", "list of distinct identifiers", None,
                "axis names (default x, y, z), used in the output (`/grid/<axis>`) and the plots"),
        ],
        "time": [Key("T", "number > 0", REQUIRED, "horizon"),
                 Key("nt", "integer ≥ 1", REQUIRED, "implicit Euler steps; dt = T/nt must lie in [1e-150, 1e150]")],
        "solver": [
            Key("coupling", "`\"auto\"` \\| `\"anderson\"` \\| `\"picard\"` \\| `\"newton\"`", "auto",
                "how HJB and Fokker–Planck are coupled ([method.md](method.md)); `auto`: Anderson, falling back to "
                "damped Picard if a sweep fails or the iterations end without reducing the residual, and Picard for "
                "models of several populations; `anderson` does not fall back"),
            Key("damping", "number in (0, 1]", 0.7, "Picard's θ: m ← (1 − θ) m + θ FP(HJB(m)); also the fallback's "
                                                    "and that of the Picard iterations before Newton"),
            Key("tolerance", "number ≥ 1e-14", 1e-8, "Picard and Anderson stop when the relative sup-changes of u "
                                                     "and m (for Anderson also the relative residual) are below it"),
            Key("max_iterations", "integer ≥ 1", 200, "Picard or Anderson iterations before the run is declared "
                                                      "unconverged (exit 3)"),
            Key("mass_tolerance", "number > 0", 1e-12, "every iterate must conserve mass to this (unit initial mass) "
                                                       "and keep m ≥ −tolerance, else the solve fails"),
            Key("picard_iterations", "integer ≥ 1", 1, "Picard iterations before Newton takes over"),
            Key("newton_tolerance", "number > 0", 1e-10, "Newton's absolute tolerance on the residual "
                                                         "(discrete L²(0,T;L²) norm)"),
            Key("newton_max_iterations", "integer ≥ 1", 30, "Newton iterations (a restarted run counts those "
                                                            "before the restart)"),
            Key("newton_linear", "`\"auto\"` \\| `\"marching\"` \\| `\"direct\"` \\| `\"fieldsplit\"`", "auto",
                "Newton's linear solver ([petsc.md](petsc.md)); `auto`: `marching`, or `direct` when a "
                "`-newton_pc_type` option is given"),
        ],
        "output": [*OUTPUT, PLOT_TIMES, *CHECKPOINT],
        "petsc": [],
    },
    "leader_follower": {
        "model": MODEL,
        "grid": [
            Key("x0", "`[low, high]`", [-3.0, 3.0], "the leader's axis"),
            Key("z", "`[low, high]`", [-3.0, 3.0], "the population mean's axis (the follower's x1 axis is z's)"),
            Key("n", "integer ≥ 4, or `[n_x0, n_z]`", 32, "cells per axis"),
            Key("window", "number in (0, 1 − 1/n]", 1 / 3, "the central fraction of each axis where errors (or "
                                                          "differences from the LQ game) and fitted gains are "
                                                          "measured"),
        ],
        "time": [Key("T", "number > 0", REQUIRED, "horizon"), Key("nt", "integer ≥ 1", REQUIRED, "time steps")],
        "solver": [
            Key("coupling", "`\"lagged\"` \\| `\"picard\"` \\| `\"newton\"`", "lagged",
                "how the two equations are coupled within a time level "
                "([family-leader-follower.md](family-leader-follower.md))"),
            Key("tolerance", "number in [1e-14, 1)", 1e-9, "Picard sweeps stop when ∂x1V1 on the diagonal changes by "
                                                           "less than this (relative)"),
            Key("max_iterations", "integer ≥ 1", 50, "Picard sweeps per level before the run is declared "
                                                     "unconverged (exit 3)"),
        ],
        "output": [*OUTPUT, PLOT_TIMES, *CHECKPOINT],
        "petsc": [],
    },
    "discrete": {
        "model": MODEL,
        "grid": [Key("n", "integer in [1, 100000]", 50, "points per edge of the simplex of population states (2 "
                                                        "follower states: an interval; 3: a triangle)"),
                 Key("beliefs", "integer in [2, 1001]", 11, "a leader with a private type: equally spaced beliefs π "
                                                           "in [0, 1] of the master equation over (π, z), the prior "
                                                           "added")],
        "time": [
            Key("T", "integer ≥ 1, or `\"infinite\"`", "infinite", "a number of steps (a finite horizon), or the "
                                                                   "stationary master value of the discounted game"),
            Key("steps", "integer ≥ 1", 20, "length of the forward equilibrium path for an infinite horizon"),
            Key("z1", "shares ≥ 0 summing to 1, one per follower state", REQUIRED,
                "the initial population state of the forward path"),
            Key("prior", "number in [0, 1]", 0.5, "a leader with a private type: the prior probability of its "
                                                  "second type, the belief the paths start from"),
        ],
        "solver": [
            Key("leader", "`\"optimistic\"` \\| `\"pessimistic\"`", "optimistic",
                "which follower equilibrium the leader assumes where there are several: the best for it, or the "
                "worst"),
            Key("epsilon", "number ≥ 0", 0.0, "the ε-pessimistic leader (with `leader = \"pessimistic\"`): "
                                              "the worst ε-equilibrium of the followers, none of whom gains more "
                                              "than ε by a one-step deviation; 0: the worst equilibrium"),
            Key("leader_points", "integer ≥ 2", 41, "candidate actions on a leader interval before the two "
                                                    "refinements"),
            Key("commitment_steps", "integer 0 to 4", 1, "k of the leader's k-step commitment gain along the path, "
                                                    "checked with an independent enumeration of the followers' "
                                                    "equilibria (0: not computed; not with epsilon > 0); for a "
                                                    "leader with a private type 0 or 1: its prescription checked "
                                                    "against every pair of actions at every step"),
            Key("tolerance", "number ≥ 1e-14", 1e-9, "infinite horizon: stop when the sup-change of the master value "
                                                     "falls below this"),
            Key("max_iterations", "integer ≥ 1", 2000, "infinite horizon: iterations of the master map before the "
                                                       "run is declared unconverged (exit 3)"),
        ],
        "output": [*OUTPUT, *CHECKPOINT],
    },
    "incentive": {
        "model": MODEL,
        "study": [
            Key("N", "list of distinct integers ≥ 1 (at least two)", [1, 2, 5, 10, 20, 50, 100, 200, 500, 1000],
                "follower counts of the tables (sorted); the slopes are fitted over all of them"),
            Key("b", "list of numbers ≥ 0", [0.0, 0.5, 1.0, 1.5, 2.0, 2.5, 3.0, 3.5, 4.0],
                "`incentive_major_minor` only (refused for `incentive_followers`): the minors' imitation b of the "
                "comparison of the leader's costs, in the mean field limit"),
            Key("p", "list of numbers ≥ 0", [0.1, 0.5, 2.0],
                "`incentive_major_minor` only (refused for `incentive_followers`): the leader's weights p on the "
                "major's deviation in that comparison (p = 0 only where b has no 0)"),
        ],
        "check": [
            Key("samples", "integer in [10, 1000000]", 1000, "antithetic pairs of type samples of the numerical "
                                                             "best responses (their cost grows like samples · N)"),
            Key("seed", "integer ≥ 0", 1, "seed of the samples"),
            Key("max_N", "integer ≥ 0", 100, "the numerical checks run at the N of `study.N` up to this one "
                                             "(0: none); a failed check makes the run unconverged (exit 3)"),
        ],
        "output": OUTPUT,
    },
}
OPEN = ("model", "petsc")  # sections whose other keys are checked elsewhere (the model) or free (PETSc options)
TITLES = {"mfg": "Mean field games on a box", "leader_follower": "Continuous-time leader–follower games",
          "discrete": "Discrete-time Stackelberg games: the master equation",
          "incentive": "Incentive design with many followers and a major follower"}
NOTES = {
    ("mfg", "model"): "Every other key is a parameter of the model; each model checks its own and refuses unknown ones.",
    ("mfg", "grid"): "The grid is cell-centred and uniform; under `mpirun -n P` every axis is split over the ranks "
                     "(PETSc DMDA), and a grid with fewer cells than ranks is refused.",
    ("mfg", "solver"): "A model of several populations accepts only `auto` or `picard`; `newton` needs a model with "
                       "`d2H_dp2`.",
    ("mfg", "output"): "A stop by signal or budget writes a checkpoint whatever these keys say "
                       "([cluster.md](cluster.md)).",
    ("mfg", "petsc"): "Any PETSc option, without its leading dash, with a string, number or boolean value "
                      "(`hjb_snes_monitor = true`, `fp_ksp_type = \"gmres\"`); `false` leaves it unset; the command "
                      "line wins. Prefixes and defaults: [petsc.md](petsc.md).",
    ("leader_follower", "petsc"): "PETSc options, as for a mean field game (prefixes `leader_`, `follower_`, "
                                  "`coupled_`).",
    ("discrete", "output"): "There is no `plot_times` and no `[petsc]` section in this family.",
    ("incentive", "model"): "Every other key is a parameter of the model (`mfgpde models`; "
                            "[family-incentive.md](family-incentive.md)); the number of followers comes from "
                            "`study.N`.",
    ("incentive", "check"): "Every discrepancy is relative (to 1 + the size of what is compared) and must be at most "
                            "1e-8 ([family-incentive.md](family-incentive.md)).",
    ("incentive", "output"): "The games are static: there is no `[time]`, no `[petsc]`, no checkpoint and nothing to "
                             "restart (`--restart` is refused).",
}


def defaults(family):
    """{section: {key: default}} of the keys a run file may leave out."""
    return {s: {k.name: k.default for k in keys if k.default is not REQUIRED} for s, keys in SCHEMA[family].items()}


def required(family):
    """{section: [keys a run file must give]}."""
    return {s: [k.name for k in keys if k.default is REQUIRED] for s, keys in SCHEMA[family].items()}


def known(family, section):
    return [k.name for k in SCHEMA[family][section]]


BEGIN = "<!-- generated from mfgpde/schema.py by tools/write_run_files.py: edit the schema, not this part -->"
END = "<!-- end of the generated part -->"


def markdown():
    """The key tables of every family (the generated part of docs/run-files.md)."""
    from .models import registry
    out = [BEGIN]
    for family, sections in SCHEMA.items():
        names = [n for n in registry.models(family) if registry.lookup(n).__module__.startswith("mfgpde.models.")]
        out += ["", f"## {TITLES[family]} ({', '.join(f'`{n}`' for n in names)})", "",
                f"Sections: {', '.join(f'`[{s}]`' for s in sections)}."]
        for section, keys in sections.items():
            out += ["", f"### `[{section}]`", ""]
            if keys:
                out += ["| key | type | default | meaning |", "|---|---|---|---|"]
                out += [f"| `{k.name}` | {k.type} | {_doc_default(k.default)} | {k.meaning} |" for k in keys]
            if (family, section) in NOTES:
                out += ["", NOTES[family, section]] if keys else [NOTES[family, section]]
    return "\n".join(out + ["", END])


def rewrite(path):
    """Replace the generated part of the page at `path` (between BEGIN and END)."""
    text = open(path, encoding="utf-8").read()
    head, _, rest = text.partition(BEGIN)
    _, _, tail = rest.partition(END)
    with open(path, "w", encoding="utf-8") as f:
        f.write(head + markdown() + tail)
