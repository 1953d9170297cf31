"""The shape of the package: imports point one way (no circle, no upward import), and the codec modules are the
ones a user gets whichever way they spell the import."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

# Lowest first. A module may import its own layer or a lower one, never a higher one. The CLI and the recipes are
# the top: nothing in the package imports them. Training may import WAV (SWIRL with WAV-acquired labels), never the
# reverse; the SFT both warm-start with sits below both.
LAYERS = (
    ("ground", ("swirl", "swirl.errors", "swirl.paths", "swirl.distributed", "swirl.progress", "swirl.tracking")),
    ("envs", ("swirl.envs",)),
    ("data, models, sampling, metrics", ("swirl.data", "swirl.builders", "swirl.config_fields", "swirl.models",
                                         "swirl.sampling", "swirl.evaluation.metrics", "swirl.evaluation.tables",
                                         "swirl.evaluation.plots", "swirl.hub")),
    ("sft, evaluation", ("swirl.sft", "swirl.evaluation")),
    ("wav", ("swirl.wav",)),
    ("training", ("swirl.training",)),
    ("study", ("swirl.study",)),
    ("command line", ("swirl.cli", "swirl.recipes")),
)


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def package_modules() -> dict[str, Path]:
    return {module_name(path): path for path in (ROOT / "swirl").rglob("*.py")}


def import_graph() -> dict[str, set[str]]:
    """Module -> the package modules it imports, at the top or inside a function (both run sooner or later)."""
    modules = package_modules()

    def resolve(name: str) -> str | None:
        while name and name not in modules:
            name = name.rpartition(".")[0]
        return name or None

    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        targets = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                targets |= {resolve(alias.name) for alias in node.names}
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                targets |= {resolve(f"{node.module}.{alias.name}") or resolve(node.module) for alias in node.names}
        graph[name] = {target for target in targets if target and target != name}
    return graph


def layer_of(module: str) -> int:
    """The layer whose longest prefix matches ``module``."""
    best, best_length = None, -1
    for index, (_, prefixes) in enumerate(LAYERS):
        for prefix in prefixes:
            matches = module == prefix or module.startswith(prefix + ".")
            if matches and len(prefix) > best_length:
                best, best_length = index, len(prefix)
    assert best is not None, f"{module} is in no layer: add it to LAYERS"
    return best


def import_circles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    circles: list[list[str]] = []

    def visit(module: str) -> None:
        index[module] = low[module] = len(index)
        stack.append(module)
        on_stack.add(module)
        for target in graph.get(module, ()):
            if target not in index:
                visit(target)
                low[module] = min(low[module], low[target])
            elif target in on_stack:
                low[module] = min(low[module], index[target])
        if low[module] == index[module]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == module:
                    break
            if len(component) > 1:
                circles.append(sorted(component))

    for module in sorted(graph):
        if module not in index:
            visit(module)
    return circles


def test_the_checks_catch_a_circle_and_an_upward_import():
    assert import_circles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert import_circles({"a": {"b"}, "b": set()}) == []
    assert layer_of("swirl.training.loop") > layer_of("swirl.wav.acquisition") > layer_of("swirl.sft")
    assert layer_of("swirl.evaluation.tables") < layer_of("swirl.evaluation.world_model")


def test_no_import_circle():
    assert import_circles(import_graph()) == []


def test_imports_point_down():
    upward = [f"{module} ({LAYERS[layer_of(module)][0]}) imports {target} ({LAYERS[layer_of(target)][0]})"
              for module, targets in sorted(import_graph().items()) for target in sorted(targets)
              if layer_of(target) > layer_of(module)]
    assert upward == []


def test_nothing_imports_the_command_line():
    importers = [module for module, targets in import_graph().items()
                 if targets & {"swirl.cli", "swirl.recipes"} and module not in ("swirl.cli", "swirl.recipes")]
    assert importers == []


@pytest.mark.parametrize("spelling", [
    "from swirl.envs import minigrid as codec",
    "import swirl.envs.minigrid as codec",
    "import swirl.envs; from swirl.envs import minigrid as codec",
    "import minigrid, swirl.envs; from swirl.envs import minigrid as codec",
])
def test_both_minigrid_spellings_give_the_codec(spelling):
    result = subprocess.run([sys.executable, "-c", f"{spelling}; print(codec.__name__, hasattr(codec, 'state_to_text'))"],
                            capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["swirl.envs.minigrid", "True"]


def test_the_pip_minigrid_package_is_still_registered():
    """swirl.envs no longer binds the name ``minigrid``, but still imports the package, which registers its envs."""
    import gymnasium

    import swirl.envs  # noqa: F401

    assert "MiniGrid-Empty-5x5-v0" in gymnasium.registry
    assert "swirl/WAV-KeyDelivery-v0" in gymnasium.registry


def test_the_command_line_choices_match_the_library_without_importing_it():
    """`swirl --help` stays fast: the CLI writes its choices out instead of importing the environments for them."""
    from swirl import cli
    from swirl.envs.minigrid_text import STATE_TEXTS
    from swirl.envs.state_format import STATE_FORMATS
    from swirl.models.state_view import STATE_MODALITIES

    assert (cli.STATE_FORMATS, cli.STATE_MODALITIES, cli.STATE_TEXTS) == (STATE_FORMATS, STATE_MODALITIES, STATE_TEXTS)
    result = subprocess.run([sys.executable, "-c", "import sys, swirl.cli; swirl.cli.build_parser(); "
                             "print(sorted(m for m in sys.modules if m.split('.')[0] in ('minigrid', 'torch')))"],
                            capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"


def test_the_top_level_scripts_are_the_cli(tmp_path):
    """eval/ and data_builders/ keep their `python -m` spellings; each is a sub-command of `swirl`."""
    for module, expected in (("eval.world_model", "usage: swirl eval"), ("eval.report", "usage: swirl report"),
                             ("eval.acquisition", "usage: swirl wav-report"),
                             ("data_builders.minigrid", "usage: swirl data minigrid"),
                             ("data_builders.maniskill", "usage: swirl data maniskill")):
        result = subprocess.run([sys.executable, "-m", module, "--help"], capture_output=True, text=True, cwd=ROOT,
                                timeout=120)
        assert result.returncode == 0 and result.stdout.startswith(expected), (module, result.stderr)
    bad = subprocess.run([sys.executable, "-m", "swirl.cli", "report", "--run", "nodir", "--out", str(tmp_path)],
                         capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert bad.returncode == 2 and "swirl: error: --run 'nodir': expected NAME=DIR" in bad.stderr


def domain_name_branches(tree: ast.AST, names: set[str]) -> list[int]:
    """Lines that compare with a domain's name (``==``, ``!=``, ``in``) or key a dict by one: knowledge of a
    family that belongs on its registry record."""
    def is_name(node: ast.AST) -> bool:
        return isinstance(node, ast.Constant) and node.value in names

    lines = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Compare):
            operands = [node.left, *node.comparators]
            listed = [element for operand in operands if isinstance(operand, (ast.Tuple, ast.List, ast.Set))
                      for element in operand.elts]
            if any(is_name(operand) for operand in operands + listed):
                lines.append(node.lineno)
        elif isinstance(node, ast.Dict) and any(key is not None and is_name(key) for key in node.keys):
            lines.append(node.lineno)
    return sorted(lines)


def test_no_code_outside_the_registry_branches_on_a_domain_name():
    """Adding an environment family is one module and one registry entry (swirl.envs.domain): no other code may
    ask which family it is looking at."""
    from swirl.envs.domain import DOMAINS

    registry = ROOT / "swirl" / "envs" / "domain.py"
    files = [path for folder in ("swirl", "recipes", "benchmarks") for path in (ROOT / folder).rglob("*.py")]
    branches = {str(path.relative_to(ROOT)): lines for path in files if path != registry
                if (lines := domain_name_branches(ast.parse(path.read_text()), set(DOMAINS)))}
    assert branches == {}


def test_the_domain_branch_check_sees_each_spelling():
    source = ('a == "minigrid"\nb = "x" if d != "maniskill" else 1\nc = d in ("minigrid", "y")\n'
              'e = {"maniskill": 1}\nf = state_view("text", "minigrid")\n')
    assert domain_name_branches(ast.parse(source), {"minigrid", "maniskill"}) == [1, 2, 3, 4]


def test_every_domain_names_a_builder_that_exists():
    """``Domain.builder`` is imported only when a dataset is built: a typo must fail here, not mid-run."""
    import importlib

    from swirl.envs.domain import DOMAINS

    for domain in DOMAINS.values():
        module, function = domain.builder.split(":")
        assert callable(getattr(importlib.import_module(module), function)), domain.name


def unexplained_inner_imports(source: str) -> list[str]:
    """Functions whose imports (lazy on purpose) carry no comment saying why: on an import line, or on the line
    above the function's first import (a comment line, or a ``try:  # lazy: ...``)."""
    lines = source.splitlines()
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            imports = [n for n in ast.walk(node) if isinstance(n, (ast.Import, ast.ImportFrom))]
            if not imports:
                continue
            first = min(n.lineno for n in imports)
            if not any("#" in lines[n.lineno - 1] for n in imports) and "#" not in lines[first - 2]:
                found.append(f"{node.name} (line {first})")
    return found


def test_every_import_inside_a_function_says_why():
    assert unexplained_inner_imports("def f():\n    import json\n") == ["f (line 2)"]
    assert unexplained_inner_imports("def f():\n    # lazy: heavy\n    import torch\n") == []
    found = {str(path.relative_to(ROOT)): unexplained_inner_imports(path.read_text())
             for path in sorted((ROOT / "swirl").rglob("*.py"))}
    assert not {path: names for path, names in found.items() if names}


def family_references(source: str, family: str) -> bool:
    """Whether code (an import, or a string that is not a docstring, such as a builder's "module:function") names
    ``family``; prose mentioning it does not count."""
    tree = ast.parse(source)
    docstrings = {id(node.value) for node in ast.walk(tree) if isinstance(node, ast.Expr)}
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            names = [node.module or ""] + [alias.name for alias in node.names]
        elif isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in docstrings:
            names = [node.value]
        else:
            continue
        if any(family in name.lower() for name in names):
            return True
    return False


def test_the_worked_example_family_touches_two_files_outside_its_own_modules():
    """#30's goal, measured on FrozenLake (docs/layout.md): a family is its codec+env module and its builder; outside
    them only the registry entry and its run config may name it."""
    assert family_references('"""About frozenlake."""\nx = 1\n', "frozenlake") is False
    assert family_references('b = "swirl.builders.frozenlake_dataset:build"\n', "frozenlake") is True
    assert family_references("from swirl.envs import frozenlake\n", "frozenlake") is True
    own = {ROOT / "swirl" / "envs" / "frozenlake.py", ROOT / "swirl" / "builders" / "frozenlake_dataset.py"}
    outside = sorted(str(path.relative_to(ROOT)) for path in (ROOT / "swirl").rglob("*.py")
                     if path not in own and family_references(path.read_text(), "frozenlake"))
    assert outside == ["swirl/envs/domain.py", "swirl/training/swirl_config.py"]
