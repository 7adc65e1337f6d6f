"""Scenarios of a user's first minute with temporay, each in a fresh process of its own.

    python -m tests.e2e.scenarios.first_contact cold plugin|runner|async_with|replayer|replayer_runner
    python -m tests.e2e.scenarios.first_contact unreachable
    python -m tests.e2e.scenarios.first_contact placement
    python -m tests.e2e.scenarios.first_contact two_workers
    python -m tests.e2e.scenarios.first_contact join ADDRESS
    python -m tests.e2e.scenarios.first_contact cluster_lost

Each starts its own dev server (and, unless told an address, lets temporay start Ray), uses only
the public API, logs as a user's script would (``logging.basicConfig``), and prints one JSON
line with what it saw. tests/e2e/test_first_contact.py runs them and reads the line and the logs.
"""

from __future__ import annotations

import asyncio
import json
import logging
import socket
import sys
import time
import uuid
from typing import Any

from temporalio.api.enums.v1 import EventType
from temporalio.client import Client, WorkflowHistory
from temporalio.worker import Replayer, UnsandboxedWorkflowRunner, Worker

from temporay import (
    RayConnectError,
    RayPlugin,
    RayWorkflowRunner,
    ShardPlacementError,
)
from temporay.cluster.devserver import start_dev_server
from tests.e2e.scenarios.cold_workflows import ColdStartWorkflow, SlowWorkflow, add_one

WORKFLOWS = 20


async def _task_failures(client: Client, ids: list[str]) -> int:
    failed = 0
    for workflow_id in ids:
        history = await client.get_workflow_handle(workflow_id).fetch_history()
        failed += sum(
            1 for e in history.events if e.event_type == EventType.EVENT_TYPE_WORKFLOW_TASK_FAILED
        )
    return failed


async def _run_batch(client: Client, task_queue: str, count: int = WORKFLOWS) -> dict[str, Any]:
    """Start ``count`` workflows at once; the first result's latency and the task failures."""
    ids = [f"cold-{i}-{uuid.uuid4().hex[:6]}" for i in range(count)]
    started = time.perf_counter()
    first: list[float] = []

    async def one(i: int, workflow_id: str) -> int:
        result = await client.execute_workflow(
            ColdStartWorkflow.run, i, id=workflow_id, task_queue=task_queue
        )
        if not first:
            first.append(time.perf_counter() - started)
        return result

    results = await asyncio.gather(*(one(i, w) for i, w in enumerate(ids)))
    return {
        "completed": sum(1 for i, r in enumerate(results) if r == (i + 1) * 2),
        "first_latency_s": round(first[0], 2),
        "all_s": round(time.perf_counter() - started, 2),
        "task_failures": await _task_failures(client, ids),
        "ids": ids,
    }


async def cold(entry: str) -> dict[str, Any]:
    env = await start_dev_server()
    try:
        client = env.client
        task_queue = f"cold-{uuid.uuid4().hex[:6]}"
        common: dict[str, Any] = {
            "task_queue": task_queue,
            "workflows": [ColdStartWorkflow],
            "activities": [add_one],
        }
        if entry.startswith("replayer"):
            return await _cold_replay(client, entry, common)
        constructed = time.perf_counter()
        if entry == "plugin":
            worker = Worker(client, plugins=[RayPlugin()], **common)
            construction = time.perf_counter() - constructed
            async with worker:
                out = await _run_batch(client, task_queue)
        elif entry == "runner":
            # As SDK users pass SandboxedWorkflowRunner(): never closed by hand.
            worker = Worker(client, workflow_runner=RayWorkflowRunner(), **common)
            construction = time.perf_counter() - constructed
            async with worker:
                out = await _run_batch(client, task_queue)
        elif entry == "async_with":
            async with RayWorkflowRunner() as runner:
                worker = Worker(client, workflow_runner=runner, **common)
                construction = time.perf_counter() - constructed
                async with worker:
                    out = await _run_batch(client, task_queue)
        else:
            raise SystemExit(f"unknown entry {entry!r}")
        out["construction_s"] = round(construction, 2)
        del out["ids"]
        return out
    finally:
        await env.shutdown()


async def _cold_replay(client: Client, entry: str, common: dict[str, Any]) -> dict[str, Any]:
    # Histories made by the SDK's own runner; then replayed by a runner that starts cold.
    async with Worker(client, workflow_runner=UnsandboxedWorkflowRunner(), **common):
        made = await _run_batch(client, common["task_queue"])
    histories: list[WorkflowHistory] = [
        await client.get_workflow_handle(w).fetch_history() for w in made["ids"]
    ]
    if entry == "replayer":
        replayer = Replayer(workflows=[ColdStartWorkflow], plugins=[RayPlugin()])
    else:
        replayer = Replayer(workflows=[ColdStartWorkflow], workflow_runner=RayWorkflowRunner())
    started = time.perf_counter()
    first: list[float] = []
    failures: list[str] = []
    async with replayer.workflow_replay_iterator(_iterate(histories)) as results:
        async for result in results:
            if not first:
                first.append(time.perf_counter() - started)
            if result.replay_failure is not None:
                failures.append(str(result.replay_failure))
    return {
        "completed": len(histories) - len(failures),
        "first_latency_s": round(first[0], 2),
        "all_s": round(time.perf_counter() - started, 2),
        "task_failures": len(failures),
        "failures": failures[:3],
    }


async def _iterate(histories: list[WorkflowHistory]) -> Any:
    for history in histories:
        yield history


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def _plugin_error(client: Client, **plugin_kwargs: Any) -> dict[str, Any]:
    """What ``async with worker`` raises for a plugin that cannot start, and how fast."""
    started = time.perf_counter()
    try:
        worker = Worker(
            client,
            task_queue=f"bad-{uuid.uuid4().hex[:6]}",
            workflows=[ColdStartWorkflow],
            activities=[add_one],
            plugins=[RayPlugin(**plugin_kwargs)],
        )
        async with worker:
            await asyncio.sleep(600)
    except Exception as err:
        return {"error": type(err).__name__, "message": str(err),
                "seconds": round(time.perf_counter() - started, 2)}
    return {"error": None, "seconds": round(time.perf_counter() - started, 2)}


async def unreachable() -> dict[str, Any]:
    env = await start_dev_server()
    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen(8)  # accepts connections, never answers: a stranger on the port
    try:
        refused = f"127.0.0.1:{_free_port()}"
        out: dict[str, Any] = {
            "refused": await _plugin_error(env.client, address=refused),
            "silent": await _plugin_error(
                env.client, address=f"127.0.0.1:{silent.getsockname()[1]}"
            ),
            "not_ray": await _plugin_error(
                env.client, address=env.client.service_client.config.target_host
            ),
        }
        started = time.perf_counter()
        try:
            Worker(
                env.client,
                task_queue="bad-runner",
                workflows=[ColdStartWorkflow],
                workflow_runner=RayWorkflowRunner(address=refused),
            )
            out["runner"] = {"error": None}
        except RuntimeError as err:
            # The Worker wraps what prepare_workflow raises: "Failed validating workflow X".
            cause = err.__cause__
            out["runner"] = {
                "error": type(cause).__name__,
                "is_connect_error": isinstance(cause, RayConnectError),
                "message": str(cause),
                "seconds": round(time.perf_counter() - started, 2),
            }
        return out
    finally:
        silent.close()
        await env.shutdown()


async def placement() -> dict[str, Any]:
    env = await start_dev_server()
    try:
        out = await _plugin_error(
            env.client, shards=3, shard_num_cpus=1, ray_init_kwargs={"num_cpus": 2}
        )
        out["is_placement_error"] = out["error"] == ShardPlacementError.__name__
        return out
    finally:
        await env.shutdown()


async def two_workers() -> dict[str, Any]:
    """Two Workers with ``RayPlugin()`` in one process; the first (which started Ray) stops
    while both have workflows in flight; the second must finish all of its own."""
    import ray

    env = await start_dev_server()
    client = env.client
    queues = [f"two-{n}-{uuid.uuid4().hex[:6]}" for n in ("a", "b")]
    workers = [
        Worker(client, task_queue=q, workflows=[SlowWorkflow], activities=[add_one],
               plugins=[RayPlugin(shards=1)])
        for q in queues
    ]
    out: dict[str, Any] = {}
    try:
        first_run = asyncio.create_task(workers[0].run())
        second_run = asyncio.create_task(workers[1].run())
        handles = {
            q: [
                await client.start_workflow(
                    SlowWorkflow.run, i, id=f"{q}-{i}", task_queue=q
                )
                for i in range(20)
            ]
            for q in queues
        }
        await asyncio.sleep(3.0)  # both mid-load
        await workers[0].shutdown()
        await first_run
        out["ray_up_after_first_stopped"] = ray.is_initialized()
        results = await asyncio.wait_for(
            asyncio.gather(*(h.result() for h in handles[queues[1]])), 120
        )
        out["second_completed"] = sum(1 for i, r in enumerate(results) if r == i + 4)
        out["second_task_failures"] = await _task_failures(
            client, [h.id for h in handles[queues[1]]]
        )
        await workers[1].shutdown()
        await second_run
        out["ray_up_after_both_stopped"] = ray.is_initialized()
        return out
    finally:
        await env.shutdown()


async def join(address: str) -> dict[str, Any]:
    """``RayPlugin()`` against whatever cluster the environment names (RAY_ADDRESS, a cluster
    file, a token): either it serves 5 workflows or it raises one error."""
    env = await start_dev_server()
    try:
        task_queue = f"join-{uuid.uuid4().hex[:6]}"
        started = time.perf_counter()
        try:
            worker = Worker(env.client, task_queue=task_queue, workflows=[ColdStartWorkflow],
                            activities=[add_one],
                            plugins=[RayPlugin(address=address or None, shards=1)])
            async with worker:
                out = await _run_batch(env.client, task_queue, 5)
                del out["ids"]
        except Exception as err:
            return {"error": type(err).__name__, "message": str(err),
                    "seconds": round(time.perf_counter() - started, 2)}
        out["error"] = None
        return out
    finally:
        await env.shutdown()


async def cluster_lost() -> dict[str, Any]:
    """Ray shut down under a running Worker: the next workflow's task fails naming why."""
    import ray

    env = await start_dev_server()
    try:
        task_queue = f"lost-{uuid.uuid4().hex[:6]}"
        worker = Worker(env.client, task_queue=task_queue, workflows=[ColdStartWorkflow],
                        activities=[add_one], plugins=[RayPlugin(shards=1)])
        async with worker:
            before = await _run_batch(env.client, task_queue, 1)
            ray.shutdown()
            handle = await env.client.start_workflow(
                ColdStartWorkflow.run, 1, id=f"lost-{uuid.uuid4().hex[:6]}", task_queue=task_queue
            )
            message = ""
            for _ in range(100):
                history = await handle.fetch_history()
                failed = [e for e in history.events
                          if e.event_type == EventType.EVENT_TYPE_WORKFLOW_TASK_FAILED]
                if failed:
                    message = failed[0].workflow_task_failed_event_attributes.failure.message
                    break
                await asyncio.sleep(0.2)
            await handle.terminate()
        return {"before_completed": before["completed"], "failure": message}
    finally:
        await env.shutdown()


def main(argv: list[str]) -> None:
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    scenario, *rest = argv
    runners: dict[str, Any] = {
        "cold": lambda: cold(rest[0]),
        "unreachable": unreachable,
        "placement": placement,
        "two_workers": two_workers,
        "join": lambda: join(rest[0] if rest else ""),
        "cluster_lost": cluster_lost,
    }
    outcome = asyncio.run(runners[scenario]())
    print(json.dumps(outcome), flush=True)


if __name__ == "__main__":
    main(sys.argv[1:])
