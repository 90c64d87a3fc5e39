"""No import circles among the project's own modules (zeb_core, zeb_cli, flows, tasks, bench).

Why: a circle makes a module's import work or fail depending on which side is imported first, and
hides which module owns the shared piece. The graph is read statically with `ast` from every .py
file: `import x`, `from x import y` (an edge to `x.y` when that is a module, else to `x`), relative
imports, and imports inside functions all count, since a deferred import that goes both ways is
still a circle. Imports under `if TYPE_CHECKING:` do not count (they never run). Importing a
submodule is not counted as importing its parent package's __init__ (the usual convention).
bench scripts import each other as top-level names (`from _common import setup`); those map to
`bench.<name>`.
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("zeb_core", "zeb_cli", "flows", "tasks")
BENCH = "bench"


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _project_modules() -> dict[str, Path]:
    modules: dict[str, Path] = {}
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            modules[_module_name(path)] = path
    for path in sorted((ROOT / BENCH).glob("*.py")):
        modules[_module_name(path)] = path
    return modules


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _imports(tree: ast.AST) -> list[ast.Import | ast.ImportFrom]:
    """Every import statement in the tree, at any depth, except those under `if TYPE_CHECKING:`."""
    found: list[ast.Import | ast.ImportFrom] = []

    def visit(node: ast.AST) -> None:
        if isinstance(node, ast.If) and _is_type_checking(node.test):
            for child in node.orelse:
                visit(child)
            return
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            found.append(node)
        for child in ast.iter_child_nodes(node):
            visit(child)

    visit(tree)
    return found


def _resolve(name: str, importer: str, modules: dict[str, Path]) -> str | None:
    """The project module `name` refers to (the longest known prefix), or None for outside modules."""
    if importer.startswith(BENCH + ".") and f"{BENCH}.{name.split('.')[0]}" in modules:
        return f"{BENCH}.{name.split('.')[0]}"
    while name and name not in modules:
        name = name.rpartition(".")[0]
    return name or None


def import_graph() -> dict[str, dict[str, list[str]]]:
    """module -> {imported module -> ['path:line: source', ...]} over the project's modules."""
    modules = _project_modules()
    graph: dict[str, dict[str, list[str]]] = {m: {} for m in modules}
    for module, path in modules.items():
        source = path.read_text()
        lines = source.splitlines()
        is_package = path.name == "__init__.py"
        for node in _imports(ast.parse(source, str(path))):
            where = f"{path.relative_to(ROOT)}:{node.lineno}: {lines[node.lineno - 1].strip()}"
            targets: list[str] = []
            if isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            else:
                base = node.module or ""
                if node.level:
                    package = module.split(".") if is_package else module.split(".")[:-1]
                    package = package[: len(package) - (node.level - 1)]
                    base = ".".join([*package, base] if base else package)
                targets = [f"{base}.{alias.name}" for alias in node.names]
            for target in targets:
                resolved = _resolve(target, module, modules)
                if resolved is not None and where not in graph[module].get(resolved, []):
                    graph[module].setdefault(resolved, []).append(where)
    return graph


def strongly_connected(graph: dict[str, dict[str, list[str]]]) -> list[list[str]]:
    """Tarjan's components with more than one module, or one module that imports itself."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    components: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for succ in graph[node]:
            if succ not in index:
                visit(succ)
                low[node] = min(low[node], low[succ])
            elif succ in on_stack:
                low[node] = min(low[node], index[succ])
        if low[node] == index[node]:
            component = []
            while True:
                top = stack.pop()
                on_stack.discard(top)
                component.append(top)
                if top == node:
                    break
            if len(component) > 1 or node in graph[node]:
                components.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return sorted(components)


def _report(graph: dict[str, dict[str, list[str]]], components: list[list[str]]) -> str:
    out = []
    for component in components:
        members = set(component)
        out.append("circle: " + " <-> ".join(component))
        for module in component:
            for target, wheres in sorted(graph[module].items()):
                if target in members:
                    out.extend(f"    {module} -> {target}  ({where})" for where in wheres)
    return "\n".join(out)


def test_the_graph_sees_the_project() -> None:
    """The scan must find the modules and their edges, or an empty graph would pass vacuously."""
    graph = import_graph()
    assert "zeb_core.engine.state" in graph and "zeb_cli.main" in graph and "flows.learner" in graph
    assert any(target.startswith("zeb_core.") for target in graph["flows.learner"])
    # A deferred import counts; one under `if TYPE_CHECKING:` does not (bot_v2 names bot's BotSession that way).
    code = "if TYPE_CHECKING:\n    import a\nelse:\n    import b\ndef f():\n    from . import c\n"
    assert [ast.unparse(node) for node in _imports(ast.parse(code))] == ["import b", "from . import c"]
    assert "zeb_core.serve.bot" not in graph["zeb_core.serve.bot_v2"]
    assert "zeb_core.serve.bot_v2" in graph["zeb_core.serve.bot"]
    # A made-up circle is reported with its import lines.
    toy = {"a": {"b": ["a.py:1: import b"]}, "b": {"a": ["b.py:3: import a"]}, "c": {"c": ["c.py:2: import c"]}}
    assert strongly_connected(toy) == [["a", "b"], ["c"]]
    assert "b.py:3: import a" in _report(toy, strongly_connected(toy))


def test_no_import_circles() -> None:
    graph = import_graph()
    components = strongly_connected(graph)
    assert not components, "import circles (move the shared piece to a module both sides import):\n" + _report(
        graph, components
    )
