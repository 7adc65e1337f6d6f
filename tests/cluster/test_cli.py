"""The `temporay` command: a fleet of two Worker actors on one task queue serves workflows;
`temporay status` describes it; SIGTERM drains and stops every actor."""

from __future__ import annotations

import asyncio
import json
import signal
import subprocess
import sys
import time
import uuid
from typing import Any

import pytest
import ray
from ray.util.state import list_actors
from temporalio.client import Client

from bench.workloads import hosting as wf
from temporay.cluster.cli import load_objects

pytestmark = pytest.mark.timeout(400)


def test_load_objects_finds_workflows_and_activities() -> None:
    workflows = load_objects(["bench.workloads.hosting"], "workflow")
    assert wf.NoopWorkflow in workflows and wf.ActivityWorkflow in workflows
    assert load_objects(["bench.workloads.hosting:charge"], "activity") == [wf.charge]
    activities = load_objects(["bench.workloads.hosting"], "activity")
    assert set(activities) == set(wf.ALL_ACTIVITIES)


def _read_json_line(proc: subprocess.Popen[str], timeout: float) -> dict[str, Any]:
    assert proc.stdout is not None
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        line = proc.stdout.readline()
        if not line:
            break
        if line.startswith("{"):
            return dict(json.loads(line))
    raise AssertionError(f"no JSON line from the fleet (exit {proc.poll()})")


def _our_registries(gcs: str, prefixes: set[str]) -> list[dict[str, Any]]:
    """What ``temporay status`` says of the registries of the routers named by ``prefixes``."""
    status = subprocess.run(
        [sys.executable, "-m", "temporay.cluster.cli", "status", "--ray-address", gcs],
        capture_output=True, text=True, timeout=120,
    )
    described = json.loads(status.stdout)
    return [d for d in described if d["registry"].split("-")[-1] in prefixes]


async def test_a_fleet_of_two_routers_serves_and_stops_cleanly(
    client: Client, ray_cluster: None, task_queue: str
) -> None:
    address = client.service_client.config.target_host
    gcs = ray.get_runtime_context().gcs_address
    proc = subprocess.Popen(
        [
            sys.executable, "-m", "temporay.cluster.cli", "worker",
            "--temporal-address", address, "--task-queue", task_queue,
            "--workflows", "bench.workloads.hosting", "--activities", "bench.workloads.hosting",
            "--replicas", "2", "--shards", "1", "--ray-address", gcs,
        ],
        stdout=subprocess.PIPE,
        stderr=None,
        text=True,
    )
    try:
        started = await asyncio.to_thread(_read_json_line, proc, 180)
        assert started["routers"] == 2 and len(set(started["router_ids"])) == 2
        results = await asyncio.gather(
            *(
                client.execute_workflow(
                    wf.ActivityWorkflow.run, wf.Order(f"o{i}", i),
                    id=f"fleet-{i}-{uuid.uuid4().hex[:6]}", task_queue=task_queue,
                )
                for i in range(20)
            )
        )
        assert results == [f"charged o{i}:{i}" for i in range(20)]
        prefixes = {rid[:8] for rid in started["router_ids"]}
        # Routers tell their registry about shards with fire-and-forget actor calls: wait (a
        # bounded time) until both registries have heard of theirs.
        end = time.monotonic() + 60
        while True:
            ours = await asyncio.to_thread(_our_registries, gcs, prefixes)
            if len(ours) == 2 and all(d["describe"]["shards"] for d in ours):
                break
            if time.monotonic() > end:
                break
            await asyncio.sleep(1.0)
        assert len(ours) == 2
        assert all(d["describe"]["shards"] for d in ours), json.dumps(ours, indent=1)[:4000]
        proc.send_signal(signal.SIGTERM)
        assert await asyncio.to_thread(proc.wait, 120) == 128 + signal.SIGTERM  # drained, then 143
    finally:
        if proc.poll() is None:
            proc.kill()
    end = time.monotonic() + 60
    alive: list[str] = []
    while time.monotonic() < end:
        actors = list_actors(filters=[("state", "!=", "DEAD")], limit=10000)
        alive = [a.name for a in actors if a.name and any(p in a.name for p in prefixes)]
        alive += [a.name for a in actors if a.name and a.name.startswith("temporay-router-")]
        if not alive:
            break
        await asyncio.sleep(0.5)
    assert alive == []
