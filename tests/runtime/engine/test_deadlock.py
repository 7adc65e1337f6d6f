"""The Worker's deadlock detection with temporay's engine: the same task failure as with the SDK's
instance, carrying the stuck workflow's stack (found through ``get_thread_id``), and a run that
can still be evicted and retried afterwards."""

from __future__ import annotations

import asyncio
import time
import uuid
from typing import Any

import pytest
import temporalio.api.enums.v1
from temporalio import workflow
from temporalio.client import Client
from temporalio.worker import Worker

from tests.differential.harness import ENGINES, normalize_text

pytestmark = pytest.mark.timeout(120)


@workflow.defn
class DeadlockingWorkflow:
    @workflow.run
    async def run(self) -> str:
        if workflow.info().attempt == 1:
            blocking_call_in_workflow_code()
        return "recovered"


def blocking_call_in_workflow_code() -> None:
    time.sleep(2.6)


async def _first_task_failure(client: Client, engine: str) -> dict[str, Any]:
    task_queue = f"deadlock-{engine}-{uuid.uuid4().hex[:8]}"
    runner = ENGINES[engine]()
    async with Worker(
        client,
        task_queue=task_queue,
        workflows=[DeadlockingWorkflow],
        workflow_runner=runner,
        unsandboxed_workflow_runner=runner,
    ):
        handle = await client.start_workflow(
            DeadlockingWorkflow.run, id=f"{task_queue}-wf", task_queue=task_queue
        )
        failed = temporalio.api.enums.v1.EventType.EVENT_TYPE_WORKFLOW_TASK_FAILED
        for _ in range(400):
            events = (await handle.fetch_history()).events
            failures = [e for e in events if e.event_type == failed]
            if failures:
                failure = failures[0].workflow_task_failed_event_attributes.failure
                await handle.terminate("test done")
                return {
                    "message": normalize_text(failure.message),
                    "stack_names_workflow_frame": "blocking_call_in_workflow_code"
                    in failure.stack_trace,
                }
            await asyncio.sleep(0.05)
    raise AssertionError("no workflow task failure")


async def test_deadlock_fails_the_task_with_the_workflow_stack(client: Client) -> None:
    sdk = await _first_task_failure(client, "sdk")
    ours = await _first_task_failure(client, "temporay")
    assert sdk["message"].startswith("[TMPRL1101] Potential deadlock detected")
    assert sdk["stack_names_workflow_frame"]
    assert ours == sdk
