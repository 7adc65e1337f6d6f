"""Isolation analysis is never why a valid workflow cannot run: a module too big to parse under a
deep stack, or whose source no longer parses, still runs (shared, with one warning)."""

from __future__ import annotations

import ast
import importlib
import inspect
import logging
import sys
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from temporalio.client import Client
from temporalio.worker import Worker

from temporay.runtime.isolation import modules as isolation_modules
from temporay.runtime.local_runner import LocalWorkflowRunner

NESTING = 600
LINES = 10_000

WORKFLOW = '''
from temporalio import workflow

@workflow.defn(name="{name}")
class BigModuleWorkflow:
    @workflow.run
    async def run(self) -> int:
        return x{last} + 1
'''


def _big_source(name: str) -> str:
    """``LINES`` lines, one of them a chain of ``NESTING`` unary minuses: one AST node deep per
    minus, the kind of depth that makes ``ast.parse`` fail when the stack is already deep."""
    lines = ["x0 = 0", *(f"x{i} = x{i - 1} + 1" for i in range(1, LINES))]
    lines.append(f"deep = {'- ' * NESTING}1")
    return "\n".join(lines) + WORKFLOW.format(name=name, last=LINES - 1)


@pytest.fixture
def import_generated(tmp_path: Path) -> Iterator[Callable[[str, str], ModuleType]]:
    names: list[str] = []
    sys.path.insert(0, str(tmp_path))

    def load(name: str, source: str) -> ModuleType:
        (tmp_path / f"{name}.py").write_text(source)
        names.append(name)
        return importlib.import_module(name)

    try:
        yield load
    finally:
        sys.path.remove(str(tmp_path))
        for name in names:
            sys.modules.pop(name, None)


def _at_depth(depth: int, fn: Callable[[], Any]) -> Any:
    return fn() if depth <= 0 else _at_depth(depth - 1, fn)


def _depth_where_parse_fails(source: str) -> int:
    """How deep in this stack a plain ``ast.parse`` of ``source`` fails (the precondition)."""

    def parses() -> bool:
        try:
            ast.parse(source)
        except (RecursionError, SystemError):
            return False
        return True

    # Near the recursion limit, where a Worker built deep inside a test runner sits.
    base = len(inspect.stack(0))
    for depth in range(sys.getrecursionlimit() - base - 400, sys.getrecursionlimit() - base, 10):
        if not _at_depth(depth, parses):
            return depth
    raise AssertionError("ast.parse never failed here; the test cannot show the fallback")


def test_a_10000_line_module_parses_under_a_deep_stack(
    import_generated: Callable[[str, str], ModuleType],
) -> None:
    name = f"big_{uuid.uuid4().hex[:6]}"
    module = import_generated(name, _big_source(name))
    source = Path(module.__file__ or "").read_text()
    assert source.count("\n") >= LINES
    depth = _depth_where_parse_fails(source)
    tree = _at_depth(depth, lambda: isolation_modules._parse_source(module))
    assert isinstance(tree, ast.Module) and len(tree.body) >= LINES


async def test_workflows_from_modules_analysis_cannot_read_still_run(
    client: Client,
    task_queue: str,
    import_generated: Callable[[str, str], ModuleType],
    caplog: pytest.LogCaptureFixture,
) -> None:
    big_name = f"big_{uuid.uuid4().hex[:6]}"
    big = import_generated(big_name, _big_source(big_name))
    broken_name = f"broken_{uuid.uuid4().hex[:6]}"
    broken = import_generated(broken_name, WORKFLOW.format(name=broken_name, last=0).replace(
        "return x0 + 1", "return 7"))
    # The file changes after import (a deploy mid-run, an editor): its source no longer parses.
    Path(broken.__file__ or "").write_text("def (:\n")
    isolation_modules._unreadable_logged.discard(broken_name)
    with caplog.at_level(logging.WARNING):
        async with Worker(
            client,
            task_queue=task_queue,
            workflows=[big.BigModuleWorkflow, broken.BigModuleWorkflow],
            workflow_runner=LocalWorkflowRunner(),
        ):
            assert await client.execute_workflow(
                big_name, id=f"big-{uuid.uuid4().hex[:6]}", task_queue=task_queue
            ) == LINES
            assert await client.execute_workflow(
                broken_name, id=f"broken-{uuid.uuid4().hex[:6]}", task_queue=task_queue
            ) == 7
    warnings = [r.getMessage() for r in caplog.records if broken_name in r.getMessage()]
    assert len(warnings) == 1 and "could not parse the source" in warnings[0], warnings
