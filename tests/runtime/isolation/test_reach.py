"""A run copies what its workflow class can reach, not its whole module (runtime/isolation/plan.py):
what is left out, what is still isolated, and the escapes that make a plan copy everything."""

from __future__ import annotations

import importlib
import sys
import textwrap
import uuid
from collections.abc import Coroutine, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from temporalio.client import Client
from temporalio.worker import Worker

from temporay.runtime.isolation.clone import Instantiation
from temporay.runtime.isolation.imports import WORKFLOW_BUILTINS, UnreachedModuleError
from temporay.runtime.isolation.options import IsolationOptions
from temporay.runtime.isolation.plan import ModulePlan
from temporay.runtime.isolation.run_state import CURRENT_RUN, RunState
from temporay.runtime.local_runner import LocalWorkflowRunner
from tests.runtime.isolation.workflows import big_module, big_module_lazy, big_module_state
from tests.support.waiting import wait_for_first_task

BIG = "tests.runtime.isolation.workflows.big_module"
UNRELATED = [
    "UNRELATED_CACHE",
    "UnrelatedHelper",
    "UnrelatedWorkflow1",
    "UnrelatedWorkflow2",
    "UnrelatedWorkflow3",
    "UnrelatedWorkflow4",
    "UnrelatedWorkflow5",
]


def _plan(cls: type) -> ModulePlan:
    return ModulePlan(cls, IsolationOptions(), shims=True)


@contextmanager
def _in_run(state: RunState) -> Iterator[None]:
    token = CURRENT_RUN.set(state)
    try:
        yield
    finally:
        CURRENT_RUN.reset(token)


def _run(made: Instantiation, state: RunState, *args: Any) -> Any:
    """Run a workflow's run method that awaits nothing, as the run's code, to completion."""
    instance = made.defn.cls()
    coro: Coroutine[Any, Any, Any] = made.defn.run_fn(instance, *args)  # type: ignore[assignment]
    with _in_run(state):
        try:
            coro.send(None)
        except StopIteration as stop:
            return stop.value
    coro.close()
    raise AssertionError("the run method awaited something")


def test_a_run_copies_only_what_its_class_reaches() -> None:
    plan = _plan(big_module.WriterWorkflow)
    inventory = plan.inventory
    assert set(inventory.classes) == {f"{BIG}.WriterWorkflow", f"{BIG}.Ledger"}
    assert set(inventory.names[BIG]) == {"EVENTS", "TALLY", "record", "Ledger"}
    assert inventory.modules == (BIG,) and inventory.whole_modules == ()
    # The module-level import of big_module_state is still an own module (discovery), but no
    # run of WriterWorkflow gets a copy of it.
    assert "tests.runtime.isolation.workflows.big_module_state" in plan.own_modules
    made = plan.instantiate(RunState(1))
    ns = made.defn.run_fn.__globals__
    for name in [*UNRELATED, "ReaderWorkflow", "EscapingWorkflow", "big_module_state"]:
        assert name not in ns, name
    assert id(big_module_state) not in made.modules
    # The shared helper is the run's, bound to the run's namespace, as is what it mutates.
    assert ns["record"] is not big_module.record
    assert ns["record"].__globals__ is ns
    assert ns["EVENTS"] is not big_module.EVENTS and ns["TALLY"] is not big_module.TALLY


def _write_module(directory: Path, name: str, unrelated: int) -> Any:
    """A workflow module with one workflow using a helper and a global, and ``unrelated`` more
    workflow classes that use them too."""
    source = textwrap.dedent(
        '''
        from temporalio import workflow

        SEEN: list[str] = []


        def note(item: str) -> int:
            SEEN.append(item)
            return len(SEEN)


        @workflow.defn
        class MainWorkflow:
            @workflow.run
            async def run(self, item: str) -> int:
                return note(item)
        '''
    )
    for i in range(unrelated):
        source += textwrap.dedent(
            f'''

            class Helper{i}:
                cache: dict[str, int] = {{}}


            @workflow.defn
            class Other{i}Workflow:
                @workflow.signal
                def poke(self) -> None:
                    Helper{i}.cache["poked"] = note("{i}")

                @workflow.run
                async def run(self) -> int:
                    return note("other{i}") + len(Helper{i}.cache)
            '''
        )
    (directory / f"{name}.py").write_text(source)
    return importlib.import_module(name)


def test_unrelated_classes_add_nothing_to_a_run(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.syspath_prepend(str(tmp_path))
    suffix = uuid.uuid4().hex[:8]
    small = _write_module(tmp_path, f"reach_small_{suffix}", unrelated=0)
    big = _write_module(tmp_path, f"reach_big_{suffix}", unrelated=12)
    try:
        small_plan, big_plan = _plan(small.MainWorkflow), _plan(big.MainWorkflow)
        # The same objects are made for a run of MainWorkflow, however many other classes share
        # its module (and its helper and global).
        small_objects = small_plan.instantiate(RunState(1)).objects
        assert big_plan.instantiate(RunState(1)).objects == small_objects
        assert len(big_plan.inventory.classes) == len(small_plan.inventory.classes) == 1
        assert set(big_plan.inventory.names[big.__name__]) == {"note", "SEEN"}
        # ... while a run of one of the others makes its own class and helper class.
        other = _plan(big.Other3Workflow)
        assert set(other.inventory.classes) == {
            f"{big.__name__}.Other3Workflow",
            f"{big.__name__}.Helper3",
        }
        # Behaviour is unchanged: the helper mutates the run's own global.
        state = RunState(1)
        made = big_plan.instantiate(state)
        assert _run(made, state, "x") == 1 and _run(made, state, "y") == 2
        assert big.SEEN == []
    finally:
        for module in (small, big):
            sys.modules.pop(module.__name__, None)


def test_state_shared_by_two_classes_stays_per_run() -> None:
    writer_plan, reader_plan = _plan(big_module.WriterWorkflow), _plan(big_module.ReaderWorkflow)
    writer_state = RunState(1)
    writer = writer_plan.instantiate(writer_state)
    ns = writer.defn.run_fn.__globals__
    with _in_run(writer_state):
        ns["record"]("a")
        ns["record"]("a")
        ns["Ledger"].add("a")
    assert ns["TOTAL"] == 2 and ns["EVENTS"] == ["a", "a"] and ns["TALLY"] == {"a": 2}
    assert ns["Ledger"].entries == ["a"]
    # A run of the other class reading the same globals, through the same helper, sees none of
    # it; nor does the module, nor another run of the first class.
    reader_state = RunState(2)
    reader = reader_plan.instantiate(reader_state)
    assert _run(reader, reader_state) == {
        "total": 0,
        "events": [],
        "tally": {},
        "after_record": 1,
    }
    other_writer = writer_plan.instantiate(RunState(3)).defn.run_fn.__globals__
    assert other_writer["TOTAL"] == 0 and other_writer["EVENTS"] == []
    assert other_writer["Ledger"].entries == []
    assert big_module.TOTAL == 0 and big_module.EVENTS == [] and big_module.TALLY == {}
    assert big_module.Ledger.entries == []


def test_an_import_inside_a_method_gets_the_run_copy() -> None:
    plan = _plan(big_module.ImportingWorkflow)
    # Imported only inside the method (never bound at module level): found at the import site.
    assert "tests.runtime.isolation.workflows.big_module_lazy" in plan.inventory.whole_modules
    results = []
    for seed in (1, 2):
        state = RunState(seed)
        results.append(_run(plan.instantiate(state), state))
    assert results == [[1, 2], [1, 2]]
    assert big_module_lazy.COUNT == 0


def test_names_in_string_annotations_of_nested_functions_are_kept() -> None:
    # Reading and Any appear in no bytecode name: only in the nested function's annotations.
    plan = _plan(big_module.NestedAnnotationsWorkflow)
    state = RunState(1)
    made = plan.instantiate(state)
    assert _run(made, state) == "dict[str, int]"
    assert made.defn.run_fn.__globals__["Any"] is Any


def test_an_escape_copies_every_own_module_whole() -> None:
    plan = _plan(big_module.EscapingWorkflow)
    # globals() reaches any name of the module: nothing can be left out.
    assert BIG in plan.inventory.whole_modules
    for name in ("UnrelatedHelper", "UnrelatedWorkflow1", "WriterWorkflow"):
        assert f"{BIG}.{name}" in plan.inventory.classes
    writer_objects = _plan(big_module.WriterWorkflow).instantiate(RunState(1)).objects
    assert plan.instantiate(RunState(1)).objects > writer_objects + len(UNRELATED)
    results = []
    for seed in (1, 2):
        state = RunState(seed)
        made = plan.instantiate(state)
        results.append([_run(made, state, "x"), _run(made, state, "y")])
    assert results == [[2, 3], [2, 3]]
    assert big_module.UNRELATED_CACHE == {"seed": []}


def test_an_unforeseen_import_of_an_own_module_is_refused() -> None:
    state = RunState(1)
    _plan(big_module.WriterWorkflow).instantiate(state)
    do_import = WORKFLOW_BUILTINS["__import__"]
    with _in_run(state):
        # An own module this run has no copy of: never the shared module.
        with pytest.raises(UnreachedModuleError, match="big_module_state"):
            do_import("tests.runtime.isolation.workflows.big_module_state", {}, None, ("bump",), 0)
        # The package above the own modules is seen through the run's view: what the run has
        # a copy of, and nothing it has not.
        package = do_import("tests.runtime.isolation.workflows", {}, None, ("big_module",), 0)
    assert package is not sys.modules["tests.runtime.isolation.workflows"]
    assert package.big_module is state.modules[id(big_module)]
    assert not hasattr(package, "big_module_state")


async def test_classes_of_one_module_stay_isolated_on_a_worker(
    client: Client, task_queue: str
) -> None:
    async with Worker(
        client,
        task_queue=task_queue,
        workflows=[
            big_module.WriterWorkflow,
            big_module.ReaderWorkflow,
            big_module.ImportingWorkflow,
        ],
        workflow_runner=LocalWorkflowRunner(),
    ):
        writers = [
            await client.start_workflow(
                big_module.WriterWorkflow.run,
                name,
                id=f"writer-{name}-{uuid.uuid4()}",
                task_queue=task_queue,
            )
            for name in ("a", "b")
        ]
        # Both have mutated the shared helper's globals before either finishes.
        for handle in writers:
            await wait_for_first_task(handle)
        reader = await client.execute_workflow(
            big_module.ReaderWorkflow.run, id=f"reader-{uuid.uuid4()}", task_queue=task_queue
        )
        for handle in writers:
            await handle.signal(big_module.WriterWorkflow.proceed)
        written = [await handle.result() for handle in writers]
        imported = [
            await client.execute_workflow(
                big_module.ImportingWorkflow.run,
                id=f"importing-{i}-{uuid.uuid4()}",
                task_queue=task_queue,
            )
            for i in range(2)
        ]
    assert written == [
        {"total": 2, "events": [name, name], "ledger": [name]} for name in ("a", "b")
    ]
    assert reader == {"total": 0, "events": [], "tally": {}, "after_record": 1}
    assert imported == [[1, 2], [1, 2]]
    assert big_module.TOTAL == 0 and big_module.EVENTS == [] and big_module_lazy.COUNT == 0
