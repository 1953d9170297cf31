"""The README and docs/ stay true: size, code blocks that parse, module paths and files that exist, links that
resolve, and the blocks marked to run actually run.

A fenced block right after a line ``<!-- quick -->`` runs here (cheap commands, a few seconds each); one after
``<!-- slow -->`` runs under ``make test-slow``. Both run in a scratch folder that links the repository's
``recipes/``, ``benchmarks/``, ... so commands written relative to the repository root read its files but write
(``runs/``, ``data/``) into the scratch folder.
"""

from __future__ import annotations

import ast
import os
import re
import subprocess
import sys
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
PAGES = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]
README_MAX_BYTES = 10 * 1024
SHELL_LANGS = {"bash", "sh", "shell"}
RUN_MARKERS = {"<!-- quick -->": "quick", "<!-- slow -->": "slow"}
# Top-level folders whose paths the docs name as files of this repository.
REPO_DIRS = ("swirl", "recipes", "benchmarks", "scripts", "eval", "tests", "docs")
FILE_SUFFIXES = (".py", ".yaml", ".yml", ".md", ".json", ".jsonl", ".sh", ".png", ".txt", ".toml")
# What a run's scratch folder links from the repository (never runs/, data/, outputs/: runs write there).
LINKED = ("swirl", "recipes", "benchmarks", "scripts", "eval", "tests", "docs", "Makefile", "pyproject.toml")


@dataclass(frozen=True)
class Block:
    page: Path
    line: int  # 1-based line of the opening fence
    lang: str
    text: str
    run: str | None  # "quick", "slow" or None

    @property
    def id(self) -> str:
        return f"{self.page.relative_to(REPO)}:{self.line}"


def parse_page(page: Path) -> tuple[list[Block], str]:
    """The page's fenced blocks, and its prose with every fenced line blanked (line numbers kept)."""
    lines = page.read_text(encoding="utf-8").splitlines()
    blocks, prose = [], []
    fence = None
    for number, line in enumerate(lines, 1):
        if fence is None:
            match = re.match(r"^\s*(`{3,}|~{3,})\s*([\w+-]*)", line)
            if match:
                fence = (match.group(1), match.group(2).lower(), number, [])
                prose.append("")
            else:
                prose.append(line)
            continue
        prose.append("")
        if line.strip().startswith(fence[0]) and not line.strip().strip(fence[0][0]):
            marker = lines[fence[2] - 2].strip() if fence[2] >= 2 else ""
            blocks.append(Block(page, fence[2], fence[1], "\n".join(fence[3]) + "\n", RUN_MARKERS.get(marker)))
            fence = None
        else:
            fence[3].append(line)
    assert fence is None, f"{page.relative_to(REPO)}:{fence[2]}: fenced block never closed"
    return blocks, "\n".join(prose)


PARSED = {page: parse_page(page) for page in PAGES}
BLOCKS = [block for blocks, _ in PARSED.values() for block in blocks]


def blocks(*langs: str, run: str | None = None) -> list:
    chosen = [b for b in BLOCKS if b.lang in langs and (run is None or b.run == run)]
    return [pytest.param(b, id=b.id) for b in chosen]


def inline_code(prose: str) -> list[tuple[int, str]]:
    """(line, text) of every `code span` in the prose (spans may wrap a line)."""
    return [(prose.count("\n", 0, m.start()) + 1, m.group(1)) for m in re.finditer(r"`([^`]+)`", prose)]


# ---------------------------------------------------------------------------------------------- size and syntax


def test_readme_is_at_most_10_kb():
    size = (REPO / "README.md").stat().st_size
    assert size <= README_MAX_BYTES, f"README.md is {size} bytes; move reference material to docs/"


def test_every_page_starts_with_a_title_and_docs_link_back_to_the_readme():
    for page in PAGES:
        text = page.read_text(encoding="utf-8")
        assert text.startswith("# "), f"{page.relative_to(REPO)} does not start with a title"
        if page.parent.name == "docs":
            assert "](../README.md)" in text, f"{page.relative_to(REPO)} has no link back to the README"


def test_readme_links_every_docs_page():
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    missing = [p.name for p in PAGES if p.parent.name == "docs" and f"](docs/{p.name})" not in readme]
    assert not missing, f"README.md's docs index misses {missing}"


def test_some_blocks_are_marked_to_run():
    assert [b for b in BLOCKS if b.run == "quick" and b.lang in SHELL_LANGS], "no quick shell block"
    assert [b for b in BLOCKS if b.run == "quick" and b.lang == "python"], "no quick python block"
    assert all(b.lang in SHELL_LANGS | {"python"} for b in BLOCKS if b.run), "a marked block is neither shell nor python"


@pytest.mark.parametrize("block", blocks(*SHELL_LANGS))
def test_shell_block_parses(block, tmp_path):
    script = tmp_path / "block.sh"
    script.write_text(block.text)
    result = subprocess.run(["bash", "-n", str(script)], capture_output=True, text=True)
    assert result.returncode == 0, f"{block.id}: bash -n failed:\n{result.stderr}"


@pytest.mark.parametrize("block", blocks("python"))
def test_python_block_compiles(block):
    compile(block.text, block.id, "exec")


# -------------------------------------------------------------------------------- module paths and repo files


def module_file(dotted: str) -> Path | None:
    """The source file of a module or package of this repository (``swirl.envs.minigrid``), or None."""
    base = REPO.joinpath(*dotted.split("."))
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None


@lru_cache(maxsize=None)
def top_level_names(path: Path) -> frozenset[str] | None:
    """Names a module defines or imports at its top level (None: it has a module ``__getattr__``, anything goes)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    names: set[str] = set()

    def visit(nodes):
        for node in nodes:
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                names.add(node.name)
            elif isinstance(node, (ast.Import, ast.ImportFrom)):
                names.update((a.asname or a.name).split(".")[0] for a in node.names)
            elif isinstance(node, (ast.Assign, ast.AnnAssign, ast.AugAssign)):
                targets = node.targets if isinstance(node, ast.Assign) else [node.target]
                for target in targets:
                    names.update(n.id for n in ast.walk(target) if isinstance(n, ast.Name))
            elif isinstance(node, (ast.If, ast.Try)):
                visit(node.body)
                visit(getattr(node, "orelse", []))
                for handler in getattr(node, "handlers", []):
                    visit(handler.body)
                visit(getattr(node, "finalbody", []))
    visit(tree.body)
    if "*" in names:
        return None  # a star import: anything goes
    if "__getattr__" in names:  # lazy exports: the names ``__all__`` lists (None: no list, anything goes)
        exported = lazy_exports(tree)
        return None if exported is None else frozenset(names | exported)
    return frozenset(names)


def lazy_exports(tree: ast.Module) -> set[str] | None:
    """The strings of a module's ``__all__`` (a ``*NAME`` in it expands the keys or items of a top-level
    literal ``NAME``), or None when it has no literal ``__all__``."""
    literals = {}
    for node in tree.body:
        if isinstance(node, (ast.Assign, ast.AnnAssign)) and isinstance(node.value, (ast.Dict, ast.List, ast.Tuple, ast.Set)):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            for target in targets:
                if isinstance(target, ast.Name):
                    items = node.value.keys if isinstance(node.value, ast.Dict) else node.value.elts
                    literals[target.id] = items
    if "__all__" not in literals:
        return None
    names = set()
    for item in literals["__all__"]:
        if isinstance(item, ast.Constant) and isinstance(item.value, str):
            names.add(item.value)
        elif isinstance(item, ast.Starred) and isinstance(item.value, ast.Name):
            names.update(k.value for k in literals.get(item.value.id, [])
                         if isinstance(k, ast.Constant) and isinstance(k.value, str))
    return names


def dotted_problem(dotted: str) -> str | None:
    """Why ``swirl.a.b.name`` does not resolve: the longest module prefix must exist, and the first attribute
    after it must be defined (or imported) there or be a submodule."""
    parts = dotted.split(".")
    for end in range(len(parts), 0, -1):
        path = module_file(".".join(parts[:end]))
        if path is None:
            continue
        if end == len(parts):
            return None
        attribute = parts[end]
        names = top_level_names(path)
        if names is None or attribute in names:
            return None
        return f"{'.'.join(parts[:end])} ({path.relative_to(REPO)}) defines no {attribute!r}"
    return f"no module {parts[0]!r}"


def references(page: Path) -> list[tuple[int, str, str]]:
    """(line, kind, name) of every module and repository file the page names, in code spans and code blocks."""
    blocks_, prose = PARSED[page]
    texts = inline_code(prose) + [(b.line, b.text) for b in blocks_]
    found = []
    for line, text in texts:
        for match in re.finditer(r"(?<![\w./-])swirl(?:\.[A-Za-z_]\w*)+", text):
            found.append((line, "module", match.group(0)))
        for match in re.finditer(r"-m\s+((?:swirl|eval|benchmarks)(?:\.\w+)*)", text):
            found.append((line, "module", match.group(1)))
        pattern = r"(?<![\w./<>-])((?:%s)/[\w./{},*<>-]*)" % "|".join(REPO_DIRS)
        for match in re.finditer(pattern, text):
            found.append((line, "file", match.group(1).rstrip(".,")))
    for line, text in inline_code(prose):  # `from swirl import SwirlConfig, run_swirl` in prose
        if re.match(r"(from|import) swirl\b", text):
            try:
                tree = ast.parse(text)
            except SyntaxError:
                continue
            found += [(line, "module", name) for name in imported_swirl_names(tree)]
    for block in blocks_:
        if block.lang == "python":
            found += [(block.line, "module", name) for name in imported_swirl_names(ast.parse(block.text))]
    return found


def imported_swirl_names(tree: ast.AST) -> list[str]:
    """``swirl.a.b.name`` for every ``from swirl.a.b import name`` (and ``import swirl.a.b``) in the tree."""
    names = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] == "swirl":
            names += [f"{node.module}.{a.name}" for a in node.names]
        elif isinstance(node, ast.Import):
            names += [a.name for a in node.names if a.name.split(".")[0] == "swirl"]
    return names


def expand_braces(path: str) -> list[str]:
    match = re.search(r"\{([^{}]*)\}", path)
    if not match:
        return [path]
    return [p for option in match.group(1).split(",")
            for p in expand_braces(path[:match.start()] + option + path[match.end():])]


def file_problem(path: str) -> str | None:
    if any(c in path for c in "<>*"):
        return None  # a pattern (`recipes/<env>/<preset>.yaml`), not a file
    for each in expand_braces(path):
        if not (each.endswith("/") or each.endswith(FILE_SUFFIXES)):
            continue  # e.g. an env id such as swirl/WAV-KeyDelivery-v0
        if not (REPO / each).exists():
            return f"{each} does not exist"
    return None


@pytest.mark.parametrize("page", [pytest.param(p, id=str(p.relative_to(REPO))) for p in PAGES])
def test_named_modules_and_files_exist(page):
    problems = []
    for line, kind, name in references(page):
        problem = dotted_problem(name) if kind == "module" else file_problem(name)
        if problem:
            problems.append(f"{page.relative_to(REPO)}:{line}: `{name}`: {problem}")
    assert not problems, "stale names in the docs:\n" + "\n".join(problems)


def test_the_reference_check_catches_stale_names():
    assert dotted_problem("swirl.envs.minigrid.state_to_text") is None
    assert dotted_problem("swirl.envs.minigrid") is None
    assert dotted_problem("swirl.envs.minigrid.no_such_function") is not None
    assert dotted_problem("swirl.no_such_module.thing") is not None
    assert dotted_problem("swirl.no_such_export") is not None  # swirl/__init__.py exports lazily, from a list
    assert file_problem("swirl/envs/minigrid.py") is None
    assert file_problem("recipes/minigrid/{cpu-tiny,cpu-smollm2}.yaml") is None
    assert file_problem("recipes/minigrid/{cpu-tiny,no-such-preset}.yaml") is not None
    assert file_problem("swirl/WAV-KeyDelivery-v0") is None


def cli_subcommands() -> set[str]:
    """Every sub-command name ``swirl/cli.py`` registers (``add_parser("eval", ...)``), read from its source."""
    source = (REPO / "swirl" / "cli.py").read_text(encoding="utf-8")
    return set(re.findall(r"add_parser\(\s*[\"']([\w-]+)[\"']", source))


@pytest.mark.parametrize("page", [pytest.param(p, id=str(p.relative_to(REPO))) for p in PAGES])
def test_named_swirl_commands_exist(page):
    """`swirl eval ...`, `swirl data minigrid ...`: the command and, for `data` and `models`, its action."""
    blocks_, prose = PARSED[page]
    texts = [(line, text) for line, text in inline_code(prose) if text.startswith("swirl ")]
    texts += [(b.line, b.text) for b in blocks_ if b.lang in SHELL_LANGS]
    known, problems = cli_subcommands(), []
    for line, text in texts:
        for match in re.finditer(r"(?:^|[\s;|&(])swirl((?:[ \t]+[a-z][\w-]*){1,2})", text, flags=re.MULTILINE):
            words = match.group(1).split()
            wanted = words[:2] if words[0] in ("data", "models") else words[:1]
            missing = [w for w in wanted if w not in known]
            if missing:
                problems.append(f"{page.relative_to(REPO)}:{line}: `swirl {' '.join(words)}`: no sub-command {missing}")
    assert not problems, "unknown swirl commands:\n" + "\n".join(problems)


# ------------------------------------------------------------------------------------------------------- links


def slug(heading: str) -> str:
    """GitHub's anchor for a heading."""
    text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", heading.strip().lower())
    return re.sub(r"[^\w\- ]", "", text).replace(" ", "-")


@lru_cache(maxsize=None)
def anchors(page: Path) -> frozenset[str]:
    if page in PARSED:
        prose = PARSED[page][1]
    else:
        prose = parse_page(page)[1]
    seen: dict[str, int] = {}
    result = set()
    for line in prose.splitlines():
        match = re.match(r"^#{1,6}\s+(.*?)\s*#*\s*$", line)
        if match:
            base = slug(match.group(1))
            count = seen.get(base, 0)
            seen[base] = count + 1
            result.add(base if count == 0 else f"{base}-{count}")
    return frozenset(result)


@pytest.mark.parametrize("page", [pytest.param(p, id=str(p.relative_to(REPO))) for p in PAGES])
def test_relative_links_resolve(page):
    prose = PARSED[page][1]
    problems = []
    for match in re.finditer(r"(?<!!)\[[^\]]*\]\(([^)\s]+)\)", prose):
        target = match.group(1)
        if re.match(r"^[a-z][\w+.-]*:", target):
            continue  # https:, mailto:
        line = prose.count("\n", 0, match.start()) + 1
        path, _, anchor = target.partition("#")
        file = (page.parent / path).resolve() if path else page
        if not file.exists():
            problems.append(f"{page.relative_to(REPO)}:{line}: {target}: no such file")
        elif anchor and file.suffix == ".md" and anchor not in anchors(file):
            problems.append(f"{page.relative_to(REPO)}:{line}: {target}: no heading with that anchor")
    assert not problems, "broken links:\n" + "\n".join(problems)


# ------------------------------------------------------------------------------------------ blocks that run


def run_block(block: Block, workdir: Path, timeout: float) -> None:
    for name in LINKED:
        if (REPO / name).exists():
            (workdir / name).symlink_to(REPO / name)
    env = dict(os.environ)
    env["PATH"] = str(Path(sys.executable).parent) + os.pathsep + env.get("PATH", "")
    if block.lang == "python":
        script, command = workdir / "block.py", [sys.executable, "block.py"]
    else:
        script, command = workdir / "block.sh", ["bash", "-e", "block.sh"]
    script.write_text(block.text)
    result = subprocess.run(command, cwd=workdir, env=env, capture_output=True, text=True, timeout=timeout)
    assert result.returncode == 0, (f"{block.id} failed (exit {result.returncode}):\n{block.text}\n"
                                    f"--- stdout\n{result.stdout[-3000:]}\n--- stderr\n{result.stderr[-3000:]}")


@pytest.mark.parametrize("block", blocks(*SHELL_LANGS, "python", run="quick"))
def test_quick_block_runs(block, tmp_path):
    run_block(block, tmp_path, timeout=120)


@pytest.mark.slow
@pytest.mark.parametrize("block", blocks(*SHELL_LANGS, "python", run="slow"))
def test_slow_block_runs(block, tmp_path):
    run_block(block, tmp_path, timeout=1200)
