"""A hosted run's details rebuilt from its first activation equal what the Worker gave the runner.

Shards no longer receive a run's ``workflow.Info`` pickled: they rebuild it from the
``InitializeWorkflow`` job with the SDK's recipe (``runtime/run_info.py``). Here a recording runner
keeps, for real runs of every shape the recipe branches on (memo, search attributes, headers,
timeouts, retry policy and a retried attempt with its last failure, parent and root, a
continued-as-new run with its last result), the ``WorkflowInstanceDetails`` the Worker built and
the first activation; the rebuilt details must be equal, field by field.
"""

from __future__ import annotations

import dataclasses
import uuid
from datetime import timedelta
from typing import Any

import pytest
import temporalio.bridge.proto.workflow_activation as wfact
import temporalio.bridge.proto.workflow_completion as wfcomp
import temporalio.common
from temporalio import workflow
from temporalio.client import Client
from temporalio.exceptions import ApplicationError
from temporalio.worker import (
    UnsandboxedWorkflowRunner,
    Worker,
    WorkflowInstance,
    WorkflowInstanceDetails,
    WorkflowRunner,
)

from temporay.runtime.run_info import details_from_activation
from tests.conftest import TEST_SEARCH_ATTRIBUTES


@workflow.defn(sandboxed=False)
class InfoChild:
    @workflow.run
    async def run(self, n: int) -> int:
        return n + 1


@workflow.defn(sandboxed=False)
class InfoParent:
    @workflow.run
    async def run(self) -> int:
        return await workflow.execute_child_workflow(
            InfoChild.run,
            1,
            id=f"{workflow.info().workflow_id}-child",
            memo={"from": "parent"},
            retry_policy=temporalio.common.RetryPolicy(maximum_attempts=3),
        )


@workflow.defn(sandboxed=False)
class InfoRetried:
    @workflow.run
    async def run(self) -> int:
        if workflow.info().attempt == 1:
            raise ApplicationError("first attempt fails on purpose")
        return workflow.info().attempt


@workflow.defn(sandboxed=False)
class InfoContinued:
    @workflow.run
    async def run(self, left: int) -> int:
        if left > 0:
            workflow.continue_as_new(left - 1)
        return left


class _Recording(WorkflowInstance):
    def __init__(self, inner: WorkflowInstance, seen: list[Any], det: WorkflowInstanceDetails):
        self._inner = inner
        self._seen = seen
        self._det: WorkflowInstanceDetails | None = det

    def activate(self, act: wfact.WorkflowActivation) -> wfcomp.WorkflowActivationCompletion:
        if self._det is not None:
            first = wfact.WorkflowActivation()
            first.CopyFrom(act)
            self._seen.append((self._det, first))
            self._det = None
        return self._inner.activate(act)

    def get_info(self) -> workflow.Info:
        return self._inner.get_info()

    def get_serialization_context(self, command_info: Any) -> Any:
        return self._inner.get_serialization_context(command_info)

    def get_external_store_context(self, command_info: Any) -> Any:
        return self._inner.get_external_store_context(command_info)

    def get_thread_id(self) -> int | None:
        return self._inner.get_thread_id()


class RecordingRunner(WorkflowRunner):
    """The SDK's unsandboxed runner, keeping each run's details and first activation."""

    def __init__(self) -> None:
        self.inner = UnsandboxedWorkflowRunner()
        self.seen: list[tuple[WorkflowInstanceDetails, wfact.WorkflowActivation]] = []

    def prepare_workflow(self, defn: workflow._Definition) -> None:
        self.inner.prepare_workflow(defn)

    def create_instance(self, det: WorkflowInstanceDetails) -> WorkflowInstance:
        return _Recording(self.inner.create_instance(det), self.seen, det)

    def set_worker_level_failure_exception_types(self, types: Any) -> None:
        self.inner.set_worker_level_failure_exception_types(types)


async def test_details_rebuilt_from_the_first_activation_equal_the_workers(
    client: Client, task_queue: str
) -> None:
    runner = RecordingRunner()
    keyword = TEST_SEARCH_ATTRIBUTES[0]
    async with Worker(
        client,
        task_queue=task_queue,
        workflows=[InfoChild, InfoParent, InfoRetried, InfoContinued],
        workflow_runner=runner,
        unsandboxed_workflow_runner=runner,
    ):
        prefix = uuid.uuid4().hex[:8]
        await client.execute_workflow(
            InfoParent.run,
            id=f"{prefix}-parent",
            task_queue=task_queue,
            memo={"k": [1, 2]},
            search_attributes=temporalio.common.TypedSearchAttributes(
                [temporalio.common.SearchAttributePair(keyword, "kw")]  # type: ignore[arg-type]
            ),
            execution_timeout=timedelta(minutes=5),
            run_timeout=timedelta(minutes=4),
            task_timeout=timedelta(seconds=7),
            priority=temporalio.common.Priority(priority_key=2),
        )
        assert (
            await client.execute_workflow(
                InfoRetried.run,
                id=f"{prefix}-retried",
                task_queue=task_queue,
                retry_policy=temporalio.common.RetryPolicy(
                    initial_interval=timedelta(milliseconds=10), maximum_attempts=2
                ),
            )
            == 2
        )
        await client.execute_workflow(
            InfoContinued.run, 2, id=f"{prefix}-continued", task_queue=task_queue
        )

    shapes = {
        "parent and root": lambda d: d.info.parent is not None and d.info.root is not None,
        "memo": lambda d: bool(d.info.raw_memo),
        "search attributes": lambda d: len(d.info.typed_search_attributes) > 0,
        "execution timeout": lambda d: d.info.execution_timeout is not None,
        "retry policy": lambda d: d.info.retry_policy is not None,
        "retried attempt with last failure": lambda d: d.info.attempt == 2
        and d.last_failure is not None,
        "continued run": lambda d: d.info.continued_run_id is not None,
    }
    covered = {name for name, has in shapes.items() if any(has(det) for det, _ in runner.seen)}
    assert covered == set(shapes), f"shapes not exercised: {set(shapes) - covered}"

    assert len(runner.seen) >= 7
    for det, act in runner.seen:
        rebuilt = details_from_activation(
            act, namespace=det.info.namespace, task_queue=det.info.task_queue
        )
        for field in dataclasses.fields(det.info):
            assert getattr(rebuilt.info, field.name) == getattr(det.info, field.name), (
                f"Info.{field.name} of {det.info.workflow_type}"
            )
        assert rebuilt.info == det.info
        assert rebuilt.randomness_seed == det.randomness_seed
        assert rebuilt.last_completion_result == det.last_completion_result
        assert rebuilt.last_failure == det.last_failure


def test_an_activation_without_initialize_job_is_refused_clearly() -> None:
    act = wfact.WorkflowActivation(run_id="r1")
    act.jobs.add().fire_timer.seq = 1
    with pytest.raises(ValueError, match="run r1 has no InitializeWorkflow job"):
        details_from_activation(act, namespace="default", task_queue="q")
