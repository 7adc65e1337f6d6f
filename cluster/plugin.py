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

from temporay.cluster.executor import DEFAULT_MAX_WORKERS, HopExecutor
from temporay.cluster.runner import RayWorkflowRunner


def _mark_never_started(worker: Worker) -> None:
    """Let ``shutdown()`` and ``async with`` return for a Worker whose run ends before polling.

    The Worker sets its shutdown-complete event only once ``_run`` starts (or fails its own
    validation); a plugin that raises before calling ``next`` would otherwise leave
    ``async with worker`` waiting forever on the error it should raise."""
    event = getattr(worker, "_shutdown_complete_event", None)
    if isinstance(event, asyncio.Event):
        event.set()


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
        # Made now so that a bad option fails here, where it was given; the first Worker gets it.
        self._spare = RayWorkflowRunner(**runner_kwargs) if runner is None else None

    def _new_runner(self) -> RayWorkflowRunner:
        if self._shared is not None:
            runner = self._shared
        elif self._spare is not None:
            runner, self._spare = self._spare, None
        else:
            runner = RayWorkflowRunner(**self._kwargs)
        # Started when the Worker validates its workflows, without blocking its construction;
        # run_worker / run_replayer wait for it before anything polls.
        runner.start_in_background()
        return runner

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
            executor = HopExecutor(
                config.get("max_concurrent_workflow_tasks") or DEFAULT_MAX_WORKERS
            )
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
            try:
                await asyncio.wrap_future(runner.begin_start(retry_failed=False))
            except BaseException:
                _mark_never_started(worker)
                raise
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
            await asyncio.wrap_future(runner.begin_start(retry_failed=False))
            try:
                async with next(replayer, histories) as results:
                    yield results
            finally:
                if self._owns(runner):
                    await asyncio.to_thread(runner.close)

        return run()
