"""``RayPlugin``: the one line a user adds to a Worker to run its workflows on Ray."""

from __future__ import annotations

import asyncio
import os
import weakref
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Any

import temporalio.worker
from temporalio.client import WorkflowHistory
from temporalio.worker import Replayer, ReplayerConfig, Worker, WorkerConfig, WorkflowReplayResult

from .executor import DEFAULT_MAX_WORKERS, HopExecutor
from .runner import RayWorkflowRunner


class RayPlugin(temporalio.worker.Plugin):
    """Runs every workflow of the Worker on Ray shard actors.

    ``Worker(client, ..., plugins=[RayPlugin(shards=8)])``. Keyword arguments are those of
    ``RayWorkflowRunner``; or pass ``runner=`` to share one you manage yourself (then you close
    it). The plugin sets both ``workflow_runner`` and ``unsandboxed_workflow_runner``, starts the
    shards before the Worker polls, and after it stops drains every cached run and kills the
    shards. A Worker given no ``workflow_task_executor`` gets a ``HopExecutor`` (sized as the
    SDK sizes its own), shut down with the Worker.
    """

    def __init__(self, runner: RayWorkflowRunner | None = None, **runner_kwargs: Any) -> None:
        if runner is not None and runner_kwargs:
            raise TypeError("pass either runner= or RayWorkflowRunner arguments, not both")
        self._shared = runner
        self._kwargs = runner_kwargs
        self._executors: weakref.WeakSet[HopExecutor] = weakref.WeakSet()

    def _new_runner(self) -> RayWorkflowRunner:
        return self._shared if self._shared is not None else RayWorkflowRunner(**self._kwargs)

    def _owns(self, runner: RayWorkflowRunner) -> bool:
        return runner is not self._shared

    def configure_worker(self, config: WorkerConfig) -> WorkerConfig:
        runner = self._new_runner()
        if config.get("debug_mode") or os.environ.get("TEMPORAL_DEBUG"):
            # The Worker disables its deadlock detection in debug mode; so do we.
            runner.deadlock_budget = None
        config["workflow_runner"] = runner
        config["unsandboxed_workflow_runner"] = runner
        if config.get("workflow_task_executor") is None:
            executor = HopExecutor(config.get("max_concurrent_workflow_tasks") or DEFAULT_MAX_WORKERS)
            self._executors.add(executor)
            config["workflow_task_executor"] = executor
        return config

    async def run_worker(self, worker: Worker, next: Callable[[Worker], Awaitable[None]]) -> None:
        config = worker.config(active_config=True)
        runner = config.get("workflow_runner")
        executor = config.get("workflow_task_executor")
        try:
            if not isinstance(runner, RayWorkflowRunner):
                await next(worker)
                return
            await asyncio.to_thread(runner.start)
            bridge_worker = worker._bridge_worker
            runner.attach_worker(bridge_worker, asyncio.get_running_loop())
            try:
                await next(worker)
            finally:
                runner.detach_worker(bridge_worker)
                if self._owns(runner):
                    await asyncio.to_thread(runner.close)
        finally:
            if isinstance(executor, HopExecutor) and executor in self._executors:
                # The Worker shuts down only an executor it made itself.
                await asyncio.to_thread(executor.shutdown)

    def configure_replayer(self, config: ReplayerConfig) -> ReplayerConfig:
        runner = self._new_runner()
        config["workflow_runner"] = runner
        config["unsandboxed_workflow_runner"] = runner
        return config

    def run_replayer(
        self,
        replayer: Replayer,
        histories: AsyncIterator[WorkflowHistory],
        next: Callable[
            [Replayer, AsyncIterator[WorkflowHistory]],
            AbstractAsyncContextManager[AsyncIterator[WorkflowReplayResult]],
        ],
    ) -> AbstractAsyncContextManager[AsyncIterator[WorkflowReplayResult]]:
        runner = replayer.config(active_config=True).get("workflow_runner")

        @asynccontextmanager
        async def run() -> AsyncIterator[AsyncIterator[WorkflowReplayResult]]:
            if not isinstance(runner, RayWorkflowRunner):
                async with next(replayer, histories) as results:
                    yield results
                return
            await asyncio.to_thread(runner.start)
            try:
                async with next(replayer, histories) as results:
                    yield results
            finally:
                if self._owns(runner):
                    await asyncio.to_thread(runner.close)

        return run()
