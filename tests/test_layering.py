"""The layers, as a test: grids know no equations; discretisation knows grids, not models;
solvers know model interfaces, never a concrete model; the pipelines share glue only
through pipelines/common.py; the configuration, the registry
and the package itself import no PETSc and start no MPI."""
import ast
import subprocess
import sys

import pytest

from conftest import ROOT, _env

PACKAGE = ROOT / "mfgpde"
# the modules of mfgpde.models solvers may use
INTERFACES = {"base", "discrete", "incentive", "leader_follower", "registry"}
CONCRETE = {p.stem for p in (PACKAGE / "models").glob("*.py")} - INTERFACES - {"__init__", "contract"}
INTERFACE_NAMES = {"Density", "MFGModel", "ModelError", "LeaderFollowerModel", "DiscreteGameModel"}


def _imports(path):
    """(absolute module, imported names) of every import in a package module."""
    parts = path.relative_to(ROOT).with_suffix("").parts
    package = parts[:-1] if parts[-1] != "__init__" else parts[:-1]
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield alias.name, set()
        elif isinstance(node, ast.ImportFrom):
            base = package[:len(package) - node.level + 1] if node.level else ()
            module = ".".join([*base, *(node.module.split(".") if node.module else [])])
            yield module, {a.name for a in node.names}


def _modules(folder):
    return sorted((PACKAGE / folder).glob("*.py"))


def test_the_concrete_models_are_known():
    assert {"lq_mfg", "congestion", "robust_designer", "infection", "technology"} <= CONCRETE


@pytest.mark.parametrize("path", _modules("solvers"), ids=lambda p: p.stem)
def test_solvers_use_model_interfaces_only(path):
    for module, names in _imports(path):
        if module == "mfgpde.models":
            assert names <= INTERFACE_NAMES | INTERFACES, (path.name, names)
            assert not names & CONCRETE, (path.name, names)
        elif module.startswith("mfgpde.models."):
            assert module.split(".")[2] in INTERFACES, (path.name, module)
        assert not module.startswith("mfgpde.closedforms"), (path.name, module)


@pytest.mark.parametrize("folder, forbidden", [("grids", ("mfgpde.models", "mfgpde.solvers", "mfgpde.discretisation",
                                                          "mfgpde.closedforms")),
                                               ("discretisation", ("mfgpde.models", "mfgpde.solvers",
                                                                   "mfgpde.closedforms"))])
def test_lower_layers_import_nothing_above_them(folder, forbidden):
    for path in _modules(folder):
        for module, _ in _imports(path):
            assert not module.startswith(forbidden), (path.name, module)


@pytest.mark.parametrize("path", _modules("pipelines"), ids=lambda p: p.stem)
def test_pipelines_know_no_concrete_model_and_share_only_common(path):
    """One layer: a family's pipeline reaches models through the registry and shares glue
    through pipelines/common.py, never through another family's pipeline."""
    for module, names in _imports(path):
        assert not (module.startswith("mfgpde.models.") and module.split(".")[2] in CONCRETE), (path.name, module)
        assert not (module == "mfgpde.models" and names & CONCRETE), (path.name, names)
        if module.startswith("mfgpde.pipelines"):
            assert module == "mfgpde.pipelines.common" or module == "mfgpde.pipelines" and names <= {"common"}, \
                (path.name, module, names)


def test_the_configuration_and_the_package_start_no_petsc_and_no_mpi():
    code = ("import sys, mfgpde, mfgpde.config as c, mfgpde.families\n"
            "c.load(sys.argv[1]); c.load(sys.argv[2]); c.load(sys.argv[3])\n"
            "print(sorted(m for m in sys.modules if m.startswith(('petsc4py', 'mpi4py'))))")
    runs = [ROOT / "runs" / f for f in ("lq_mfg_2d.toml", "stackelberg_lq.toml", "infection_vaccination.toml")]
    proc = subprocess.run([sys.executable, "-c", code, *map(str, runs)], capture_output=True, text=True, env=_env(),
                          timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "[]", proc.stdout
