"""``RayWorkflowRunner``: a ``temporalio.worker.WorkflowRunner`` whose runs live on Ray shard actors.

The Worker keeps doing what it does (pollers, sdk-core, codec, sticky cache); each run it creates
is a ``RemoteRun`` proxy (``remote_run.py``) and every activation is one hop to the shard hosting
the run. The runner owns the lifecycle: connecting to Ray, the shard pools, placement, the
registry, asking the Worker's core to evict runs of a lost shard, and teardown. Beside it:
starting and tearing down its Ray side (``runner_start.py``), the runs it hosts
(``run_directory.py``) and dedicated placement (``dedicated.py``).
"""

from __future__ import annotations

import asyncio
import logging
import threading
import uuid
import weakref
from collections.abc import Sequence
from concurrent.futures import Future
from types import TracebackType
from typing import Any

import ray
import temporalio.workflow
from temporalio.worker import WorkflowInstance, WorkflowInstanceDetails, WorkflowRunner

from temporay.cluster.connect import DEFAULT_CONNECT_TIMEOUT_S, acquire_ray, release_ray
from temporay.cluster.dedicated import (
    DedicatedOption,
    DedicatedPool,
    needs_dedicated,
    normalize_dedicated,
    start_dedicated_pool,
    wants_dedicated,
)
from temporay.cluster.janitor import Janitor
from temporay.cluster.main_script import check_main_guard
from temporay.cluster.options import validate_runner_options
from temporay.cluster.pool import NoLiveShardError, ShardPool
from temporay.cluster.remote_run import RemoteRun, RunnerClosedError, ShardLostError
from temporay.cluster.routing import ShardChannel, ShardMember
from temporay.cluster.run_directory import RunDirectory
from temporay.cluster.runner_start import (
    RunnerState,
    ShardOptions,
    StartOnce,
    abandon_start,
    start_shards,
    teardown,
    warn_if_unshipped,
    weak_callback,
)
from temporay.runtime.engines import EngineSpec
from temporay.runtime.local_runner import LocalWorkflowRunner

logger = logging.getLogger(__name__)

DEFAULT_DEADLOCK_BUDGET_S = 1.75
"""Below the Worker's own 2 s deadlock timeout, leaving room to answer with a clear failure."""


CLUSTER_LOST = "the Ray cluster this runner used was shut down under it"


class RayWorkflowRunner(WorkflowRunner):
    """Hosts workflow runs on Ray shard actors.

    Args:
        address: Ray cluster to connect to; ``None``: this process's connection if it has one,
            else ``RAY_ADDRESS``, else a running ``ray start`` cluster, else a local cluster
            that temporay starts (and stops when the last runner using it closes).
        shards: Number of shard actors; defaults to the cluster's CPUs.
        connect_timeout: Seconds to reach an existing Ray cluster before failing with one
            ``RayConnectError`` (a local cluster gets longer to start).
        shard_start_timeout: Seconds for the shards to start (e.g. waiting for resources)
            before failing with ``ShardStartError`` (which names the CPU wanted and free).
        engine: What runs workflow code inside a shard: ``"temporay"`` (our runtime, the
            default), ``"sdk"`` (the SDK's own instance) or any ``WorkflowRunner`` instance, e.g.
            the SDK's ``SandboxedWorkflowRunner()``.
        isolation, shims, strict, restrict_io, shared_modules, isolated_modules: temporay's
            per-run isolation and deterministic shims around the engine, as in
            ``LocalWorkflowRunner`` (on by default; the SDK's sandbox engine isolates itself).
        runtime_env: Ray runtime environment for shards. By default every non-installed package
            holding workflow code is shipped as ``py_modules``; give ``working_dir`` or
            ``py_modules`` to decide yourself.
        namespace: Ray namespace of the actors.
        shard_threads: Threads per shard for concurrent activations.
        shard_num_cpus: Logical CPUs each shard reserves (default 0: shards host runs and use
            CPU as their workflows do, so several runners can share a small cluster; give 1 to
            have shards claim cores, e.g. for an autoscaler to add nodes).
        deadlock_budget: Seconds an activation may take before it fails as a deadlock (the
            Worker's own limit is 2 s); ``None`` disables it (debug mode).
        max_inflight_per_shard: Requests in flight per shard before activations are batched.
        max_batch: Largest batch sent to one shard in one request.
        transport: How activations travel to shards: ``"socket"`` (a direct connection to the
            shard, set up through Ray; the default) or ``"ray"`` (Ray actor calls).
        dedicated: Runs that get a Ray actor of their own instead of a place on a shard: workflow
            type names, or a predicate on the run's ``Info``; classes decorated with
            ``temporay.dedicated_actor`` always do. Dedicated actors come from a warm pool
            (``dedicated_warm``) and are recycled (up to ``dedicated_max_idle`` idle);
            ``dedicated_actor_options`` are their Ray options (default ``{"num_cpus": 0}``).
        ray_init_kwargs: Extra ``ray.init`` arguments when this runner connects or starts Ray.
    """

    def __init__(
        self,
        address: str | None = None,
        shards: int | None = None,
        engine: EngineSpec | None = None,
        *,
        isolation: bool = True,
        shims: bool = True,
        strict: bool = False,
        restrict_io: bool = True,
        shared_modules: Sequence[str] = (),
        isolated_modules: Sequence[str] = (),
        runtime_env: dict[str, Any] | None = None,
        namespace: str = "temporay",
        shard_threads: int = 32,
        shard_num_cpus: float = 0.0,
        deadlock_budget: float | None = DEFAULT_DEADLOCK_BUDGET_S,
        max_inflight_per_shard: int = 2,
        max_batch: int = 256,
        transport: str = "socket",
        dedicated: DedicatedOption = (),
        dedicated_warm: int = 1,
        dedicated_max_idle: int = 4,
        dedicated_actor_options: dict[str, Any] | None = None,
        ray_init_kwargs: dict[str, Any] | None = None,
        connect_timeout: float = DEFAULT_CONNECT_TIMEOUT_S,
        shard_start_timeout: float = 60.0,
    ) -> None:
        validate_runner_options(
            address=address,
            shards=shards,
            shard_threads=shard_threads,
            shard_num_cpus=shard_num_cpus,
            deadlock_budget=deadlock_budget,
            max_inflight_per_shard=max_inflight_per_shard,
            max_batch=max_batch,
            transport=transport,
            namespace=namespace,
            runtime_env=runtime_env,
            dedicated_warm=dedicated_warm,
            dedicated_max_idle=dedicated_max_idle,
            ray_init_kwargs=ray_init_kwargs,
            connect_timeout=connect_timeout,
            shard_start_timeout=shard_start_timeout,
        )
        self.router_id = uuid.uuid4().hex
        self._address = address
        # The engine wrapped in our isolation: built here to validate definitions at Worker
        # construction, and rebuilt in every shard from its (picklable) arguments.
        self._local_runner = LocalWorkflowRunner(
            engine,
            isolation=isolation,
            shims=shims,
            strict=strict,
            restrict_io=restrict_io,
            shared_modules=shared_modules,
            isolated_modules=isolated_modules,
        )
        self._shard_options = ShardOptions(
            count=shards,
            threads=shard_threads,
            num_cpus=shard_num_cpus,
            max_inflight=max_inflight_per_shard,
            max_batch=max_batch,
            namespace=namespace,
            runtime_env=runtime_env,
            transport=transport,
            start_timeout=shard_start_timeout,
        )
        self.deadlock_budget = deadlock_budget
        self._dedicated_spec = normalize_dedicated(dedicated)
        self._dedicated_warm = dedicated_warm
        self._dedicated_max_idle = dedicated_max_idle
        self._dedicated_options = dict(dedicated_actor_options or {"num_cpus": 0})
        self._ray_init_kwargs = ray_init_kwargs
        self._connect_timeout = connect_timeout
        # Where the start happens when nobody started the runner: on the Worker's construction
        # (blocking, like the SDK sandbox's validation), or in the background (RayPlugin, which
        # then waits for it before the Worker polls).
        self._start_in_background = False
        self._start_once: StartOnce[RayWorkflowRunner] = StartOnce()
        self._workflow_classes: dict[type, None] = {}  # a set that keeps their order
        self._start_lock = threading.RLock()
        self._state = RunnerState()
        self._runs = RunDirectory(self.router_id)
        self._finalizer = weakref.finalize(self, teardown, self._state)

    # --- WorkflowRunner -----------------------------------------------------------------------------

    def prepare_workflow(self, defn: temporalio.workflow._Definition) -> None:
        # Validate with the engine here, at Worker construction, rather than fail on every shard.
        check_main_guard(defn)
        self._local_runner.prepare_workflow(defn)
        self._workflow_classes[defn.cls] = None
        if self._state.pool is None and not self._state.closed:
            # No activation may wait for Ray inside the Worker's 2 s deadlock budget, and the
            # SDK gives a runner no asynchronous hook between construction and the first
            # activation: so the start happens here (see docs/design-notes.md, "Cold start").
            if self._start_in_background:
                self.begin_start(retry_failed=False)
            else:
                self.start()
        warn_if_unshipped(defn, self._state.shipped_roots)

    def set_worker_level_failure_exception_types(
        self, types: Sequence[type[BaseException]]
    ) -> None:
        self._local_runner.set_worker_level_failure_exception_types(types)

    def create_instance(self, det: WorkflowInstanceDetails) -> WorkflowInstance:
        # On the Worker's event loop: no Ray call here; the run is created by its first activation.
        if self._state.closed:
            raise RunnerClosedError("this RayWorkflowRunner was closed")
        return self._runs.create(self, det)

    # --- lifecycle ----------------------------------------------------------------------------------

    @property
    def started(self) -> bool:
        return self._state.pool is not None

    def start_in_background(self) -> None:
        """Start on the Worker's construction without blocking it (``RayPlugin`` then awaits
        ``begin_start()`` before the Worker polls)."""
        self._start_in_background = True

    def begin_start(self, retry_failed: bool = True) -> Future[RayWorkflowRunner]:
        """Start on a thread of its own; the future holds the runner or the start's error.

        A start already under way (or done) is shared; a failed one is tried again only with
        ``retry_failed``."""
        return self._start_once.begin(self._start_now, retry_failed)

    def start(self) -> RayWorkflowRunner:
        """Connect to Ray and start the shards (idempotent). Blocking: call it off the event loop.

        Raises ``RayConnectError`` when Ray cannot be reached within ``connect_timeout`` and
        ``ShardPlacementError`` when the cluster cannot hold the shards, ``ShardStartError``
        when they did not start within ``shard_start_timeout``."""
        return self._start_once.run(self._start_now)

    def _start_now(self) -> RayWorkflowRunner:
        with self._start_lock:
            if self._state.closed:
                raise RunnerClosedError("this RayWorkflowRunner was closed")
            if self._state.pool is not None:
                return self
            if self._state.cluster_lost:
                raise RunnerClosedError("this RayWorkflowRunner lost its Ray cluster")
            lease = acquire_ray(self._address, self._ray_init_kwargs, self._connect_timeout)
            try:
                self._start_shards()
            except BaseException:
                abandon_start(self._state)
                release_ray(lease)
                raise
            self._state.ray_lease = lease
        return self

    def _start_shards(self) -> None:
        start_shards(
            self.router_id,
            self._shard_options,
            self._local_runner,
            self._workflow_classes,
            self._state,
            # Only weak references from what teardown keeps (the pool) back to the runner, or
            # the finalizer could never run.
            on_shard_lost=weak_callback(self._shard_lost),
        )
        if needs_dedicated(self._dedicated_spec, self._workflow_classes):
            self._dedicated_pool()
        self._state.janitor = Janitor(self)
        self._state.janitor.start()

    def close(self, drain_timeout: float = 10.0) -> None:
        """Drain every run (unwinding its coroutines on its shard) and tear all actors down."""
        with self._start_lock:
            for run in self._runs.take_all():
                run.closed = True
            self._state.drain_timeout = drain_timeout
            self._finalizer()

    def _dedicated_pool(self) -> DedicatedPool:
        with self._start_lock:
            found = self._state.dedicated
            if found is not None:
                return found
            settings = self._state.settings
            if settings is None:
                raise RunnerClosedError("this RayWorkflowRunner is not started")
            pool = start_dedicated_pool(
                self.router_id,
                settings,
                registry=self._state.registry,
                on_lost=weak_callback(self._shard_lost),
                warm=self._dedicated_warm,
                max_idle=self._dedicated_max_idle,
                actor_options=self._dedicated_options,
            )
            self._state.dedicated = pool
            return pool

    # --- RunHost: what runs ask of their runner -----------------------------------------------------

    def place(self, run: RemoteRun) -> ShardChannel:
        if wants_dedicated(self._dedicated_spec, run.get_info(), run.workflow_class):
            run.dedicated = True
            self._pool()
            budget = self.deadlock_budget
            return self._dedicated_pool().acquire(timeout=budget / 2 if budget else 30.0)
        return self._pool().place()

    def place_at_once(self, run: RemoteRun) -> ShardChannel | None:
        pool = self._state.pool
        if pool is None or wants_dedicated(
            self._dedicated_spec, run.get_info(), run.workflow_class
        ):
            return None  # the shards are still to start, or the run waits for an actor of its own
        try:
            return pool.place()
        except NoLiveShardError:
            return None

    def unplace(self, run: RemoteRun, channel: ShardChannel) -> None:
        if run.dedicated:
            dedicated = self._state.dedicated
            if dedicated is not None:
                dedicated.release(channel)
            return
        pool = self._state.pool
        if pool is not None:
            pool.release(channel)

    @property
    def registry(self) -> Any:
        """The Registry actor handle (membership, stats, run directory)."""
        return self._state.registry

    def __enter__(self) -> RayWorkflowRunner:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    async def __aenter__(self) -> RayWorkflowRunner:
        await asyncio.to_thread(self.start)
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await asyncio.to_thread(self.close)

    # --- workers ------------------------------------------------------------------------------------

    def attach_worker(self, bridge_worker: Any, loop: asyncio.AbstractEventLoop) -> None:
        """Let the runner ask this Worker's core to evict runs (no task failure on shard loss)."""
        self._runs.attach_worker(bridge_worker, loop)

    def detach_worker(self, bridge_worker: Any) -> None:
        self._runs.detach_worker(bridge_worker)

    # --- internals ----------------------------------------------------------------------------------

    def _pool(self) -> ShardPool:
        pool = self._state.pool
        if self._state.cluster_lost:
            raise RunnerClosedError(CLUSTER_LOST)
        if pool is None:
            if self._state.closed:
                raise RunnerClosedError("this RayWorkflowRunner was closed")
            # Only for callers outside a Worker: prepare_workflow has started it for Workers.
            self.start()
            pool = self._state.pool
            assert pool is not None
        return pool

    def check_cluster(self) -> str | None:
        """A runner whose Ray went away under it (``ray.shutdown()`` elsewhere in the process)
        says so once and fails its runs' tasks clearly instead of waiting on dead actors.
        Returns why, once lost."""
        if self._state.cluster_lost:
            return CLUSTER_LOST
        if self._state.closed or self._state.pool is None or ray.is_initialized():
            return None
        self._state.cluster_lost = True
        logger.error(
            "RayWorkflowRunner %s: %s; its %d runs fail their workflow tasks until the Worker "
            "stops. Keep Ray up while a Worker uses it, or stop the Worker first.",
            self.router_id[:8],
            CLUSTER_LOST,
            self._runs.mark_all_lost(CLUSTER_LOST),
        )
        return CLUSTER_LOST

    def placed(self, run: RemoteRun) -> None:
        self._runs.placed(run)

    def forget(self, run: RemoteRun) -> None:
        self._runs.forget(run)

    def _shard_lost(self, member: ShardMember) -> None:
        self._runs.shard_lost(member)

    # --- chores (the janitor's) ---------------------------------------------------------------------

    def flush_disposals(self) -> None:
        for pool in (self._state.pool, self._state.dedicated):
            if pool is not None:
                pool.flush_disposals()

    def report_to_registry(self) -> None:
        registry = self._state.registry
        if registry is None or not self._runs.has_report():
            return
        placed, removed = self._runs.take_report()
        try:
            registry.report_runs.remote(self.router_id, placed, removed)
        except Exception:
            logger.debug("Reporting runs to the registry failed", exc_info=True)


__all__ = [
    "NoLiveShardError",
    "RayWorkflowRunner",
    "RemoteRun",
    "RunnerClosedError",
    "ShardLostError",
]
