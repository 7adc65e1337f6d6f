"""Crash safety: 200 mixed workflows over several shard processes, then 200 more with one shard
SIGKILLed in the middle. Every workflow completes with the right result; the worker shuts down
cleanly; the lost shard is replaced."""

from __future__ import annotations

import asyncio
import os
import signal
import time

import pytest
from temporalio.client import Client
from temporalio.worker import Worker

from bench.workloads import hosting as wf
from temporay import RayPlugin, RayWorkflowRunner
from temporay.proto import hosting as pb
from tests.support.mixed_load import MIXED_WORKFLOWS, run_mixed

pytestmark = pytest.mark.timeout(600)


async def _started(worker: Worker) -> RayWorkflowRunner:
    runner = worker.config(active_config=True)["workflow_runner"]
    assert isinstance(runner, RayWorkflowRunner)
    for _ in range(1200):
        if runner.started:
            return runner
        await asyncio.sleep(0.05)
    raise AssertionError("shards did not start")


async def test_sigkill_a_shard_in_the_middle_of_200_workflows(
    client: Client, ray_cluster: None, task_queue: str
) -> None:
    worker = Worker(
        client,
        task_queue=task_queue,
        workflows=MIXED_WORKFLOWS,
        activities=wf.ALL_ACTIVITIES,
        plugins=[RayPlugin(shards=3)],
        max_cached_workflows=1000,
    )
    shutdown_started = 0.0
    async with worker:
        runner = await _started(worker)
        warm = await run_mixed(client, task_queue, 200, "warm")
        assert [r for r, _ in warm] == [e for _, e in warm]
        channels = runner._pool().channels()
        assert len(channels) == 3
        assert sum(c.items for c in channels) >= 200
        assert all(c.items > 0 for c in channels), "every shard process served activations"

        victim = channels[0].member
        stats = pb.ShardStats.FromString(
            await asyncio.wrap_future(victim.handle.stats.remote().future())
        )
        wave = asyncio.create_task(run_mixed(client, task_queue, 200, "chaos"))
        # Kill once the victim holds runs of the second wave.
        for _ in range(400):
            if victim.runs >= 10:
                break
            await asyncio.sleep(0.02)
        assert victim.runs >= 10
        os.kill(stats.pid, signal.SIGKILL)
        chaos = await asyncio.wait_for(wave, timeout=400)
        assert [r for r, _ in chaos] == [e for _, e in chaos]
        assert not victim.alive
        for _ in range(600):
            if runner._pool().live_count() == 3:
                break
            await asyncio.sleep(0.1)
        assert runner._pool().live_count() == 3, "the lost shard was replaced"
        shutdown_started = time.monotonic()
    assert time.monotonic() - shutdown_started < 60
    assert not runner.started or runner._state.closed
