"""billing's modules import each other without a circle, at module level or inside functions.

The graph is read from the source with ``ast`` (nothing is imported): an edge for every
``import billing.x``, ``from billing.x import y`` (to ``billing.x.y`` when that is a module),
``from billing import x``, relative import and ``importlib.import_module("billing.x")``, wherever
it stands (module level, function, class or ``if TYPE_CHECKING`` block). Importing a submodule
also runs its package's ``__init__``; that implicit edge is left out, as import linters do, so a
package that re-exports its submodules (``billing.services``) is not a circle by itself, but its
submodules must import each other by their precise module, never through the package.
"""

import ast
from pathlib import Path

import billing

BILLING_DIR = Path(billing.__file__).parent


def module_names(root: Path, package: str) -> dict[str, Path]:
    """Every module under ``root`` (a package directory) by dotted name; a package by its ``__init__``."""
    modules = {}
    for path in sorted(root.rglob("*.py")):
        parts = list(path.relative_to(root).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        modules[".".join([package, *parts])] = path
    return modules


def _resolve(name: str, modules: dict[str, Path]) -> str | None:
    """The module ``name`` refers to: itself, else its longest known prefix (``billing.x.attr`` → ``billing.x``)."""
    while name:
        if name in modules:
            return name
        name = name.rpartition(".")[0]
    return None


def _imported_names(node: ast.AST, module: str, is_package: bool) -> list[str]:
    if isinstance(node, ast.Import):
        return [alias.name for alias in node.names]
    if isinstance(node, ast.ImportFrom):
        base = node.module or ""
        if node.level:
            here = module.split(".") if is_package else module.split(".")[:-1]
            anchor = here[: len(here) - (node.level - 1)]
            base = ".".join(anchor + ([base] if base else []))
        # ``from billing import services`` names the module billing.services; ``from billing.x import f``
        # resolves to billing.x (its longest known prefix).
        return [f"{base}.{alias.name}" if alias.name != "*" else base for alias in node.names]
    if (
        isinstance(node, ast.Call)
        and isinstance(node.func, (ast.Attribute, ast.Name))
        and (node.func.attr if isinstance(node.func, ast.Attribute) else node.func.id) == "import_module"
        and node.args
        and isinstance(node.args[0], ast.Constant)
        and isinstance(node.args[0].value, str)
    ):
        return [node.args[0].value]
    return []


def import_graph(modules: dict[str, Path]) -> dict[str, set[str]]:
    """module → the modules of ``modules`` it imports anywhere in its source."""
    graph = {}
    for module, path in modules.items():
        is_package = path.name == "__init__.py"
        targets = set()
        for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
            for name in _imported_names(node, module, is_package):
                target = _resolve(name, modules)
                if target is not None and target != module:
                    targets.add(target)
        graph[module] = targets
    return graph


def find_cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """One cycle (``a → b → … → a``) per strongly connected component that has one (Tarjan)."""
    index, low, on_stack, stack, components = {}, {}, set(), [], []

    def visit(node):
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target in sorted(graph.get(node, ())):
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = set()
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.add(member)
                if member == node:
                    break
            if len(component) > 1:
                components.append(component)

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return [_cycle_in(component, graph) for component in components]


def _cycle_in(component: set[str], graph: dict[str, set[str]]) -> list[str]:
    start = min(component)
    paths = {start: [start]}
    queue = [start]
    while queue:  # breadth first, so the cycle printed is a shortest one through ``start``
        node = queue.pop(0)
        for target in sorted(graph[node] & component):
            if target == start:
                return paths[node] + [start]
            if target not in paths:
                paths[target] = paths[node] + [target]
                queue.append(target)
    raise AssertionError("a strongly connected component without a cycle")


def test_billing_modules_import_each_other_without_a_circle():
    graph = import_graph(module_names(BILLING_DIR, "billing"))

    cycles = find_cycles(graph)

    assert not cycles, "import circles in billing:\n" + "\n".join(" → ".join(cycle) for cycle in cycles)


def test_the_graph_sees_function_local_and_from_package_imports():
    graph = import_graph(module_names(BILLING_DIR, "billing"))

    assert "billing.month_end" in graph["billing.tasks"]
    assert "billing.services.drafts" in graph["billing.month_end"]
    assert "billing.services" in graph["billing.admin"]  # ``from billing import services``
    assert "billing.pricing" in graph["billing.services.pricing"]  # ``from billing import pricing``


def test_a_circle_through_a_function_local_import_is_reported(tmp_path):
    package = tmp_path / "shop"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "orders.py").write_text("from shop.mail import send\n")
    (package / "mail.py").write_text("def send():\n    from . import tasks\n")
    (package / "tasks.py").write_text("def run():\n    from shop import orders\n")

    cycles = find_cycles(import_graph(module_names(package, "shop")))

    assert cycles == [["shop.mail", "shop.tasks", "shop.orders", "shop.mail"]]
