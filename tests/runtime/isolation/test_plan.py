"""Per-run module state (runtime/isolation/): against the real dev server, and the plan itself."""

from __future__ import annotations

import pickle
import sys
import uuid
from datetime import datetime, timedelta
from typing import Any

import pytest
import temporalio.workflow
from temporalio.client import Client, WorkflowFailureError
from temporalio.worker import UnsandboxedWorkflowRunner, Worker

from temporay.runtime.isolation.options import IsolationOptions
from temporay.runtime.isolation.plan import ModulePlan
from temporay.runtime.isolation.run_state import CURRENT_RUN, RunState
from temporay.runtime.local_runner import LocalWorkflowRunner
from tests.runtime.isolation.workflows import (
    globals_helper,
    globals_state,
    passthrough,
    shared_helper,
    shims,
)
from tests.support.waiting import wait_for_first_task


async def _run_concurrently(
    client: Client, task_queue: str, runner: LocalWorkflowRunner, count: int
) -> list[dict]:
    async with Worker(
        client,
        task_queue=task_queue,
        workflows=[globals_state.GlobalsWorkflow],
        workflow_runner=runner,
    ):
        handles = [
            await client.start_workflow(
                globals_state.GlobalsWorkflow.run,
                f"run{i}",
                id=f"globals-{i}-{uuid.uuid4()}",
                task_queue=task_queue,
            )
            for i in range(count)
        ]
        # Every run has taken its first step (and mutated the globals) before any finishes.
        for handle in handles:
            await wait_for_first_task(handle)
        for handle in handles:
            await handle.signal(globals_state.GlobalsWorkflow.proceed)
        return [await handle.result() for handle in handles]


async def test_concurrent_runs_do_not_see_each_others_globals(
    client: Client, task_queue: str
) -> None:
    results = await _run_concurrently(client, task_queue, LocalWorkflowRunner(), 4)
    for i, result in enumerate(results):
        name = f"run{i}"
        assert result["first"] == {
            "counter": 1,
            "seen": 1,
            "registry": 1,
            "helper": 1,
            "helper_module": 2,
            "settings_tags": 1,
        }
        assert result["second"] == {
            "counter": 2,
            "seen": [name],
            "by_run": {name: 1},
            "registry": 2,
            "helper": 3,
            "settings_label": name,
            "marker": name,
        }
    # The imported modules themselves were never touched.
    assert globals_state.COUNTER == 0
    assert globals_state.SEEN == [] and globals_state.BY_RUN == {}
    assert globals_state.Registry.entries == [] and globals_state.Registry.total == 0
    assert globals_state.Settings() == globals_state.SETTINGS
    assert globals_helper.HELPER_COUNTER == 0
    assert not hasattr(globals_state.GlobalsWorkflow, "marker")


async def test_without_isolation_runs_share_globals(client: Client, task_queue: str) -> None:
    """The control: the same workflows on a runner without isolation do see each other."""
    module_state = dict(vars(globals_state))
    try:
        results = await _run_concurrently(
            client, task_queue, LocalWorkflowRunner(isolation=False, shims=False), 3
        )
        assert sorted(r["second"]["counter"] for r in results) != [2, 2, 2]
        assert {len(r["second"]["seen"]) for r in results} == {3}
    finally:
        # Undo what the shared runs did to the imported module.
        vars(globals_state).update(module_state)
        globals_state.COUNTER = 0
        globals_state.SEEN.clear()
        globals_state.BY_RUN.clear()
        globals_state.Registry.entries.clear()
        globals_state.Registry.total = 0
        globals_state.SETTINGS.tags.clear()
        globals_state.SETTINGS.label = "default"
        globals_helper.HELPER_COUNTER = 0
        if hasattr(globals_state.GlobalsWorkflow, "marker"):
            del globals_state.GlobalsWorkflow.marker


async def test_sys_modules_untouched_during_runs(client: Client, task_queue: str) -> None:
    before = sys.modules.copy()
    modules_object = sys.modules
    await _run_concurrently(client, task_queue, LocalWorkflowRunner(), 2)
    assert sys.modules is modules_object
    added = set(sys.modules) - set(before)
    assert not any("isolation.workflows" in name for name in added), added
    for name, module in before.items():
        assert sys.modules.get(name) is module, name


def test_plan_gives_each_run_fresh_state() -> None:
    plan = ModulePlan(globals_state.GlobalsWorkflow, IsolationOptions(), shims=True)
    assert set(plan.own_modules) == {
        "tests.runtime.isolation.workflows.globals_state",
        "tests.runtime.isolation.workflows.globals_helper",
    }
    made = [plan.instantiate(RunState(i)) for i in range(2)]
    first, second = (m.defn.run_fn.__globals__ for m in made)
    assert first is not second and first is not vars(globals_state)
    # Classes, functions, module-level containers and instances are the run's own.
    for name in ("GlobalsWorkflow", "Registry", "bump", "SEEN", "BY_RUN", "SETTINGS"):
        assert first[name] is not second[name], name
        assert first[name] is not getattr(globals_state, name), name
    # A pure data class (generated methods only, immutable class attributes) holds no state of
    # the module: it is shared, so converters and isinstance() agree on it everywhere (its
    # instances are still the run's own).
    assert type(first["SETTINGS"]) is type(second["SETTINGS"]) is globals_state.Settings
    # Names no code of the workflow mentions are left out of the run's namespace.
    assert "Settings" not in first and "field" not in first
    assert first["globals_helper"].bump_helper is first["bump_helper"]
    assert first["bump_helper"].__globals__ is first["globals_helper"].__dict__
    # The definition is re-derived from the run's class.
    defn = made[0].defn
    cls: Any = defn.cls
    assert cls is first["GlobalsWorkflow"]
    assert defn.run_fn is cls.run
    assert defn.signals["proceed"].fn is cls.proceed
    assert temporalio.workflow._Definition.must_from_class(defn.cls) is defn
    # Mutating one run's state leaves the other's alone.
    token = CURRENT_RUN.set(RunState(0))
    try:
        first["bump"]()
        first["Registry"].add("x")
    finally:
        CURRENT_RUN.reset(token)
    assert first["COUNTER"] == 1 and second["COUNTER"] == 0
    assert second["Registry"].entries == [] and globals_state.Registry.entries == []


def test_failure_types_and_definitions_are_remapped() -> None:
    plan = ModulePlan(shims.ShimsWorkflow, IsolationOptions(), shims=True)
    made = plan.instantiate(RunState(1), [ValueError])
    assert made.failure_exception_types == [ValueError]
    plan = ModulePlan(passthrough.FailingWorkflow, IsolationOptions(), shims=True)
    made = plan.instantiate(RunState(1), [passthrough.OwnError])
    ns = made.defn.run_fn.__globals__
    assert made.failure_exception_types == [passthrough.OwnError, ns["OwnError"]]
    assert made.defn.failure_exception_types == [ns["OwnDefnError"]]
    assert ns["OwnError"] is not passthrough.OwnError


def test_imports_passed_through_are_shared() -> None:
    plan = ModulePlan(passthrough.FailingWorkflow, IsolationOptions(), shims=True)
    assert plan.own_modules == ("tests.runtime.isolation.workflows.passthrough",)
    ns = plan.instantiate(RunState(1)).defn.run_fn.__globals__
    # Imported inside imports_passed_through(): the module itself, not a per-run copy.
    assert ns["shared_helper"] is passthrough.shared_helper
    assert ns["helper_counter"] is globals_helper.bump_helper
    # Shared by option; and what a module binds from a shared module stays that module's.
    plan = ModulePlan(
        globals_state.GlobalsWorkflow,
        IsolationOptions(shared_modules=frozenset({"tests.runtime.isolation.workflows.shared_helper"})),
        shims=True,
    )
    ns = plan.instantiate(RunState(1)).defn.run_fn.__globals__
    assert ns["SHARED_REGISTRY"] is shared_helper.REGISTRY
    assert ns["SEEN"] is not globals_state.SEEN
    plan = ModulePlan(
        globals_state.GlobalsWorkflow,
        IsolationOptions(shared_modules=frozenset({"tests.runtime.isolation.workflows.globals_helper"})),
        shims=True,
    )
    assert plan.own_modules == ("tests.runtime.isolation.workflows.globals_state",)


def test_annotations_resolve_to_real_classes() -> None:
    from tests.runtime.isolation.workflows import converters

    plan = ModulePlan(converters.DataclassDatetimeWorkflow, IsolationOptions(), shims=True)
    made = plan.instantiate(RunState(1))
    ns = made.defn.run_fn.__globals__
    # The namespace binds the stand-in (datetime.now() is the workflow's clock) ...
    assert ns["datetime"] is not datetime and isinstance(datetime.now(), ns["datetime"])
    # ... but type hints, resolved against the real modules, name the real class.
    import typing

    hints = typing.get_type_hints(ns["Event"])
    assert hints["when"] is datetime
    assert ns["Event"] is converters.Event  # a pure data class: shared
    run_cls: Any = made.defn.cls
    run_hints = typing.get_type_hints(run_cls.run)
    assert run_hints["event"] is ns["Event"] and run_hints["return"] == dict[str, typing.Any]
    # A class with code of its own is the run's, and so are the hints that name it.
    plan = ModulePlan(globals_state.GlobalsWorkflow, IsolationOptions(), shims=True)
    ns = plan.instantiate(RunState(1)).defn.run_fn.__globals__
    assert ns["Registry"] is not globals_state.Registry
    assert typing.get_type_hints(ns["uses_registry"])["registry"] is ns["Registry"]


async def test_unsandboxed_definitions_are_left_alone(client: Client, task_queue: str) -> None:
    runner = LocalWorkflowRunner()
    async with Worker(
        client,
        task_queue=task_queue,
        workflows=[passthrough.NotSandboxedWorkflow],
        workflow_runner=runner,
        unsandboxed_workflow_runner=runner,
    ):
        result = await client.execute_workflow(
            passthrough.NotSandboxedWorkflow.run, id=f"ns-{uuid.uuid4()}", task_queue=task_queue
        )
    # The module's own state (no copy) and the real clock (no shims).
    assert result == {"same_module": True, "counter": 1, "real_clock": True}
    passthrough.NOT_SANDBOXED_COUNTER = 0


async def test_failure_exception_types_follow_the_run_classes(
    client: Client, task_queue: str
) -> None:
    async with Worker(
        client,
        task_queue=task_queue,
        workflows=[passthrough.FailingWorkflow],
        workflow_runner=LocalWorkflowRunner(),
        workflow_failure_exception_types=[passthrough.OwnError],
    ):
        for kind in ("worker", "defn"):
            with pytest.raises(WorkflowFailureError) as failure:
                await client.execute_workflow(
                    passthrough.FailingWorkflow.run,
                    kind,
                    id=f"fail-{kind}-{uuid.uuid4()}",
                    task_queue=task_queue,
                    # Were the types not remapped, the task would fail and retry until this.
                    execution_timeout=timedelta(seconds=20),
                )
            assert "raised by the run's own class" in str(failure.value.cause)


def test_runner_pickles_as_its_arguments() -> None:
    runner = LocalWorkflowRunner("sdk", strict=True, shared_modules=["a.b"], restrict_io=False)
    clone = pickle.loads(pickle.dumps(runner))
    assert isinstance(clone, LocalWorkflowRunner)
    assert clone.arguments == runner.arguments
    assert clone.strict and clone.options.shared_modules == frozenset({"a.b"})
    assert isinstance(clone.engine, UnsandboxedWorkflowRunner)


def test_shims_need_isolation() -> None:
    with pytest.raises(ValueError, match="need isolation"):
        LocalWorkflowRunner(isolation=False)


def test_options_from_the_sdks_sandbox_restrictions() -> None:
    from temporalio.worker.workflow_sandbox import SandboxRestrictions

    restrictions = SandboxRestrictions.default.with_passthrough_modules(
        "tests.runtime.isolation.workflows.globals_helper"
    )
    options = IsolationOptions.from_sandbox_restrictions(restrictions)
    assert "tests.runtime.isolation.workflows.globals_helper" in options.shared_modules
    plan = ModulePlan(globals_state.GlobalsWorkflow, options, shims=True)
    assert plan.own_modules == ("tests.runtime.isolation.workflows.globals_state",)
    with pytest.raises(ValueError, match="passthrough_all_modules"):
        IsolationOptions.from_sandbox_restrictions(restrictions.with_passthrough_all_modules())
