"""The runs one ``RayWorkflowRunner`` hosts: made, marked lost, evicted, reported to the registry.

Runs are made on the Worker's event loop (``create_instance``) and looked up from other threads
(a shard pool's when a shard is lost, the janitor's, ``close``), so the table has a lock of its
own. Placements and removals are only noted here; the janitor reports them to the registry in
batches, as no activation may wait for a registry call.

When a shard is lost its idle runs are evicted through the Worker's core, which replays them on
live shards without failing a workflow task; a busy run fails its current task instead.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import threading
from collections.abc import Callable
from typing import Any

from temporalio.worker import WorkflowInstanceDetails

from temporay.actors.wire import RunKey
from temporay.cluster.remote_run import RemoteRun, RunHost
from temporay.cluster.routing import ShardMember
from temporay.cluster.templates import TemplateCache
from temporay.runtime.hosting.externs import METRIC_METER_EXTERN, MetricReplayer

logger = logging.getLogger(__name__)

Placement = tuple[str, str, str, str]
"""What the registry is told of a placed run: run id, workflow id, workflow type, shard name."""


class RunDirectory:
    """The runs of one runner, by run key, and the Workers that can evict them."""

    def __init__(self, router_id: str) -> None:
        self._router_id = router_id
        self._runs: dict[RunKey, RemoteRun] = {}
        self._lock = threading.Lock()
        # Core may create a run again right after evicting it: the new one gets a key of its own.
        self._incarnations = itertools.count(1)
        self._templates = TemplateCache()
        self._metric_replayers: dict[int, MetricReplayer] = {}
        self._placements: list[Placement] = []
        self._removals: list[str] = []
        self._evictors: list[tuple[Any, asyncio.AbstractEventLoop]] = []

    def create(self, host: RunHost, det: WorkflowInstanceDetails) -> RemoteRun:
        """A new run's proxy, with its key and template; nothing remote happens here."""
        key = RunKey(self._router_id, det.info.run_id, next(self._incarnations))
        run = RemoteRun(
            host,
            key,
            det,
            self._templates.blob_for(det),
            self._metric_replayer(det.extern_functions.get(METRIC_METER_EXTERN)),
        )
        with self._lock:
            self._runs[key] = run
        return run

    def all(self) -> list[RemoteRun]:
        with self._lock:
            return list(self._runs.values())

    def take_all(self) -> list[RemoteRun]:
        """Every run, leaving the directory empty (the runner is closing)."""
        with self._lock:
            runs = list(self._runs.values())
            self._runs.clear()
        return runs

    def mark_all_lost(self, reason: str) -> int:
        """Every run fails its next task with ``reason``; how many there are."""
        runs = self.all()
        for run in runs:
            run.lost = reason
        return len(runs)

    # --- evictions ----------------------------------------------------------------------------------

    def attach_worker(self, bridge_worker: Any, loop: asyncio.AbstractEventLoop) -> None:
        self._evictors.append((bridge_worker, loop))

    def detach_worker(self, bridge_worker: Any) -> None:
        self._evictors = [(w, lp) for (w, lp) in self._evictors if w is not bridge_worker]

    def _request_eviction(self, run_id: str) -> bool:
        requested = False
        for bridge_worker, loop in list(self._evictors):
            try:
                loop.call_soon_threadsafe(bridge_worker.request_workflow_eviction, run_id)
                requested = True
            except RuntimeError:
                pass  # loop closed
        return requested

    def shard_lost(self, member: ShardMember) -> None:
        """Every run of a lost shard: mark lost, and ask core to evict the idle ones now."""
        with self._lock:
            lost = [r for r in self._runs.values() if r.shard_name == member.name]
        evicted = 0
        for run in lost:
            run.lost = f"its shard {member.name} was lost"
            if not run.busy and self._request_eviction(run.key.run_id):
                evicted += 1
        logger.warning(
            "Shard %s lost with %d runs; %d evicted through the Worker, the rest fail their next "
            "task and are replayed on live shards",
            member.name,
            len(lost),
            evicted,
        )

    # --- the registry's view --------------------------------------------------------------------------

    def placed(self, run: RemoteRun) -> None:
        info = run.get_info()
        self._placements.append(
            (run.key.run_id, info.workflow_id, info.workflow_type, run.shard_name)
        )

    def forget(self, run: RemoteRun) -> None:
        with self._lock:
            self._runs.pop(run.key, None)
        if run.shard_name:
            self._removals.append(run.key.run_id)

    def has_report(self) -> bool:
        """Whether placements or removals wait to be reported."""
        return bool(self._placements or self._removals)

    def take_report(self) -> tuple[list[Placement], list[str]]:
        """The placements and removed run ids noted since the last report."""
        placed, self._placements = self._placements, []
        removed, self._removals = self._removals, []
        return placed, removed

    def _metric_replayer(self, det_meter_fn: Callable[[], Any] | None) -> MetricReplayer | None:
        if det_meter_fn is None:
            return None
        key = id(det_meter_fn)
        replayer = self._metric_replayers.get(key)
        if replayer is None:
            replayer = MetricReplayer(det_meter_fn())
            self._metric_replayers[key] = replayer
        return replayer
