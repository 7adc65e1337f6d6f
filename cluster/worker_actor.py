"""``WorkerActor``: one Temporal Worker (its gRPC pollers and sdk-core) living inside Ray.

A ``temporay worker`` fleet scales horizontally by running several Worker actors on the same
task queue; each owns its RayWorkflowRunner and therefore its shards (actors it creates die with
it), and is the router of its own Worker's activations only. In the embedded form the user's
process plays this part instead.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import ray

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class WorkerSpec:
    """What a Worker actor needs to run its Worker; pickled into the actor."""

    temporal_address: str
    namespace: str
    task_queue: str
    workflows: Sequence[type]
    activities: Sequence[Callable[..., Any]] = ()
    runner_options: dict[str, Any] = field(default_factory=dict)
    worker_options: dict[str, Any] = field(default_factory=dict)
    client_options: dict[str, Any] = field(default_factory=dict)


@ray.remote(num_cpus=0, max_concurrency=8)  # type: ignore[call-overload]
class WorkerActor:
    """Runs ``WorkerSpec``'s Worker with ``RayPlugin`` until ``shutdown()``."""

    def __init__(self, spec: WorkerSpec, name: str) -> None:
        self._spec = spec
        self._name = name
        self._worker: Any = None
        self._started = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._error: BaseException | None = None

    async def start(self) -> str:
        """Connect, build the Worker and start it; returns once its shards are up."""
        from temporalio.client import Client
        from temporalio.worker import Worker

        from temporay.cluster.plugin import RayPlugin
        from temporay.cluster.runner import RayWorkflowRunner

        spec = self._spec
        client = await Client.connect(
            spec.temporal_address, namespace=spec.namespace, **spec.client_options
        )
        self._worker = Worker(
            client,
            task_queue=spec.task_queue,
            workflows=list(spec.workflows),
            activities=list(spec.activities),
            plugins=[RayPlugin(**spec.runner_options)],
            **spec.worker_options,
        )
        self._task = asyncio.create_task(self._run())
        runner = self._worker.config(active_config=True)["workflow_runner"]
        assert isinstance(runner, RayWorkflowRunner)
        while not runner.started:
            if self._task.done():
                self._task.result()
            await asyncio.sleep(0.05)
        return runner.router_id

    async def _run(self) -> None:
        try:
            await self._worker.run()
        except BaseException as err:
            self._error = err
            logger.exception("Worker actor %s: the Worker stopped with an error", self._name)
            raise

    async def shutdown(self) -> None:
        """Stop polling, finish in-flight tasks, drain runs and kill this actor's shards."""
        if self._worker is not None and self._task is not None and not self._task.done():
            await self._worker.shutdown()
            try:
                await self._task
            except BaseException:
                pass

    async def status(self) -> dict[str, Any]:
        runner = None
        if self._worker is not None:
            runner = self._worker.config(active_config=True)["workflow_runner"]
        return {
            "name": self._name,
            "task_queue": self._spec.task_queue,
            "router_id": getattr(runner, "router_id", None),
            "running": self._task is not None and not self._task.done(),
            "error": repr(self._error) if self._error else None,
        }
