"""No actor outlives its runner: after close(), after the plugin's exit, when nobody closes it (the
finalizer), and when the driver process dies. Checked with Ray's State API."""

from __future__ import annotations

import asyncio
import gc
import subprocess
import sys
import textwrap
import time
import uuid

import pytest
import ray
from ray.util.state import list_actors
from temporalio.client import Client
from temporalio.worker import Worker

from bench.workloads import hosting as wf
from temporay import RayPlugin, RayWorkflowRunner

pytestmark = pytest.mark.timeout(300)


def _alive_actors(router_prefix: str) -> list[str]:
    actors = list_actors(filters=[("state", "!=", "DEAD")], limit=10000, raise_on_missing_output=False)
    return [
        a.name or a.class_name
        for a in actors
        if a.name and router_prefix in a.name
    ]


def _wait_until_gone(router_prefix: str, timeout: float = 60.0) -> list[str]:
    end = time.monotonic() + timeout
    alive = _alive_actors(router_prefix)
    while alive and time.monotonic() < end:
        time.sleep(0.5)
        alive = _alive_actors(router_prefix)
    return alive


def test_close_kills_every_actor(ray_cluster: None) -> None:
    runner = RayWorkflowRunner(shards=2).start()
    prefix = runner.router_id[:8]
    assert len(_alive_actors(prefix)) == 3  # two shards and the registry
    runner.close()
    assert _wait_until_gone(prefix) == []


def test_finalizer_kills_actors_of_a_runner_nobody_closed(ray_cluster: None) -> None:
    runner = RayWorkflowRunner(shards=1).start()
    prefix = runner.router_id[:8]
    assert _alive_actors(prefix)
    del runner
    gc.collect()
    assert _wait_until_gone(prefix) == []


async def test_plugin_exit_drains_runs_and_kills_actors(
    client: Client, ray_cluster: None, task_queue: str
) -> None:
    worker = Worker(
        client,
        task_queue=task_queue,
        workflows=[wf.SignalQueryWorkflow],
        plugins=[RayPlugin(shards=2)],
    )
    async with worker:
        runner = worker.config(active_config=True)["workflow_runner"]
        assert isinstance(runner, RayWorkflowRunner)
        handle = await client.start_workflow(
            wf.SignalQueryWorkflow.run, id=f"drain-{uuid.uuid4().hex[:8]}", task_queue=task_queue
        )
        await handle.signal(wf.SignalQueryWorkflow.add, "cached")
        assert await handle.query(wf.SignalQueryWorkflow.items) == ["cached"]
        prefix = runner.router_id[:8]
        assert len(_alive_actors(prefix)) == 3
    # The run was still cached (sdk-core does not evict at shutdown): the plugin drained it.
    assert await asyncio.to_thread(_wait_until_gone, prefix) == []
    await handle.terminate("test done")


def test_actors_die_with_a_driver_that_crashes(ray_cluster: None, tmp_path: object) -> None:
    address = ray.get_runtime_context().gcs_address
    script = textwrap.dedent(
        f"""
        import os, sys
        import ray
        from temporay import RayWorkflowRunner
        ray.init(address={address!r}, logging_level="error")
        runner = RayWorkflowRunner(shards=2).start()
        print(runner.router_id, flush=True)
        os._exit(1)  # the driver dies without closing anything
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=180
    )
    router_id = done.stdout.strip().splitlines()[-1]
    assert len(router_id) == 32, done.stderr[-2000:]
    assert _wait_until_gone(router_id[:8], timeout=120) == []
