"""A mixed load of workflows whose results are known in advance, for chaos and scale tests."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

from temporalio.client import Client

from bench.workloads import hosting as wf

MIXED_WORKFLOWS = [
    wf.NoopWorkflow,
    wf.ActivityWorkflow,
    wf.LocalActivityWorkflow,
    wf.TimerWorkflow,
    wf.ParentWorkflow,
    wf.ChildWorkflow,
    wf.ContinueAsNewWorkflow,
    wf.SignalQueryWorkflow,
    wf.CpuWorkflow,
]


def _cpu(rounds: int) -> int:
    total = 0
    for i in range(rounds):
        total = (total * 31 + i) % 1_000_003
    return total


async def _signal_flow(client: Client, task_queue: str, wid: str) -> list[str]:
    handle = await client.start_workflow(wf.SignalQueryWorkflow.run, id=wid, task_queue=task_queue)
    await handle.signal(wf.SignalQueryWorkflow.add, "x")
    await asyncio.sleep(0.2)
    await handle.signal(wf.SignalQueryWorkflow.add, "y")
    await handle.signal(wf.SignalQueryWorkflow.finish)
    return await handle.result()


def mixed_case(
    i: int, client: Client, task_queue: str, prefix: str
) -> tuple[Callable[[], Awaitable[Any]], Any]:
    """The i-th workflow of the mix: (coroutine factory running it to its result, expected result)."""
    wid = f"{prefix}-{i}-{uuid.uuid4().hex[:6]}"
    kind = i % 7
    order = wf.Order(f"o{i}", i)
    if kind == 0:
        return (
            lambda: client.execute_workflow(wf.ActivityWorkflow.run, order, id=wid, task_queue=task_queue),
            f"charged o{i}:{i}",
        )
    if kind == 1:
        return (
            lambda: client.execute_workflow(wf.TimerWorkflow.run, 4, id=wid, task_queue=task_queue),
            4,
        )
    if kind == 2:
        return (
            lambda: client.execute_workflow(wf.ParentWorkflow.run, 3, id=wid, task_queue=task_queue),
            6,
        )
    if kind == 3:
        return (
            lambda: client.execute_workflow(
                wf.ContinueAsNewWorkflow.run, args=[3, 0], id=wid, task_queue=task_queue
            ),
            6,
        )
    if kind == 4:
        return (lambda: _signal_flow(client, task_queue, wid), ["x", "y"])
    if kind == 5:
        return (
            lambda: client.execute_workflow(wf.CpuWorkflow.run, 3000 + i, id=wid, task_queue=task_queue),
            _cpu(3000 + i),
        )
    return (
        lambda: client.execute_workflow(wf.LocalActivityWorkflow.run, order, id=wid, task_queue=task_queue),
        f"charged o{i}:{i}",
    )


async def run_mixed(
    client: Client, task_queue: str, count: int, prefix: str, *, concurrency: int = 50
) -> list[tuple[Any, Any]]:
    """Run ``count`` mixed workflows; return (result, expected) pairs."""
    semaphore = asyncio.Semaphore(concurrency)

    async def one(i: int) -> tuple[Any, Any]:
        run, expected = mixed_case(i, client, task_queue, prefix)
        async with semaphore:
            return await run(), expected

    return list(await asyncio.gather(*(one(i) for i in range(count))))
