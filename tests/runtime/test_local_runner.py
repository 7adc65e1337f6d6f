"""LocalWorkflowRunner: SDK-sandbox workflows unchanged; the hosting contract (created on one
thread under a placeholder loop, activated on others; built in another process)."""

from __future__ import annotations

import asyncio
import dataclasses
import multiprocessing
import pickle
import threading
import uuid
from datetime import timedelta
from typing import Any

import temporalio.bridge.proto.workflow_activation as wfact
import temporalio.common
import temporalio.converter
import temporalio.workflow
from temporalio.client import Client
from temporalio.worker import Worker, WorkflowInstanceDetails, WorkflowRunner
from temporalio.worker.workflow_sandbox import SandboxedWorkflowRunner

from bench.workloads.instance_details import instance_details
from temporay.runtime.hosting.hosted_run import running_loop_for_creation
from temporay.runtime.isolated_runner import IsolatedInstance
from temporay.runtime.local_runner import LocalWorkflowRunner
from temporay.runtime.prepared import PreparedInstance
from temporay.runtime.run_info import RunDetails
from tests.runtime.isolation.workflows import globals_state, shims
from tests.runtime.isolation.workflows.sdk_style import ChildGreeter, SandboxStyleWorkflow
from tests.runtime.isolation.workflows.sdk_style_activities import GreetingInput, compose_greeting
from tests.support.activations import activation, initialize, signal


async def _sandbox_style(client: Client, task_queue: str, runner: WorkflowRunner) -> dict:
    async with Worker(
        client,
        task_queue=task_queue,
        workflows=[SandboxStyleWorkflow, ChildGreeter],
        activities=[compose_greeting],
        workflow_runner=runner,
    ):
        handle = await client.start_workflow(
            SandboxStyleWorkflow.run,
            GreetingInput("Hello", "temporay"),
            id=f"sdk-style-{uuid.uuid4()}",
            task_queue=task_queue,
            execution_timeout=timedelta(seconds=60),
        )
        await handle.signal(SandboxStyleWorkflow.event, "first")
        assert "first" in await handle.query(SandboxStyleWorkflow.seen)
        assert await handle.execute_update(SandboxStyleWorkflow.finish, "done") == (
            "finished after 2"
        )
        result = await handle.result()
    # Seeded values differ per run: compare their shape, not their value.
    result["uuid"] = len(result["uuid"])
    result["deterministic"] = [0 <= v <= 100 for v in result["deterministic"]]
    return result


async def test_sdk_sandbox_workflows_work_unchanged(client: Client, task_queue: str) -> None:
    on_sdk = await _sandbox_style(client, task_queue + "-sdk", SandboxedWorkflowRunner())
    on_local = await _sandbox_style(client, task_queue, LocalWorkflowRunner())
    assert (
        on_local
        == on_sdk
        == {
            "greeting": "Hello, temporay!",
            "local": "Hi, temporay!",
            "child": "TEMPORAY",
            "ticks": [0, 1, 2],
            "events": ["first", "done"],
            "deterministic": [True, True, True],
            "uuid": 36,
            "patched": True,
        }
    )


async def test_workflows_relying_on_shims_fail_on_the_sdk_sandbox(
    client: Client, task_queue: str
) -> None:
    """What the README says: shims are temporay's; the SDK's sandbox refuses those calls."""
    async with Worker(
        client,
        task_queue=task_queue,
        workflows=[shims.StrictShimsWorkflow],
        workflow_runner=SandboxedWorkflowRunner(),
    ):
        refused = await client.execute_workflow(
            shims.StrictShimsWorkflow.run, id=f"on-sdk-{uuid.uuid4()}", task_queue=task_queue
        )
    assert refused.startswith("RestrictedWorkflowAccessError")


def _details(cls: type, run_id: str) -> WorkflowInstanceDetails:
    return instance_details(
        cls, run_id=run_id, workflow_id=f"wf-{run_id}", task_queue="local", randomness_seed=7
    )


def _drive(
    runner: LocalWorkflowRunner, run_id: str, prepared: PreparedInstance | None = None
) -> dict[str, Any]:
    """Create the run (or bind ``prepared`` to it) on this thread (placeholder loop), activate
    it on two other threads; returns the workflow's result."""
    det = _details(globals_state.GlobalsWorkflow, run_id)
    runner.prepare_workflow(det.defn)
    with running_loop_for_creation():
        if prepared is None:
            instance = runner.create_instance(det)
        else:
            instance = prepared.bind(RunDetails.of(det))
    converter = temporalio.converter.DataConverter.default.payload_converter
    init = initialize("GlobalsWorkflow", run_id, workflow_id=f"wf-{run_id}", randomness_seed=7)
    completions: list[Any] = []

    def activate(act: wfact.WorkflowActivation) -> None:
        completions.append(instance.activate(act))

    for act in (
        activation(run_id, init, at=1_000_000_000),
        activation(run_id, signal("proceed"), at=1_000_000_001),
    ):
        thread = threading.Thread(target=activate, args=(act,))
        thread.start()
        thread.join()
    assert len(completions) == 2
    for completion in completions:
        assert not completion.HasField("failed"), completion.failed
    (command,) = completions[1].successful.commands
    result = command.complete_workflow_execution.result
    return converter.from_payloads([result], [dict[str, Any]])[0]


def test_created_under_a_placeholder_loop_activated_on_other_threads() -> None:
    runner = LocalWorkflowRunner()
    for run_id in ("run-a", "run-b"):
        result = _drive(runner, run_id)
        # Each run completed, with its own fresh module state.
        assert result["first"]["counter"] == 1 and result["second"]["counter"] == 2
        assert result["second"]["seen"] == [run_id]
    assert globals_state.COUNTER == 0


def _in_another_process(payload: bytes) -> dict[str, Any]:
    runner = pickle.loads(payload)
    assert isinstance(runner, LocalWorkflowRunner)
    return _drive(runner, "run-remote")


def test_built_in_another_process_from_its_pickle() -> None:
    runner = LocalWorkflowRunner(shared_modules=["tests.runtime.isolation.workflows.shared_helper"])
    local = _drive(runner, "run-remote")
    context = multiprocessing.get_context("spawn")
    with context.Pool(1) as pool:
        remote = pool.apply(_in_another_process, (pickle.dumps(runner),))
    assert remote == local and remote["second"]["counter"] == 2


def test_engine_sandbox_leaves_isolation_to_it() -> None:
    runner = LocalWorkflowRunner(SandboxedWorkflowRunner())
    assert not runner.isolation and not runner.shims
    assert isinstance(runner.engine, SandboxedWorkflowRunner)


def test_repr_and_arguments() -> None:
    runner = LocalWorkflowRunner("sdk", strict=True)
    assert "strict=True" in repr(runner)
    assert dataclasses.is_dataclass(runner.options)
    asyncio.get_event_loop_policy()  # no loop needed to build one


def test_instances_prepared_ahead_serve_new_runs_with_their_own_state_and_seed() -> None:
    runner = LocalWorkflowRunner()
    ahead = _details(globals_state.GlobalsWorkflow, "not-this-one")  # its run fields unread
    runner.prepare_workflow(ahead.defn)
    with running_loop_for_creation():
        prepared = [runner.prepare_instance(ahead) for _ in range(2)]
    for run_id, one in zip(("ahead-a", "ahead-b"), prepared, strict=True):
        result = _drive(runner, run_id, one)
        assert result["first"]["counter"] == 1 and result["second"]["counter"] == 2
        assert result["second"]["seen"] == [run_id]
    det = _details(globals_state.GlobalsWorkflow, "ahead-c")
    with running_loop_for_creation():
        instance = runner.prepare_instance(ahead).bind(RunDetails.of(det))
    assert isinstance(instance, IsolatedInstance)
    assert (instance.state.seed, instance.state.run_id) == (7, "ahead-c")
    assert instance.get_info() is det.info
