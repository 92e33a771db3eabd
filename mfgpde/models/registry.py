"""One registry of every model by name, with its game family, and `[model] source`: a
user's own model file (or module) imported before the run file is validated.

A model class declares its family through its base (`MFGModel`, `LeaderFollowerModel`,
`DiscreteGameModel`, `IncentiveModel`), each naming the methods a concrete model must define.
"""
import importlib
import importlib.util
import inspect
import pathlib
import re
import sys
import traceback

from .base import ModelError

FAMILY_TITLES = {"mfg": "mean field games on a box", "leader_follower": "continuous-time leader-follower games",
                 "discrete": "discrete-time master equation games",
                 "incentive": "incentive design with many followers and a major follower"}
_MODELS = {}
_USER_FILES = set()  # resolved paths of the user files loaded through [model] source


def register(cls):
    """Class decorator: `cls.name` becomes a model of `cls.family`.  Refuses a name taken by
    another file's model and a class that leaves a required method undefined."""
    where = _where(cls)
    if not isinstance(getattr(cls, "name", None), str) or not cls.name:
        raise ModelError(f"{where}: class {cls.__name__} needs a `name` (a string) to be registered")
    family = getattr(cls, "family", None)
    if family not in FAMILY_TITLES:
        raise ModelError(f"{where}: class {cls.__name__} derives from none of MFGModel, LeaderFollowerModel, "
                         "DiscreteGameModel, IncentiveModel")
    base = next(b for b in cls.__mro__[::-1] if getattr(b, "family", None) == family)
    missing = [m for m in base.required if getattr(cls, m, None) is getattr(base, m)]
    if missing:
        raise ModelError(f"{where}: model '{cls.name}' (class {cls.__name__}) does not define "
                         f"{', '.join(missing)}, required of {base.__name__}")
    old = _MODELS.get(cls.name)
    if old is not None and _file(old) != _file(cls):
        raise ModelError(f"{where}: model name '{cls.name}' is taken by {_where(old)}")
    _MODELS[cls.name] = cls
    return cls


def _file(cls):
    try:
        return str(pathlib.Path(inspect.getsourcefile(cls)).resolve())
    except (TypeError, OSError):
        return cls.__module__


def _where(cls):
    """file:line of a class definition."""
    try:
        return f"{inspect.getsourcefile(cls)}:{inspect.getsourcelines(cls)[1]}"
    except (TypeError, OSError):
        return cls.__module__


def models(family=None):
    """Registered model names (of one family), sorted."""
    return sorted(n for n, c in _MODELS.items() if family in (None, c.family))


def lookup(name):
    """The class of a registered model; ModelError listing every model by family otherwise."""
    if name not in _MODELS:
        listing = "; ".join(f"{f}: {', '.join(models(f))}" for f in FAMILY_TITLES if models(f))
        raise ModelError(f"model.name: unknown model {name!r} (known: {listing}; a model of your own: "
                         "[model] source = \"file.py\")")
    return _MODELS[name]


def family(name):
    return lookup(name).family


def defaults(name):
    """The default parameters of a registered model ({} for an unknown name)."""
    return dict(_MODELS[name].parameters) if name in _MODELS else {}


def parameters(model_table):
    """The model's parameters from a run file's [model] table (without name and source)."""
    return {k: v for k, v in model_table.items() if k not in ("name", "source")}


def create(name, dim=None, **params):
    """An instance of a registered model; `dim` (the axes of the box) for an MFG model only."""
    cls = lookup(name)
    return cls(dim, **params) if cls.family == "mfg" else cls(**params)


def from_config(cfg):
    """The model of a resolved configuration (its box's axes for an MFG model)."""
    name = cfg["model"]["name"]
    dim = len(cfg["grid"]["n"]) if family(name) == "mfg" else None
    return create(name, dim, **parameters(cfg["model"]))


def load_source(source, base=None):
    """Import a user's model file (a path, relative to `base`, the run file's folder) or
    module (dotted, importable from the Python path), which registers its models with
    `@register`.  Every failure is a ModelError of one line naming the file and line."""
    if not isinstance(source, str) or not source:
        raise ModelError(f"model.source: a file name or a dotted module name, got {source!r}")
    if source.endswith(".py") or "/" in source or "\\" in source:
        path = pathlib.Path(source)
        if not path.is_absolute() and base is not None:
            path = pathlib.Path(base) / path
        if not path.is_file():
            raise ModelError(f"model.source: {path}: no such file")
        path = path.resolve()
        name = "mfgpde_user_" + re.sub(r"\W", "_", str(path))
        spec = importlib.util.spec_from_file_location(name, path)
        module = importlib.util.module_from_spec(spec)
        _USER_FILES.add(str(path))
        sys.modules[name] = module  # before it runs: inspect finds its classes' file through it
        try:
            _guarded(lambda: spec.loader.exec_module(module), str(path))
        except ModelError:
            del sys.modules[name]
            raise
        return module
    try:
        spec = importlib.util.find_spec(source)
    except ModuleNotFoundError:
        spec = None
    if spec is None or spec.origin is None:
        raise ModelError(f"model.source: no module named {source!r} on the Python path")
    _USER_FILES.add(str(pathlib.Path(spec.origin).resolve()))
    return _guarded(lambda: importlib.import_module(source), spec.origin)


def _guarded(load, origin):
    try:
        return load()
    except SyntaxError as e:
        raise ModelError(f"{e.filename or origin}:{e.lineno}: syntax error: {e.msg}") from None
    except ModelError:
        raise
    except Exception as e:  # noqa: BLE001  anything the user's file raises while it is imported
        raise ModelError(user_error(e) or f"{origin}: {type(e).__name__}: {e} (while importing it)") from None


def user_error(error):
    """'file:line: Type: message' when the innermost frame of a user model file in the
    traceback of `error` is known (a model from [model] source failed), else None."""
    frames = [f for f in traceback.extract_tb(error.__traceback__)
              if str(pathlib.Path(f.filename).resolve()) in _USER_FILES]
    if not frames:
        return None
    f = frames[-1]
    return f"{f.filename}:{f.lineno}: {type(error).__name__}: {error}".rstrip(": ")
