"""The SIP core does no I/O, reads no clock and knows nothing of the product that runs it
(docs/architecture.md): enforced on the source, with the API it declares to the other layers."""

from __future__ import annotations

import ast
import pathlib

import bridge.sip
from tests.sans_io import io_imports

PRODUCT = ("spacesversion", "spaces-bridge", "vnd.spaces", "urn:spaces")
"""What only the product knows (its version header, INFO package, name, attendee URNs): the
application hands the core what it needs of them (EndpointConfig, headers, bodies)."""
PACKAGE = pathlib.Path(bridge.sip.__file__).parent
BRIDGE = PACKAGE.parent


def bridge_imports(path: pathlib.Path) -> list[tuple[str, list[str]]]:
    """``(module, names)`` for each import of a bridge module in ``path``, relative ones resolved;
    ``names`` are those taken from it (none for ``import module``)."""
    parts = list(path.relative_to(BRIDGE.parent).with_suffix("").parts)
    package = parts[:-1]  # an __init__ resolves from its own package too
    found: list[tuple[str, list[str]]] = []
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            found += [(a.name, []) for a in node.names if a.name.split(".")[0] == "bridge"]
        elif isinstance(node, ast.ImportFrom):
            base = package[: len(package) - node.level + 1] if node.level else []
            module = ".".join([*base, *(node.module or "").split(".")]).strip(".")
            if module.split(".")[0] == "bridge":
                found.append((module, [a.name for a in node.names]))
    return found


def test_sip_core_imports_no_io_modules() -> None:
    files = sorted(PACKAGE.glob("*.py"))
    assert len(files) >= 8
    assert io_imports(files) == []


def test_sip_core_imports_nothing_of_the_bridge_outside_it() -> None:
    offenders = [
        f"{path.name}: {module}"
        for path in sorted(PACKAGE.glob("*.py"))
        for module, _ in bridge_imports(path)
        if module != "bridge.sip" and not module.startswith("bridge.sip.")
    ]
    assert offenders == []


def test_sip_core_holds_no_product_strings() -> None:
    offenders = [
        f"{path.name}: {word}"
        for path in sorted(PACKAGE.glob("*.py"))
        for word in PRODUCT
        if word in path.read_text().lower()
    ]
    assert offenders == []


def test_the_api_declares_what_other_layers_import() -> None:
    """Everything the other layers take from the core is in ``bridge.sip.__all__``, or comes from a
    module listed there (``sdp``, ``bodies``, ``conference_info``)."""
    api = set(bridge.sip.__all__)
    assert all(hasattr(bridge.sip, name) for name in api)
    undeclared = []
    for path in sorted(BRIDGE.rglob("*.py")):
        if PACKAGE in path.parents:
            continue
        for module, names in bridge_imports(path):
            if module == "bridge.sip":
                undeclared += [f"{path.name}: {n}" for n in names if n not in api]
            elif module.startswith("bridge.sip."):
                submodule = module.split(".")[2]
                if submodule not in api:
                    undeclared += [f"{path.name}: {module}.{n}" for n in names if n not in api]
    assert undeclared == []
