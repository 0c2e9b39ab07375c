"""The layering of docs/architecture.md, checked on the source: imports only point down, and no module cycle.

Every import counts, also those inside functions and under ``if TYPE_CHECKING``: a lazy import is still an
arrow a reader has to follow.
"""

from __future__ import annotations

import ast
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("config", "kernels", "workers", "web", "orchestrator")

PROTOCOL = ("config", "workers.protocol")
BELOW_PIPELINE = ("kernels", *PROTOCOL, "workers.inputs")
LAYERS: dict[str, tuple[str, ...]] = {
    # layer (module prefix): what of ours it may import, besides itself
    "kernels": (),
    "config": (),
    "workers.protocol": ("config",),
    "workers.inputs": PROTOCOL,
    "workers.results": PROTOCOL,
    "workers.pipeline": BELOW_PIPELINE,
    "workers.service": (*BELOW_PIPELINE, "workers.results", "workers.pipeline"),
    "workers.cli": ("kernels", "config", "workers"),
    "workers": ("workers.cli",),  # workers/__init__.py and __main__.py
    "web": (*PROTOCOL, "workers.inputs.urlpolicy", "workers.inputs.images",
            "workers.inputs.friends.handles", "workers.inputs.friends.model"),  # a friends request's check, no I/O
    "orchestrator": PROTOCOL,
}
THIRD_PARTY: dict[str, tuple[str, ...]] = {
    # layers whose outside imports are fixed: the standard library and these
    "kernels": ("numpy", "numba"),
    "config": ("yaml",),
    "workers.protocol": ("redis",),
}


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def sources() -> Iterator[tuple[str, Path]]:
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            yield module_name(path), path


def imports(path: Path, module: str) -> set[str]:
    """Every module ``path`` imports (``from a import b`` counts as ``a.b`` when ``a.b`` is a module)."""
    found: set[str] = set()
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, *([base] if base else [])])
            found.add(base)
            found.update(f"{base}.{alias.name}" for alias in node.names if f"{base}.{alias.name}" in MODULES)
    return {name for name in found if name}


def layer_of(module: str) -> str:
    return max((layer for layer in LAYERS if module == layer or module.startswith(layer + ".")), key=len)


def within(module: str, prefixes: tuple[str, ...]) -> bool:
    return any(module == p or module.startswith(p + ".") for p in prefixes)


MODULES = {name: path for name, path in sources()}
GRAPH = {name: imports(path, name) for name, path in MODULES.items()}


@pytest.mark.parametrize("module", sorted(MODULES))
def test_imports_point_down(module: str) -> None:
    layer = layer_of(module)
    ours = {name for name in GRAPH[module] if name.split(".")[0] in PACKAGES}
    wrong = sorted(name for name in ours if not within(name, (layer, *LAYERS[layer])))
    assert not wrong, f"{module} ({layer}) may import only {LAYERS[layer]} of ours, not {wrong}"


@pytest.mark.parametrize("layer", sorted(THIRD_PARTY))
def test_bottom_layers_import_only_what_they_own(layer: str) -> None:
    allowed = (*THIRD_PARTY[layer], *PACKAGES, "__future__")
    outside = sorted({f"{module}: {name}" for module in MODULES if layer_of(module) == layer for name in GRAPH[module]
                      if name.split(".")[0] not in sys.stdlib_module_names and not within(name, allowed)})
    assert not outside


def test_no_import_cycle() -> None:
    """Depth-first search over our own modules; a back edge is a cycle."""
    ours = {module: sorted(name for name in names if name in MODULES and name != module)
            for module, names in GRAPH.items()}
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    cycles: list[list[str]] = []

    def visit(module: str, path: list[str]) -> None:
        state[module] = 1
        for name in ours[module]:
            if state.get(name) == 1:
                cycles.append([*path[path.index(name):], name])
            elif name not in state:
                visit(name, [*path, name])
        state[module] = 2

    for module in sorted(ours):
        if module not in state:
            visit(module, [module])
    assert not cycles


def test_every_workers_module_is_in_a_layer() -> None:
    loose = sorted(m for m in MODULES if m.startswith("workers.") and layer_of(m) == "workers"
                   and m not in ("workers.__main__",))
    assert not loose, f"modules of workers/ outside its sub-packages: {loose}"


def test_the_checker_sees_an_arrow_up() -> None:
    """The rule itself: an import of the orchestrator from workers, or of the web from anywhere, is refused."""
    assert not within("orchestrator.commands", (layer_of("workers.cli.main"), *LAYERS["workers.cli"]))
    assert not within("workers.pipeline.mosaic", LAYERS["web"])
    assert not within("workers.service.daemon", ("workers.pipeline", *LAYERS["workers.pipeline"]))
