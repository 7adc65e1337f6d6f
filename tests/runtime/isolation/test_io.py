"""I/O from workflow code is refused with the SDK's RestrictedWorkflowAccessError."""

from __future__ import annotations

import asyncio
import os
import uuid
from datetime import timedelta

from temporalio.client import Client
from temporalio.worker import Worker

from temporay.runtime.local_runner import LocalWorkflowRunner
from tests.runtime.isolation.workflows import io_cases

_ALTERNATIVES = {
    "open_read": "activity",
    "open_write": "activity",
    "pathlib_read": "activity",
    "socket": "activity",
    "socket_connect": "activity",
    "urlopen": "activity",
    "subprocess": "activity",
    "os_system": "activity",
    "thread": "asyncio.create_task",
    "sleep": "workflow.sleep",
    "from_time_import_sleep": "workflow.sleep",
    "environ_write": "workflow input",
    "environ_delete": "workflow input",
    "os_remove": "activity",
}


async def test_each_io_case_is_refused_clearly(client: Client, task_queue: str) -> None:
    async with Worker(
        client,
        task_queue=task_queue,
        workflows=[io_cases.IOCasesWorkflow, io_cases.UnrestrictedIOWorkflow],
        workflow_runner=LocalWorkflowRunner(),
    ):
        result = await client.execute_workflow(
            io_cases.IOCasesWorkflow.run,
            list(io_cases.CASES),
            id=f"io-{uuid.uuid4()}",
            task_queue=task_queue,
        )
        unrestricted = await client.execute_workflow(
            io_cases.UnrestrictedIOWorkflow.run, id=f"io-u-{uuid.uuid4()}", task_queue=task_queue
        )
    assert set(result) == set(io_cases.CASES)
    for case, (error_type, message) in result.items():
        _, call = io_cases.CASES[case]
        assert error_type == "RestrictedWorkflowAccessError", (case, error_type, message)
        assert call in message, (case, message)
        assert _ALTERNATIVES[case] in message, (case, message)
    # Nothing happened.
    assert "TEMPORAY_ISOLATION_TEST" not in os.environ
    assert "HOME" in os.environ
    assert not os.path.exists("/tmp/temporay-isolation-should-not-exist")
    assert unrestricted == os.environ["HOME"]


async def test_uncaught_io_error_fails_the_task_and_is_retried(
    client: Client, task_queue: str
) -> None:
    async with Worker(
        client,
        task_queue=task_queue,
        workflows=[io_cases.UncaughtIOWorkflow],
        workflow_runner=LocalWorkflowRunner(),
    ):
        handle = await client.start_workflow(
            io_cases.UncaughtIOWorkflow.run,
            id=f"io-uncaught-{uuid.uuid4()}",
            task_queue=task_queue,
            execution_timeout=timedelta(seconds=60),
        )
        failure = None
        attempt = 0
        for _ in range(600):
            async for event in handle.fetch_history_events():
                if event.HasField("workflow_task_failed_event_attributes"):
                    failure = event.workflow_task_failed_event_attributes.failure
            description = await handle.describe()
            attempt = description.raw_description.pending_workflow_task.attempt
            if failure is not None and attempt >= 2:
                break
            await asyncio.sleep(0.05)
        await handle.terminate()
    assert failure is not None
    assert "socket.socket()" in failure.message and "activity" in failure.message
    assert failure.application_failure_info.type == "RestrictedWorkflowAccessError"
    assert attempt >= 2  # the server retried the task


async def test_io_allowed_without_restrictions(client: Client, task_queue: str) -> None:
    async with Worker(
        client,
        task_queue=task_queue,
        workflows=[io_cases.IOCasesWorkflow],
        workflow_runner=LocalWorkflowRunner(restrict_io=False),
    ):
        result = await client.execute_workflow(
            io_cases.IOCasesWorkflow.run,
            ["open_read", "pathlib_read"],
            id=f"io-off-{uuid.uuid4()}",
            task_queue=task_queue,
        )
    assert result == {"open_read": ["no error", ""], "pathlib_read": ["no error", ""]}
