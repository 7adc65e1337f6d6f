"""The import-graph reader behind the architecture tests finds what they rely on it to find."""

from __future__ import annotations

from pathlib import Path

from tests.architecture.import_graph import Module, cycles, import_graph


def _modules(tmp_path: Path, sources: dict[str, str]) -> dict[str, Module]:
    modules = {}
    for name, source in sources.items():
        path = tmp_path / f"{name.replace('.', '_')}.py"
        path.write_text(source)
        modules[name] = Module(name, path)
    return modules


def test_type_only_and_function_level_imports_count(tmp_path: Path) -> None:
    modules = _modules(
        tmp_path,
        {
            "temporay.a": (
                "from typing import TYPE_CHECKING\n"
                "if TYPE_CHECKING:\n"
                "    from temporay.b import Thing\n"
            ),
            "temporay.b": "def f():\n    from temporay import c\n",
            "temporay.c": "import os\n",
        },
    )
    graph = import_graph(modules)
    assert graph["temporay.a"] == {"temporay.b": 3}
    assert graph["temporay.b"] == {"temporay.c": 2}
    assert graph["temporay.c"] == {}


def test_cycles_are_found_and_chains_are_not() -> None:
    graph = {
        "a": {"b": 1},
        "b": {"c": 1},
        "c": {"a": 1},
        "d": {"a": 1},
        "e": {"d": 1},
    }
    assert cycles(graph) == [["a", "b", "c"]]
    graph["c"] = {}
    assert cycles(graph) == []
