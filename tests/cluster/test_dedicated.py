"""Dedicated placement: runs that ask for it get a Ray actor of their own, from a warm pool, and the
actor is recycled for a later run once the first is evicted."""

from __future__ import annotations

import asyncio
import uuid

import pytest
from temporalio.client import Client
from temporalio.worker import Worker

from bench.workloads import hosting as wf
from temporay import RayWorkflowRunner

pytestmark = pytest.mark.timeout(300)


async def test_dedicated_runs_get_their_own_recycled_actor(
    client: Client, ray_cluster: None, task_queue: str
) -> None:
    # The class, as Worker(workflows=[...]) takes it (a type name works too).
    runner = RayWorkflowRunner(shards=1, dedicated=[wf.SignalQueryWorkflow], dedicated_warm=2)
    async with runner, Worker(
        client,
        task_queue=task_queue,
        workflows=[wf.SignalQueryWorkflow, wf.NoopWorkflow],
        workflow_runner=runner,
    ):
        # Two concurrent dedicated runs: two different actors, none of them the shared shard.
        first = [
            await client.start_workflow(
                wf.SignalQueryWorkflow.run, id=f"ded-{i}-{uuid.uuid4().hex[:6]}", task_queue=task_queue
            )
            for i in range(2)
        ]
        for h in first:
            assert await h.query(wf.SignalQueryWorkflow.items) == []
        placed = {r.key.run_id: r.shard_name for r in runner._runs.all()}
        names = {placed[h.result_run_id] for h in first if h.result_run_id in placed}
        assert len(names) == 2
        assert all(n.startswith("temporay-dedicated-") for n in names)
        # A run of another type stays on the shared shard.
        assert await client.execute_workflow(
            wf.NoopWorkflow.run, id=f"shared-{uuid.uuid4().hex[:6]}", task_queue=task_queue
        ) == "done"
        for h in first:
            await h.signal(wf.SignalQueryWorkflow.finish)
            assert await h.result() == []
        # Completed runs are evicted; their actors return to the pool and serve the next runs.
        dedicated = runner._state.dedicated
        assert dedicated is not None
        for _ in range(100):
            if not any(r.dedicated for r in runner._runs.all()):
                break
            await asyncio.sleep(0.05)
        later = await client.start_workflow(
            wf.SignalQueryWorkflow.run, id=f"ded-later-{uuid.uuid4().hex[:6]}", task_queue=task_queue
        )
        assert await later.query(wf.SignalQueryWorkflow.items) == []
        reused = next(r.shard_name for r in runner._runs.all() if r.key.run_id == later.result_run_id)
        assert reused in names, "a recycled actor served the later run"
        await later.signal(wf.SignalQueryWorkflow.finish)
        assert await later.result() == []
        actors = {c.member.name for c in dedicated.channels()}
        assert actors <= names | {n for n in actors if n.startswith("temporay-dedicated-")}
        assert len(actors) <= 4  # two in use at most, plus the two kept warm
