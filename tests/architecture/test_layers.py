"""The architecture holds: layers import downward only, no module cycles, small modules, and
nothing points outside the repository."""

from __future__ import annotations

import re

from tests.architecture.import_graph import ROOT, cycles, import_graph, source_modules

# Lower number = lower layer. A module may import its own group or any lower layer; groups of one
# layer are peers and must not import each other. The longest prefix wins.
LAYERS: dict[str, tuple[int, str]] = {
    "temporay.proto": (0, "proto"),
    # What every part of the runtime shares.
    "temporay.runtime.frozen": (1, "shared"),
    "temporay.runtime.converter": (1, "shared"),
    "temporay.runtime.placement": (1, "shared"),
    "temporay.runtime.run_info": (1, "shared"),
    "temporay.runtime.prepared": (1, "shared"),
    # The engine and the isolation know nothing of each other.
    "temporay.runtime.engine": (2, "engine"),
    "temporay.runtime.isolation": (2, "isolation"),
    # The public runners (engine selection, local and isolated runners, replay helpers).
    "temporay.runtime": (3, "runners"),
    "temporay.runtime.hosting": (4, "hosting"),
    "temporay.actors": (5, "actors"),
    "temporay.cluster": (6, "cluster"),
    "temporay": (7, "api"),
}

MAX_LINES = 500


def _layer(module: str) -> tuple[str, int]:
    best = max((p for p in LAYERS if module == p or module.startswith(p + ".")), key=len)
    layer, group = LAYERS[best]
    return group, layer


def test_no_import_cycles() -> None:
    found = cycles(import_graph(source_modules()))
    assert not found, "modules that import each other (type-only imports count):\n" + "\n".join(
        " <-> ".join(c) for c in found
    )


def test_layers_import_downward_only() -> None:
    modules = source_modules()
    wrong = []
    for name, targets in import_graph(modules).items():
        package, layer = _layer(name)
        for target, line in targets.items():
            target_package, target_layer = _layer(target)
            if target_layer > layer or (target_layer == layer and target_package != package):
                where = modules[name].path.relative_to(ROOT)
                wrong.append(f"{where}:{line}: {name} imports {target}")
    assert not wrong, "imports against the layers:\n" + "\n".join(sorted(wrong))


def test_every_module_is_assigned_a_layer() -> None:
    for name in source_modules():
        assert _layer(name)[0], name


def test_no_source_module_is_over_the_limit() -> None:
    big = []
    for module in source_modules().values():
        lines = len(module.path.read_text().splitlines())
        if lines > MAX_LINES:
            big.append(f"{module.path.relative_to(ROOT)}: {lines} lines")
    assert not big, f"modules over {MAX_LINES} lines:\n" + "\n".join(big)


OUTSIDE = re.compile(r"\.\./shared|DESIGN\.md|SDK-NOTES")


def test_nothing_points_outside_the_repository() -> None:
    checked = [
        *ROOT.glob("*.md"),
        ROOT / "pyproject.toml",
        *(ROOT / "docs").rglob("*.md"),
        *(ROOT / "deploy").rglob("*.md"),
        *(m.path for m in source_modules().values()),
        *(ROOT / "proto").glob("*.proto"),
        *(ROOT / "examples").rglob("*.py"),
        *(ROOT / "bench").rglob("*.py"),
    ]
    hits = []
    for path in checked:
        for number, text in enumerate(path.read_text().splitlines(), 1):
            if OUTSIDE.search(text):
                hits.append(f"{path.relative_to(ROOT)}:{number}: {text.strip()}")
    assert not hits, "references to files outside the repository:\n" + "\n".join(hits)
