"""The package layout docs/architecture.md describes: the root holds entry points only, no module
imports itself back through others (no import cycle), and each package imports only the layers
below it."""

from __future__ import annotations

import ast
import pathlib

import bridge

PACKAGE = pathlib.Path(bridge.__file__).parent

ENTRY_POINTS = {"__init__", "__main__", "cli", "app"}
"""What the package root may hold: the command, its ``python -m`` twin and the composition root."""

ALLOWED = {
    "bridge.sip": set(),
    "bridge.media": set(),
    "bridge.conference": set(),
    "bridge.conference.wire": set(),
    "bridge.conference.client": {"bridge.conference.wire"},
    "bridge.conference.server": {"bridge.conference.wire", "bridge.ops"},
    "bridge.ops": {"bridge.config", "bridge.sip"},
    # The file reader builds each layer's own runtime values (AuthConfig, ServerConfig...).
    "bridge.config": {
        "bridge.sip",
        "bridge.media",
        "bridge.calls",
        "bridge.conference.server",
        "bridge.conference.wire",
    },
    "bridge.transport": {"bridge.sip", "bridge.ops"},
    "bridge.calls": {
        "bridge.sip",
        "bridge.media",
        "bridge.conference.client",
        "bridge.conference.wire",
        "bridge.ops",
    },
}
"""Package -> the other packages it may import (the layers below it). The entry points may import
anything; a package not listed here fails the test until docs/architecture.md places it."""


def module_name(path: pathlib.Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports(path: pathlib.Path) -> set[str]:
    """Every bridge module ``path`` imports, with relative imports resolved (TYPE_CHECKING ones
    too: a cycle that only type hints close is still a cycle in the design)."""
    name = module_name(path)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - (node.level - 1)]
                target = ".".join([*base, node.module] if node.module else base)
            else:
                target = node.module or ""
            found.add(target)
            # ``from package import module`` imports the module.
            found.update(f"{target}.{alias.name}" for alias in node.names)
    return {m for m in found if m == "bridge" or m.startswith("bridge.")}


def graph() -> dict[str, set[str]]:
    modules = {module_name(p): p for p in PACKAGE.rglob("*.py")}
    return {name: imports(path) & modules.keys() - {name} for name, path in modules.items()}


def cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in edges[node]:
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(edges):
        if node not in index:
            visit(node)
    return found


def layer(module: str) -> str | None:
    return max(
        (p for p in ALLOWED if module == p or module.startswith(p + ".")), key=len, default=None
    )


def test_the_package_root_holds_entry_points_only() -> None:
    loose = {p.stem for p in PACKAGE.glob("*.py")} - ENTRY_POINTS
    assert not loose, f"modules at the package root: {sorted(loose)}"


def test_no_import_cycle() -> None:
    assert cycles(graph()) == []


def test_cycle_finder_finds_a_cycle() -> None:
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def test_each_package_imports_only_the_layers_below_it() -> None:
    wrong = []
    for module, targets in graph().items():
        entry_point = module.count(".") == 1 and module.rpartition(".")[2] in ENTRY_POINTS
        if module == "bridge" or entry_point:
            continue
        own = layer(module)
        assert own is not None, f"{module} belongs to no layer of docs/architecture.md"
        for target in targets:
            other = layer(target)
            if target != "bridge" and other != own and other not in ALLOWED[own]:
                wrong.append(f"{module} -> {target}")
    assert not wrong, "\n".join(sorted(wrong))
