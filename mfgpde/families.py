"""The game families, and the one place that picks a pipeline for a configuration.

Each family says whether it takes [petsc] options, and names the function that builds, solves and writes a study: `run(cfg, out, verbose, restart)`
returning (solution, written path), where `solution.converged` and `solution.status` say
how the solve ended.
"""
import importlib
from dataclasses import dataclass

from .models import registry


@dataclass(frozen=True)
class Family:
    name: str
    title: str
    petsc: bool
    runner: str  # "module:function", relative to the package

    def run(self, cfg, out, verbose=True, restart=None):
        if self.petsc:
            from .runner import apply_petsc_options
            apply_petsc_options(cfg["petsc"])
        module, function = self.runner.split(":")
        return getattr(importlib.import_module(module, __package__), function)(cfg, out, verbose=verbose,
                                                                                restart=restart)


FAMILIES = {f.name: f for f in (
    Family("mfg", registry.FAMILY_TITLES["mfg"], True, ".runner:run"),
    Family("leader_follower", registry.FAMILY_TITLES["leader_follower"], True,
           ".leader_follower_runner:run_leader_follower"),
    Family("discrete", registry.FAMILY_TITLES["discrete"], False, ".master_runner:run_master"),
)}


def of(cfg):
    """The family of a resolved configuration's model."""
    return FAMILIES[registry.family(cfg["model"]["name"])]
