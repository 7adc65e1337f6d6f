"""What a user's logging sees of workflow runs, under the SDK's runner, ``LocalWorkflowRunner`` and
``RayPlugin``, in one fresh process with the user's own handler on the root logger.

    python -m tests.e2e.scenarios.log_records

Three workflows run under each runner, with ``max_cached_workflows=0`` so that every task after
the first replays the history (``workflow.logger`` must stay silent then): one that logs with
extras around an activity and a timer, one whose task fails, one sent a signal it cannot decode.
Prints one JSON line: per runner, the records the handler got from the SDK's runner logger,
``temporalio.workflow`` and the workflows' own logger, with run IDs and task queues replaced by
placeholders so the runners can be compared.
"""

from __future__ import annotations

import asyncio
import json
import logging
import uuid
from datetime import timedelta
from typing import Any

from temporalio import activity, workflow
from temporalio.api.enums.v1 import EventType
from temporalio.client import Client
from temporalio.worker import UnsandboxedWorkflowRunner, Worker

from temporay import LocalWorkflowRunner, RayPlugin
from temporay.cluster.devserver import start_dev_server

OWN_LOGGER = "tests.log_records.workflow_code"
WATCHED = ("temporalio.worker._workflow_instance", "temporalio.workflow", OWN_LOGGER)
KEPT_EXTRAS = ("temporal_workflow", "__temporal_error_identifier", "custom", "temporay_shard")


@activity.defn
async def shout(text: str) -> str:
    return text.upper()


@workflow.defn
class LoggingWorkflow:
    @workflow.run
    async def run(self, name: str) -> str:
        workflow.logger.info("starting for %s", name, extra={"custom": {"n": 7}})
        loud = await workflow.execute_activity(
            shout, name, start_to_close_timeout=timedelta(seconds=30)
        )
        workflow.logger.warning("activity said %s", loud)
        await asyncio.sleep(0.2)
        logging.getLogger(OWN_LOGGER).info("own logger, not replay-safe, after the timer")
        workflow.logger.info("done")
        return loud


@workflow.defn
class FailingTaskWorkflow:
    @workflow.run
    async def run(self) -> None:
        raise RuntimeError("boom in the workflow task")


@workflow.defn
class SignalledWorkflow:
    def __init__(self) -> None:
        self.number: int | None = None

    @workflow.signal
    def set_number(self, number: int) -> None:
        self.number = number

    @workflow.run
    async def run(self) -> int:
        await workflow.wait_condition(lambda: self.number is not None)
        assert self.number is not None
        return self.number


class Captured(logging.Handler):
    """The user's handler: keeps what a JSON formatter would print."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[dict[str, Any]] = []

    def emit(self, record: logging.LogRecord) -> None:
        if record.name not in WATCHED:
            return
        printed = logging.Formatter().format(record)
        traceback_lines = printed.split("Traceback (most recent call last):", 1)[1:]
        entry: dict[str, Any] = {
            "name": record.name,
            "level": record.levelname,
            "message": record.getMessage(),
            # The exception a formatter prints under the message (its last line), if any.
            "exception": traceback_lines[0].strip().splitlines()[-1] if traceback_lines else None,
        }
        for key in KEPT_EXTRAS:
            if key in record.__dict__:
                entry[key] = record.__dict__[key]
        self.records.append(entry)


async def _failed_tasks(client: Client, workflow_id: str) -> int:
    history = await client.get_workflow_handle(workflow_id).fetch_history()
    return sum(1 for e in history.events if e.event_type == EventType.EVENT_TYPE_WORKFLOW_TASK_FAILED)


async def _run_all(client: Client, task_queue: str) -> list[str]:
    """Run the three workflows; return their run IDs."""
    logged = await client.start_workflow(
        LoggingWorkflow.run, "ray", id="logs-logging", task_queue=task_queue
    )
    failing = await client.start_workflow(
        FailingTaskWorkflow.run, id="logs-failing", task_queue=task_queue
    )
    signalled = await client.start_workflow(
        SignalledWorkflow.run, id="logs-signalled", task_queue=task_queue
    )
    await signalled.signal("set_number", "not a number")  # cannot be decoded as an int: dropped
    await asyncio.sleep(0.5)
    await signalled.signal(SignalledWorkflow.set_number, 5)
    assert await logged.result() == "RAY"
    assert await signalled.result() == 5
    for _ in range(200):
        if await _failed_tasks(client, failing.id):
            break
        await asyncio.sleep(0.1)
    await failing.terminate("seen")
    return [h.result_run_id or "" for h in (logged, failing, signalled)]


def _normalized(records: list[dict[str, Any]], run_ids: list[str], task_queue: str) -> list[Any]:
    text = json.dumps(records, sort_keys=True)
    for i, run_id in enumerate(run_ids):
        text = text.replace(run_id, f"<run {i}>")
    return json.loads(text.replace(task_queue, "<task queue>"))


async def scenario() -> dict[str, Any]:
    captured = Captured()
    logging.getLogger().addHandler(captured)
    env = await start_dev_server()
    out: dict[str, Any] = {}
    try:
        for kind in ("sdk", "local", "ray"):
            task_queue = f"logs-{kind}-{uuid.uuid4().hex[:6]}"
            options: dict[str, Any] = {}
            if kind == "sdk":
                options["workflow_runner"] = UnsandboxedWorkflowRunner()
            elif kind == "local":
                options["workflow_runner"] = LocalWorkflowRunner()
            else:
                options["plugins"] = [RayPlugin(shards=1)]
            worker = Worker(
                env.client,
                task_queue=task_queue,
                workflows=[LoggingWorkflow, FailingTaskWorkflow, SignalledWorkflow],
                activities=[shout],
                max_cached_workflows=0,
                **options,
            )
            captured.records.clear()
            async with worker:
                run_ids = await _run_all(env.client, task_queue)
            out[kind] = _normalized(list(captured.records), run_ids, task_queue)
    finally:
        await env.shutdown()
    return out


def main() -> None:
    # The user's configuration: INFO and up, printed; the capturing handler is added beside it.
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    print(json.dumps(asyncio.run(scenario())), flush=True)


if __name__ == "__main__":
    main()
