"""The import shape of sdsetup (issue 12 "Acceptance"), read from the source with `ast`: no import circle
among module-level imports, and nothing below commands/ imports commands/ (or cli)."""

from __future__ import annotations

import ast
from pathlib import Path

import sdsetup

ROOT = Path(sdsetup.__file__).parent


def _module_name(path: Path) -> str:
    parts = ["sdsetup", *path.relative_to(ROOT).with_suffix("").parts]
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {_module_name(p): p for p in ROOT.rglob("*.py")}


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def _import_time_nodes(body):
    """Import statements run when the module is imported: top level, in try/with/if bodies (not the
    `if TYPE_CHECKING:` ones) and class bodies; not inside functions, which import when called."""
    for node in body:
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            yield node
        elif isinstance(node, ast.If):
            if not _is_type_checking(node.test):
                yield from _import_time_nodes(node.body)
            yield from _import_time_nodes(node.orelse)
        elif isinstance(node, ast.Try):
            for block in (node.body, node.orelse, node.finalbody, *[h.body for h in node.handlers]):
                yield from _import_time_nodes(block)
        elif isinstance(node, (ast.With, ast.ClassDef)):
            yield from _import_time_nodes(node.body)


def _targets(module: str, node: ast.Import | ast.ImportFrom, is_package: bool) -> set[str]:
    if isinstance(node, ast.Import):
        names = {alias.name for alias in node.names}
    else:
        if node.level:
            base = module.split(".") if is_package else module.split(".")[:-1]
            base = base[: len(base) - (node.level - 1)]
            source = ".".join(base + ([node.module] if node.module else []))
        else:
            source = node.module or ""
        names = {source} | {f"{source}.{alias.name}" for alias in node.names}
    return {name for name in names if name in MODULES}


def import_graph(*, import_time_only: bool = True) -> dict[str, set[str]]:
    graph = {}
    for module, path in MODULES.items():
        tree = ast.parse(path.read_text("utf-8"), str(path))
        nodes = _import_time_nodes(tree.body) if import_time_only else [
            n for n in ast.walk(tree) if isinstance(n, (ast.Import, ast.ImportFrom))]
        edges = set()
        for node in nodes:
            edges |= _targets(module, node, path.name == "__init__.py")
        graph[module] = edges - {module}
    return graph


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import circle as a path (first == last), or None."""
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                return stack[stack.index(nxt):] + [nxt]
            if nxt not in state:
                found = visit(nxt)
                if found:
                    return found
        stack.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state:
            found = visit(node)
            if found:
                return found
    return None


def test_the_cycle_finder_finds_a_circle_and_passes_a_tree():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b", "c"}, "b": {"c"}, "c": set()}) is None


def test_the_graph_sees_relative_from_and_guarded_imports(tmp_path):
    tree = ast.parse("from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    import sdsetup.cli\n"
                     "try:\n    from sdsetup.net import session\nexcept ImportError:\n    pass\n"
                     "def f():\n    import sdsetup.commands.install\n")
    found = set()
    for node in _import_time_nodes(tree.body):
        found |= _targets("sdsetup.x", node, False)
    assert "sdsetup.net.session" in found and "sdsetup.cli" not in found and "sdsetup.commands.install" not in found


def test_no_import_circle_in_sdsetup():
    assert find_cycle(import_graph()) is None


def test_no_module_below_commands_imports_commands():
    """Readiness lives in detect/ (issue 12 item 3): nothing outside commands/ (and the CLI that
    dispatches to it) reaches into commands/, not even inside a function."""
    graph = import_graph(import_time_only=False)
    top = {"sdsetup.cli", "sdsetup.__main__", "sdsetup.gui.app"}  # the page's server dispatches to commands like the CLI
    offenders = {module: sorted(t for t in targets if t.startswith("sdsetup.commands") or t == "sdsetup.cli")
                 for module, targets in graph.items()
                 if module not in top and not module.startswith("sdsetup.commands")}
    assert {m: t for m, t in offenders.items() if t} == {}


def test_no_import_circle_even_through_imports_inside_functions():
    """Issue 23 ("what the last round left"): i18n <-> settings <-> tomlcompat and install/uv <->
    install/wheelhouse <-> install/steps/venv only hid their circles inside functions."""
    cycle = find_cycle(import_graph(import_time_only=False))
    assert cycle is None, " -> ".join(cycle)
