"""The game families, and the one place that picks a pipeline for a configuration.

Each family says whether it takes [petsc] options, and names its pipeline (a module of
mfgpde/pipelines whose `run(cfg, out, verbose, restart)` builds, solves and writes a study);
a model class may name another (`pipeline`, as the leaders with a private type do).
"""
import importlib
from dataclasses import dataclass

from .models import registry


@dataclass(frozen=True)
class Family:
    name: str
    title: str
    petsc: bool
    pipeline: str  # a module of mfgpde/pipelines

    def run(self, cfg, out, verbose=True, restart=None):
        """(solution, written path) of the study of `cfg`, with this family's pipeline."""
        if self.petsc:
            from .pipelines.common import apply_petsc_options
            apply_petsc_options(cfg["petsc"])
        name = getattr(registry.lookup(cfg["model"]["name"]), "pipeline", self.pipeline)
        pipeline = importlib.import_module(f".pipelines.{name}", __package__)
        return pipeline.run(cfg, out, verbose=verbose, restart=restart)


FAMILIES = {f.name: f for f in (
    Family("mfg", registry.FAMILY_TITLES["mfg"], True, "mfg"),
    Family("leader_follower", registry.FAMILY_TITLES["leader_follower"], True, "leader_follower"),
    Family("discrete", registry.FAMILY_TITLES["discrete"], False, "discrete"),
    Family("incentive", registry.FAMILY_TITLES["incentive"], False, "incentive"),
)}


def of(cfg):
    """The family of a resolved configuration's model."""
    return FAMILIES[registry.family(cfg["model"]["name"])]
