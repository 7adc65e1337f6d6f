"""Shard metrics reach Ray's Prometheus endpoint (what the Ray dashboard's Metrics view and a
Prometheus server scrape), tagged by shard and never by run."""

from __future__ import annotations

import asyncio
import urllib.request
import uuid

import pytest
import ray
from temporalio.client import Client
from temporalio.worker import Worker

from bench.workloads import hosting as wf
from temporay import RayWorkflowRunner

pytestmark = pytest.mark.timeout(240)


def _scrape() -> list[str]:
    node = ray._private.worker.global_worker.node
    assert node is not None
    url = f"http://{node.node_ip_address}:{node.metrics_export_port}/metrics"
    body = urllib.request.urlopen(url, timeout=10).read().decode()
    return [line for line in body.splitlines() if "temporay_shard" in line and not line.startswith("#")]


async def test_shard_metrics_are_exported_by_ray(
    client: Client, ray_cluster: None, task_queue: str
) -> None:
    async with RayWorkflowRunner(shards=1) as runner, Worker(
        client, task_queue=task_queue, workflows=[wf.ActivityWorkflow],
        activities=wf.ALL_ACTIVITIES, workflow_runner=runner,
    ):
        shard = runner._pool().channels()[0].member.name
        for i in range(3):
            await client.execute_workflow(
                wf.ActivityWorkflow.run, wf.Order("m", i), id=f"metrics-{uuid.uuid4().hex[:8]}",
                task_queue=task_queue,
            )
        ours: list[str] = []
        for _ in range(60):
            ours = [line for line in await asyncio.to_thread(_scrape) if f'shard="{shard}"' in line]
            if any(line.startswith("ray_temporay_shard_activations_total") for line in ours):
                break
            await asyncio.sleep(1)
    activations = [line for line in ours if line.startswith("ray_temporay_shard_activations_total")]
    assert activations, ours
    assert float(activations[0].rsplit(" ", 1)[1]) >= 6  # two activations per workflow
    assert all("run_id" not in line and "workflow_id" not in line for line in ours)
