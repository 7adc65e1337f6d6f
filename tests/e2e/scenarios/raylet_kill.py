"""Scenario: a two-raylet Ray cluster on this machine; one raylet is killed while 200 mixed
workflows run on shards spread over both nodes. Prints one JSON line with the outcome.

Run by tests/e2e/test_multinode.py in its own process (it needs a Ray cluster of its own), and
runnable by hand: python -m tests.e2e.scenarios.raylet_kill
"""

from __future__ import annotations

import asyncio
import json
import logging
import sys
import time
import traceback

import ray
from ray.cluster_utils import Cluster
from temporalio.worker import Worker

from bench.workloads import hosting as wf
from temporay import RayPlugin, RayWorkflowRunner
from temporay.cluster.devserver import start_dev_server
from temporay.proto import hosting as pb
from tests.support.mixed_load import MIXED_WORKFLOWS, run_mixed


async def scenario(count: int) -> dict[str, object]:
    cluster = Cluster(
        initialize_head=True,
        head_node_args={"num_cpus": 3, "include_dashboard": False},
    )
    doomed = cluster.add_node(num_cpus=2)
    cluster.wait_for_nodes()
    ray.init(address=cluster.address, logging_level=logging.ERROR)
    env = await start_dev_server()
    outcome: dict[str, object] = {}
    try:
        worker = Worker(
            env.client,
            task_queue="raylet-kill",
            workflows=MIXED_WORKFLOWS,
            activities=wf.ALL_ACTIVITIES,
            plugins=[RayPlugin(shards=4)],
            max_cached_workflows=1000,
        )
        async with worker:
            runner = worker.config(active_config=True)["workflow_runner"]
            assert isinstance(runner, RayWorkflowRunner)
            while not runner.started:
                await asyncio.sleep(0.1)
            nodes: dict[str, str] = {}
            for channel in runner._pool().channels():
                stats = pb.ShardStats.FromString(
                    await asyncio.wrap_future(channel.member.handle.stats.remote().future())
                )
                nodes[channel.member.name] = stats.node_id
            doomed_id = doomed.node_id
            on_doomed = [name for name, node in nodes.items() if node == doomed_id]
            outcome["shards_on_killed_node"] = len(on_doomed)
            wave = asyncio.create_task(run_mixed(env.client, "raylet-kill", count, "rk"))
            victims = [c.member for c in runner._pool().channels() if c.member.name in on_doomed]
            for _ in range(500):
                if sum(m.runs for m in victims) >= 10:
                    break
                await asyncio.sleep(0.02)
            outcome["runs_on_killed_node"] = sum(m.runs for m in victims)
            killed_at = time.monotonic()
            cluster.remove_node(doomed, allow_graceful=False)
            pairs = await asyncio.wait_for(wave, timeout=600)
            outcome["seconds_after_kill"] = round(time.monotonic() - killed_at, 1)
            outcome["completed"] = len(pairs)
            outcome["correct"] = sum(1 for r, e in pairs if r == e)
            outcome["victims_marked_dead"] = all(not m.alive for m in victims)
            outcome["live_shards"] = runner._pool().live_count()
            shutdown_at = time.monotonic()
        outcome["shutdown_seconds"] = round(time.monotonic() - shutdown_at, 1)
    finally:
        await env.shutdown()
        ray.shutdown()
        cluster.shutdown()
    return outcome


async def main() -> None:
    try:
        outcome = await scenario(200)
    except BaseException:
        traceback.print_exc()
        sys.stderr.flush()
        raise
    print(json.dumps(outcome), flush=True)


if __name__ == "__main__":
    asyncio.run(main())
