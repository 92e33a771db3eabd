"""Run files: TOML read as data, `--set section.key=value` overrides, validation.

Sections: [model] (name, source + the model's parameters), [grid], [time], [solver],
[output], [petsc] ([study], [check] for incentive design); which sections and keys exist
depends on the game family of the model.
Every problem is a ConfigError whose message names the key.
"""
import math
import pathlib
import tomllib

from . import schema
from .grids.boundary import BOUNDARIES
from .stop import parse_duration


class ConfigError(ValueError):
    """Bad input; the message starts with the offending key."""


DEFAULTS = schema.defaults("mfg")  # the MFG family's, section by section
SECTIONS = {s for sections in schema.SCHEMA.values() for s in sections}  # of any family
COUPLINGS = ("auto", "anderson", "picard", "newton")
TINY, HUGE = 1e-150, 1e150  # widths, steps and parameters whose squares (and their inverses) stay finite
NEWTON_LINEAR = ("auto", "direct", "fieldsplit", "marching")


def parse_value(text):
    """A --set value as TOML (numbers, lists, booleans, quoted strings); bare words stay strings."""
    try:
        return tomllib.loads(f"v = {text}")["v"]
    except tomllib.TOMLDecodeError:
        return text


def load(path, overrides=()):
    """The resolved configuration: defaults < run file < overrides ('section.key=value')."""
    try:
        with open(path, "rb") as f:
            data = tomllib.load(f)
    except FileNotFoundError:
        raise ConfigError(f"{path}: run file not found") from None
    except OSError as e:
        raise ConfigError(f"{path}: cannot read run file ({e.strerror})") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as e:
        raise ConfigError(f"{path}: malformed TOML ({e})") from None
    for item in overrides:
        key, sep, text = item.partition("=")
        section, dot, name = key.strip().partition(".")
        if not sep or not dot or not name:
            raise ConfigError(f"--set {item}: expected section.key=value")
        if section not in SECTIONS:
            raise ConfigError(f"--set {item}: unknown section [{section}]")
        target = data.setdefault(section, {})
        if not isinstance(target, dict):
            raise ConfigError(f"[{section}]: must be a table")
        target[name.strip()] = parse_value(text.strip())
    return validate(data, base=pathlib.Path(path).parent)


def validate(data, base=None):
    """The resolved configuration of a run file's data: [model] source (a user's model file,
    relative to `base`) is imported first, then the model's family decides the schema."""
    from .models import ModelError, registry
    model = data.get("model", {})
    if not isinstance(model, dict):
        raise ConfigError("[model]: must be a table")
    try:
        if "source" in model:
            registry.load_source(model["source"], base)
        if "name" not in model:
            raise ConfigError("model.name: missing")
        if not isinstance(model["name"], str):
            raise ConfigError("model.name: must be a string")
        family = registry.family(model["name"])
    except ModelError as e:
        raise ConfigError(str(e)) from None
    return {"mfg": _validate_mfg, "discrete": _validate_discrete, "leader_follower": _validate_leader_follower,
            "incentive": _validate_incentive}[family](data)


def _validate_mfg(data):
    cfg = _sections(data, "mfg")
    _check_grid(cfg["grid"])
    _check_time(cfg["time"])
    _check_solver(cfg["solver"])
    _check_output(cfg["output"])
    _check_petsc(cfg)
    return cfg


def _is_number(v):
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def _is_int(v):
    return isinstance(v, int) and not isinstance(v, bool)


def _check_grid(g):
    for key in ("lower", "upper", "n"):
        if not isinstance(g[key], list):
            g[key] = [g[key]]
    dim = len(g["n"])
    if len(g["lower"]) == len(g["upper"]) != dim:
        raise ConfigError(f"grid.n: one cell count per axis, but grid.lower and grid.upper have {len(g['lower'])} "
                          f"axes and grid.n {dim} ({g['n']!r})")
    if not 1 <= dim <= 3:
        raise ConfigError(f"grid.n: one entry per axis, 1 to 3 axes, got {g['n']!r}")
    for key in ("lower", "upper"):
        if len(g[key]) != dim or not all(_is_number(v) for v in g[key]):
            raise ConfigError(f"grid.{key}: needs {dim} finite numbers (one per axis), got {g[key]!r}")
    if not all(_is_int(v) and v >= 2 for v in g["n"]):
        raise ConfigError(f"grid.n: cell counts must be integers >= 2, got {g['n']!r}")
    for d, (a, b) in enumerate(zip(g["lower"], g["upper"])):
        if not b > a:
            raise ConfigError(f"grid.upper: must exceed grid.lower on axis {d}, got {a!r} .. {b!r}")
        if not math.isfinite(b - a):
            raise ConfigError(f"grid.upper: the box is too large to represent on axis {d}")
        h = (b - a) / g["n"][d]
        if not TINY <= h <= HUGE:
            raise ConfigError(f"grid.upper: cells of width {h:.3g} on axis {d} are too {'small' if h < TINY else 'large'}"
                              f" to compute with (1/h² must be finite; width in [{TINY:g}, {HUGE:g}])")
    bnd = g["boundary"] if isinstance(g["boundary"], list) else [g["boundary"]] * dim
    if len(bnd) != dim or not all(b in BOUNDARIES for b in bnd):
        raise ConfigError(f"grid.boundary: one of {', '.join(BOUNDARIES)} (or one per axis), got {g['boundary']!r}")
    g["boundary"] = bnd
    axes = g["axes"] if g["axes"] is not None else ["x", "y", "z"][:dim]
    if (not isinstance(axes, list) or len(axes) != dim or not all(isinstance(a, str) and a.isidentifier() for a in axes)
            or len(set(axes)) != dim):
        raise ConfigError(f"grid.axes: needs {dim} distinct names, got {g['axes']!r}")
    g["axes"] = axes


def _check_time(t):
    extra = sorted(set(t) - {"T", "nt"})
    if extra:
        raise ConfigError(f"time.{extra[0]}: unknown key (known: T, nt)")
    if not _is_number(t["T"]) or t["T"] <= 0:
        raise ConfigError(f"time.T: the horizon must be a positive number, got {t['T']!r}")
    if not _is_int(t["nt"]) or t["nt"] < 1:
        raise ConfigError(f"time.nt: the number of time steps must be a positive integer, got {t['nt']!r}")
    dt = t["T"] / t["nt"]
    if not TINY <= dt <= HUGE:
        raise ConfigError(f"time.T: time steps T/nt = {dt:.3g} are too {'small' if dt < TINY else 'large'} to compute "
                          f"with (in [{TINY:g}, {HUGE:g}])")


def _check_solver(s):
    if s["coupling"] not in COUPLINGS:
        raise ConfigError(f"solver.coupling: one of {', '.join(COUPLINGS)}, got {s['coupling']!r}")
    if s["newton_linear"] not in NEWTON_LINEAR:
        raise ConfigError(f"solver.newton_linear: one of {', '.join(NEWTON_LINEAR)}, got {s['newton_linear']!r}")
    if not _is_number(s["damping"]) or not 0 < s["damping"] <= 1:
        raise ConfigError(f"solver.damping: must be in (0, 1], got {s['damping']!r}")
    for key in ("tolerance", "mass_tolerance", "newton_tolerance"):
        if not _is_number(s[key]) or s[key] <= 0:
            raise ConfigError(f"solver.{key}: must be a positive number, got {s[key]!r}")
    if s["tolerance"] < 1e-14:
        raise ConfigError(f"solver.tolerance: {s['tolerance']!r} is below what double precision can resolve (1e-14)")
    for key in ("max_iterations", "picard_iterations", "newton_max_iterations"):
        if not _is_int(s[key]) or s[key] < 1:
            raise ConfigError(f"solver.{key}: must be a positive integer, got {s[key]!r}")


def _check_output(o):
    if not _is_int(o["checkpoint_every"]) or o["checkpoint_every"] < 0:
        raise ConfigError(f"output.checkpoint_every: iterations between checkpoints, an integer >= 0 "
                          f"(0: none), got {o['checkpoint_every']!r}")
    if not _is_number(o["checkpoint_seconds"]) or o["checkpoint_seconds"] < 0:
        raise ConfigError(f"output.checkpoint_seconds: seconds between checkpoints, >= 0 (0: none), "
                          f"got {o['checkpoint_seconds']!r}")
    if o["checkpoint_file"] is not None and (not isinstance(o["checkpoint_file"], str) or not o["checkpoint_file"]):
        raise ConfigError(f"output.checkpoint_file: must be a file name, got {o['checkpoint_file']!r}")
    if o["file"] is not None and (not isinstance(o["file"], str) or not o["file"]):
        raise ConfigError(f"output.file: must be a file name, got {o['file']!r}")
    if not isinstance(o["plots"], bool):
        raise ConfigError(f"output.plots: must be true or false, got {o['plots']!r}")
    formats = o["plot_formats"]
    if not isinstance(formats, list) or not formats or not all(f in ("png", "pdf", "svg") for f in formats):
        raise ConfigError(f"output.plot_formats: a non-empty list of \"png\", \"pdf\", \"svg\", got {formats!r}")
    if not _is_int(o["plot_dpi"]) or not 10 <= o["plot_dpi"] <= 2400:
        raise ConfigError(f"output.plot_dpi: an integer in [10, 2400], got {o['plot_dpi']!r}")
    if o["max_wall_time"] is not None:
        try:
            parse_duration(o["max_wall_time"])
        except ValueError as e:
            raise ConfigError(f"output.max_wall_time: {e}") from None
    times = o["plot_times"]
    if times is not None and (not isinstance(times, list) or not times or not all(_is_number(v) for v in times)):
        raise ConfigError(f"output.plot_times: must be a non-empty list of times, got {times!r}")
    if times and not all(v >= 0 for v in times):  # beyond T they are plotted at T (plot_times_within)
        raise ConfigError(f"output.plot_times: times must be >= 0 (beyond T they are plotted at T), got {times!r}")


def plot_times_within(times, T):
    """(the plot times clipped to [0, T], a note naming those moved, or None)."""
    if not times:
        return times, None
    beyond = [v for v in times if v > T]
    clipped = sorted({min(v, T) for v in times})
    note = (f"output.plot_times {', '.join(f'{v:g}' for v in beyond)} beyond T = {T:g}: plotted at T" if beyond
            else None)
    return clipped, note


def _sections(data, family):
    """Each section of the family's schema: the run file's keys over the defaults.  Unknown
    sections and keys are refused and required keys demanded ([model] holds the model's
    parameters, checked by the model; [petsc] any PETSc option)."""
    sections = schema.SCHEMA[family]
    unknown = sorted(set(data) - set(sections))
    if unknown:
        raise ConfigError(f"[{unknown[0]}]: unknown section for {schema.TITLES[family].lower()} "
                          f"(known: {', '.join(sections)})")
    cfg = {}
    for section in sections:
        given = data.get(section, {})
        if not isinstance(given, dict):
            raise ConfigError(f"[{section}]: must be a table")
        names = schema.known(family, section)
        extra = sorted(set(given) - set(names)) if section not in schema.OPEN else []
        if extra:
            raise ConfigError(f"{section}.{extra[0]}: unknown key (known: {', '.join(sorted(names))})")
        for key in schema.required(family)[section]:
            if key not in given:
                raise ConfigError(f"{section}.{key}: missing")
        cfg[section] = dict(given) if section in schema.OPEN else {**schema.defaults(family)[section], **given}
    return cfg


def _check_petsc(cfg):
    """[petsc] values scalars."""
    for key, value in cfg["petsc"].items():
        if not isinstance(value, (str, int, float, bool)):
            raise ConfigError(f"petsc.{key}: must be a string, number or boolean")


def _validate_discrete(data):
    """[model], [grid] n (points per edge of the simplex), beliefs, [time] T (steps, or
    "infinite" for the stationary master value), steps (of the forward path when infinite),
    z1 (the initial population state), prior, [solver] leader (optimistic | pessimistic), epsilon, leader_points,
    tolerance, max_iterations, [output] file, plots."""
    cfg = _sections(data, "discrete")
    n, t, s = cfg["grid"]["n"], cfg["time"], cfg["solver"]
    if not _is_int(n) or not 1 <= n <= 100000:
        raise ConfigError(f"grid.n: points per edge of the simplex, an integer >= 1, got {n!r}")
    if not _is_int(cfg["grid"]["beliefs"]) or not 2 <= cfg["grid"]["beliefs"] <= 1001:
        raise ConfigError(f"grid.beliefs: an integer from 2 to 1001, got {cfg['grid']['beliefs']!r}")
    if not _is_number(t["prior"]) or not 0 <= t["prior"] <= 1:
        raise ConfigError(f"time.prior: a probability in [0, 1], got {t['prior']!r}")
    if t["T"] != "infinite" and (not _is_int(t["T"]) or t["T"] < 1):
        raise ConfigError(f"time.T: a number of steps >= 1 or \"infinite\", got {t['T']!r}")
    if not _is_int(t["steps"]) or t["steps"] < 1:
        raise ConfigError(f"time.steps: a positive integer, got {t['steps']!r}")
    z1 = t["z1"]
    if (not isinstance(z1, list) or not all(_is_number(v) and v >= 0 for v in z1)
            or not math.isclose(sum(z1), 1.0, abs_tol=1e-9)):
        raise ConfigError(f"time.z1: the initial population state, shares >= 0 summing to 1, got {z1!r}")
    if s["leader"] not in ("optimistic", "pessimistic"):
        raise ConfigError(f"solver.leader: optimistic or pessimistic, got {s['leader']!r}")
    if not _is_number(s["epsilon"]) or not 0 <= s["epsilon"] <= HUGE:
        raise ConfigError(f"solver.epsilon: a number >= 0, got {s['epsilon']!r}")
    if s["epsilon"] > 0 and s["leader"] != "pessimistic":
        raise ConfigError(f"solver.epsilon: only the pessimistic leader guards against ε-equilibria "
                          f"(solver.leader = \"pessimistic\"), got leader {s['leader']!r}")
    if not _is_int(s["leader_points"]) or s["leader_points"] < 2:
        raise ConfigError(f"solver.leader_points: an integer >= 2, got {s['leader_points']!r}")
    if not _is_int(s["commitment_steps"]) or not 0 <= s["commitment_steps"] <= 4:
        raise ConfigError(f"solver.commitment_steps: an integer from 0 to 4, got {s['commitment_steps']!r}")
    if not _is_number(s["tolerance"]) or not s["tolerance"] >= 1e-14:
        raise ConfigError(f"solver.tolerance: a number >= 1e-14, got {s['tolerance']!r}")
    if not _is_int(s["max_iterations"]) or s["max_iterations"] < 1:
        raise ConfigError(f"solver.max_iterations: a positive integer, got {s['max_iterations']!r}")
    _check_output({**DEFAULTS["output"], **cfg["output"]})
    return cfg


def _validate_leader_follower(data):
    """[model], [grid] x0 = [low, high], z = [low, high] (the followers' x1 axis is z's),
    n (cells per axis: one number, or [n_x0, n_z]), window (the central fraction of each
    axis where errors are measured), [time] T, nt, [solver] coupling,
    tolerance, max_iterations, [output] file, plots, plot_times, [petsc]."""
    cfg = _sections(data, "leader_follower")
    g, s = cfg["grid"], cfg["solver"]
    for key in ("x0", "z"):
        v = g[key]
        if not isinstance(v, list) or len(v) != 2 or not all(_is_number(a) for a in v) or not v[0] < v[1]:
            raise ConfigError(f"grid.{key}: an interval [low, high] with low < high, got {v!r}")
    n = g["n"] if isinstance(g["n"], list) else [g["n"], g["n"]]
    if len(n) != 2 or not all(_is_int(k) and k >= 4 for k in n):
        raise ConfigError(f"grid.n: cells per axis, an integer >= 4 or [n_x0, n_z], got {g['n']!r}")
    g["n"] = n
    for key, cells in zip(("x0", "z"), n):
        h = (g[key][1] - g[key][0]) / cells
        if not TINY <= h <= HUGE:  # inf too: a box too large to represent
            raise ConfigError(f"grid.{key}: cells of width {h:.3g} are too {'small' if h < TINY else 'large'} to "
                              f"compute with (width in [{TINY:g}, {HUGE:g}])")
    most = 1 - 1 / min(n)  # the cell centres span this central fraction of an axis
    if not _is_number(g["window"]) or not 0 < g["window"] <= most:
        raise ConfigError(f"grid.window: the central fraction of each axis, in (0, 1 - 1/n = {most:.6g}] (where "
                          f"the cell centres are), got {g['window']!r}")
    _check_time(cfg["time"])
    if s["coupling"] not in ("lagged", "picard", "newton"):
        raise ConfigError(f"solver.coupling: lagged, picard or newton for a leader-follower game, "
                          f"got {s['coupling']!r}")
    if not _is_number(s["tolerance"]) or not 1e-14 <= s["tolerance"] < 1:
        raise ConfigError(f"solver.tolerance: a number in [1e-14, 1), got {s['tolerance']!r}")
    if not _is_int(s["max_iterations"]) or s["max_iterations"] < 1:
        raise ConfigError(f"solver.max_iterations: a positive integer, got {s['max_iterations']!r}")
    _check_output({**DEFAULTS["output"], **cfg["output"]})
    _check_petsc(cfg)
    return cfg


def _validate_incentive(data):
    """[model], [study] N (follower counts), b, p (the major-minor comparison; refused for a
    game without a major), [check] samples, seed, max_N, [output] file, plots."""
    from .models import registry
    cfg = _sections(data, "incentive")
    s, c = cfg["study"], cfg["check"]
    N = s["N"]
    if not isinstance(N, list) or len(N) < 2 or not all(_is_int(n) and n >= 1 for n in N) or len(set(N)) < len(N):
        raise ConfigError(f"study.N: at least two distinct follower counts, integers >= 1, got {N!r}")
    s["N"] = sorted(N)
    major = registry.lookup(cfg["model"]["name"]).major
    for key in ("b", "p"):
        if not major and key in data.get("study", {}):
            raise ConfigError(f"study.{key}: only a game with a major follower (incentive_major_minor) has the "
                              f"comparison over b and p; model {cfg['model']['name']!r} has none")
        v = s[key]
        if not isinstance(v, list) or not v or not all(_is_number(x) and 0 <= x <= HUGE for x in v):
            raise ConfigError(f"study.{key}: a non-empty list of numbers >= 0, got {v!r}")
    if major and 0 in s["b"] and 0 in s["p"]:
        raise ConfigError(f"study.p: p = 0 with b = 0 leaves the major's strategy undetermined; drop 0 from study.p "
                          f"or from study.b (b = {s['b']!r}, p = {s['p']!r})")
    if not _is_int(c["samples"]) or not 10 <= c["samples"] <= 1000000:
        raise ConfigError(f"check.samples: an integer in [10, 1000000], got {c['samples']!r}")
    if not _is_int(c["seed"]) or c["seed"] < 0:
        raise ConfigError(f"check.seed: an integer >= 0, got {c['seed']!r}")
    if not _is_int(c["max_N"]) or c["max_N"] < 0:
        raise ConfigError(f"check.max_N: an integer >= 0 (0: no numerical check), got {c['max_N']!r}")
    _check_output({**DEFAULTS["output"], **cfg["output"]})
    return cfg
