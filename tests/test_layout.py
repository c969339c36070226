"""The house: old flat module names still resolve, and imports flow one way between the wings."""
import ast
import importlib
from pathlib import Path

import pytest

import jena_rnn

PACKAGE = Path(jena_rnn.__file__).parent
# a wing may import config, backend (the per-backend policies), atomic (the one file writer) and the wings
# listed for it, nothing else
TOP = {"config", "backend", "atomic"}
ALLOWED = {"nn": TOP | {"nn"}, "data": TOP | {"data"}, "runtime": TOP | {"runtime"},
           "forecast": TOP | {"nn", "data", "runtime", "forecast", "imdb"},
           "imdb": TOP | {"nn", "data", "runtime", "imdb"},
           "sweep": TOP | {"nn", "data", "runtime", "forecast", "sweep"}, "flax": TOP | {"nn", "flax"}}
# the top-level modules every wing may use import nothing of jena_rnn but config
TOP_ALLOWED = {"config": set(), "backend": {"config"}, "atomic": set()}


@pytest.mark.parametrize("old", sorted(jena_rnn.MOVED))
def test_old_flat_names_give_the_module_at_its_new_home(old):
    exec_ns = {}
    exec(f"from jena_rnn import {old} as module", exec_ns)  # the statement users wrote before the move
    assert exec_ns["module"] is importlib.import_module(jena_rnn.MOVED[old])


def _imported_wings(path: Path) -> set[str]:
    wings = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] == "jena_rnn":
            parts = node.module.split(".")
            names = [parts[1]] if len(parts) > 1 else [a.name for a in node.names]
            wings.update(names)
        elif isinstance(node, ast.Import):
            wings.update(a.name.split(".")[1] for a in node.names if a.name.startswith("jena_rnn."))
    return wings


@pytest.mark.parametrize("wing", sorted(ALLOWED))
def test_imports_flow_one_way(wing):
    for path in sorted((PACKAGE / wing).glob("*.py")):
        bad = _imported_wings(path) - ALLOWED[wing]
        assert not bad, f"{path.relative_to(PACKAGE)} imports {sorted(bad)}"


def _imported_modules(path: Path) -> set[str]:
    """Every ``jena_rnn...`` module a file imports (``from jena_rnn.data import text`` -> jena_rnn.data.text)."""
    mods = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("jena_rnn"):
            mods.add(node.module)
            mods.update(f"{node.module}.{a.name}" for a in node.names
                        if (PACKAGE.parent / node.module.replace(".", "/") / f"{a.name}.py").exists())
        elif isinstance(node, ast.Import):
            mods.update(a.name for a in node.names if a.name.startswith("jena_rnn"))
    return mods


# inside data/: the formula and the file format import nothing of jena_rnn (every caller takes them from
# one place), and reading a file never imports the synthetic generator (both take the format from table)
DATA_RULES = {"windows": "jena_rnn", "table": "jena_rnn", "tokens": "jena_rnn",
              "files": "jena_rnn.data.synthetic", "checks": "jena_rnn.data.synthetic",
              "download": "jena_rnn.data.synthetic", "dataset": "jena_rnn.data.text"}


@pytest.mark.parametrize("module", sorted(DATA_RULES))
def test_data_modules_import_only_downwards(module):
    bad = {m for m in _imported_modules(PACKAGE / "data" / f"{module}.py") if m.startswith(DATA_RULES[module])}
    assert not bad, f"data/{module}.py imports {sorted(bad)}"


@pytest.mark.parametrize("module", sorted(TOP_ALLOWED))
def test_top_level_modules_import_only_config(module):
    bad = _imported_wings(PACKAGE / f"{module}.py") - TOP_ALLOWED[module]
    assert not bad, f"{module}.py imports {sorted(bad)}"


def test_only_backend_asks_jax_for_the_backend():
    # every per-backend choice lives in jena_rnn/backend.py; everyone else calls backend.name()
    callers = sorted(str(p.relative_to(PACKAGE)) for p in PACKAGE.rglob("*.py") if "default_backend(" in p.read_text())
    assert callers == ["backend.py"], callers


def _reads_flags(path: Path) -> bool:
    """Whether a module imports argparse or reads ``sys.argv``."""
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import) and any(a.name.split(".")[0] == "argparse" for a in node.names):
            return True
        if isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] == "argparse":
            return True
        if isinstance(node, ast.Attribute) and node.attr == "argv" and getattr(node.value, "id", None) == "sys":
            return True
        if isinstance(node, ast.ImportFrom) and node.module == "sys" and any(a.name == "argv" for a in node.names):
            return True
    return False


def test_only_the_cli_parses_flags():
    modules = sorted(PACKAGE.rglob("*.py"))
    assert PACKAGE / "cli" / "parsers.py" in modules and _reads_flags(PACKAGE / "cli" / "parsers.py")
    outside = [p.relative_to(PACKAGE).as_posix() for p in modules
               if p.relative_to(PACKAGE).parts[0] != "cli" and _reads_flags(p)]
    assert not outside, f"only jena_rnn/cli may import argparse or read sys.argv: {outside}"
