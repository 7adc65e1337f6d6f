"""``RayWorkflowRunner``: a ``temporalio.worker.WorkflowRunner`` whose runs live on Ray shard actors.

The Worker keeps doing what it does (pollers, sdk-core, codec, sticky cache); each run it creates
is a ``RemoteRun`` proxy (``remote_run.py``) and every activation is one hop to the shard hosting
the run. The runner owns the lifecycle: connecting to Ray, the shard pools, placement, the
registry, asking the Worker's core to evict runs of a lost shard, and teardown.
"""

from __future__ import annotations

import asyncio
import dataclasses
import itertools
import logging
import threading
import uuid
import weakref
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from dataclasses import dataclass
from types import TracebackType
from typing import Any

import ray
import temporalio.workflow
from temporalio.worker import WorkflowInstance, WorkflowInstanceDetails, WorkflowRunner

from temporay.actors.code import (
    dumps_code,
    runtime_env_for,
    source_roots_for,
    upload_local_paths,
    uses_main,
)
from temporay.actors.registry import Registry
from temporay.actors.wire import RunKey
from temporay.cluster.connect import (
    DEFAULT_CONNECT_TIMEOUT_S,
    RayLease,
    acquire_ray,
    cluster_cpus,
    release_ray,
)
from temporay.cluster.dedicated import (
    DedicatedOption,
    DedicatedPool,
    normalize_dedicated,
    wants_dedicated,
)
from temporay.cluster.janitor import Janitor
from temporay.cluster.main_script import check_main_guard
from temporay.cluster.options import validate_runner_options
from temporay.cluster.placement import check_resources
from temporay.cluster.pool import NoLiveShardError, ShardPool, ShardSettings
from temporay.cluster.remote_run import RemoteRun, RunnerClosedError, ShardLostError
from temporay.cluster.routing import ShardChannel, ShardMember
from temporay.cluster.templates import TemplateCache
from temporay.runtime.engines import EngineFactory, EngineSpec
from temporay.runtime.hosting.externs import METRIC_METER_EXTERN, MetricReplayer
from temporay.runtime.local_runner import LocalWorkflowRunner
from temporay.runtime.placement import DEDICATED_MARKER

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
        self._shard_count = shards
        # The engine wrapped in our isolation: built here to validate definitions at Worker
        # construction, and rebuilt in every shard from its (picklable) arguments.
        self._engine = LocalWorkflowRunner(
            engine,
            isolation=isolation,
            shims=shims,
            strict=strict,
            restrict_io=restrict_io,
            shared_modules=shared_modules,
            isolated_modules=isolated_modules,
        )
        self._runtime_env = runtime_env
        self._namespace = namespace
        self._shard_threads = shard_threads
        self._shard_num_cpus = shard_num_cpus
        self.deadlock_budget = deadlock_budget
        self._max_inflight = max_inflight_per_shard
        self._max_batch = max_batch
        self._transport = transport
        self._dedicated_spec = normalize_dedicated(dedicated)
        self._dedicated_warm = dedicated_warm
        self._dedicated_max_idle = dedicated_max_idle
        self._dedicated_options = dict(dedicated_actor_options or {"num_cpus": 0})
        self._ray_init_kwargs = ray_init_kwargs
        self._connect_timeout = connect_timeout
        self._shard_start_timeout = shard_start_timeout
        # Where the start happens when nobody started the runner: on the Worker's construction
        # (blocking, like the SDK sandbox's validation), or in the background (RayPlugin, which
        # then waits for it before the Worker polls).
        self._start_in_background = False
        self._start_future: Future[RayWorkflowRunner] | None = None
        self._future_lock = threading.Lock()
        self._code_objects: dict[Any, None] = {}
        self._templates = TemplateCache()
        self._start_lock = threading.RLock()
        self._state = _RunnerState()
        self._runs: dict[RunKey, RemoteRun] = {}
        self._runs_lock = threading.Lock()
        self._incarnations = itertools.count(1)
        self._metric_replayers: dict[int, MetricReplayer] = {}
        self._evictors: list[tuple[Any, asyncio.AbstractEventLoop]] = []
        self._placements: list[tuple[str, str, str, str]] = []
        self._removals: list[str] = []
        self._finalizer = weakref.finalize(self, _teardown, self._state)

    # --- WorkflowRunner -----------------------------------------------------------------------------

    def prepare_workflow(self, defn: temporalio.workflow._Definition) -> None:
        # Validate with the engine here, at Worker construction, rather than fail on every shard.
        check_main_guard(defn)
        self._engine.prepare_workflow(defn)
        self._code_objects[defn.cls] = None
        if self._state.pool is None and not self._state.closed:
            # No activation may wait for Ray inside the Worker's 2 s deadlock budget, and the
            # SDK gives a runner no asynchronous hook between construction and the first
            # activation: so the start happens here (see docs/design-notes.md, "Cold start").
            if self._start_in_background:
                self.begin_start(retry_failed=False)
            else:
                self.start()
        shipped = self._state.shipped_roots
        if shipped is not None:
            missing = [r for r in source_roots_for([defn.cls]) if r not in shipped]
            if missing:
                logger.warning(
                    "Workflow %s lives in %s, which was not imported when this runner started "
                    "its shards, so it was not shipped to them; shards on other nodes will fail "
                    "to load it. Import workflow modules before starting the runner, use "
                    "RayPlugin, or pass runtime_env.",
                    defn.name,
                    ", ".join(missing),
                )

    def set_worker_level_failure_exception_types(
        self, types: Sequence[type[BaseException]]
    ) -> None:
        self._engine.set_worker_level_failure_exception_types(types)

    def create_instance(self, det: WorkflowInstanceDetails) -> WorkflowInstance:
        # On the Worker's event loop: no Ray call here; the run is created by its first activation.
        if self._state.closed:
            raise RunnerClosedError("this RayWorkflowRunner was closed")
        key = RunKey(self.router_id, det.info.run_id, next(self._incarnations))
        run = RemoteRun(
            self,
            key,
            det,
            self._templates.blob_for(det),
            self._metric_replayer(det.extern_functions.get(METRIC_METER_EXTERN)),
        )
        with self._runs_lock:
            self._runs[key] = run
        return run

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
        with self._future_lock:
            future = self._start_future
            failed = future is not None and future.done() and future.exception() is not None
            if future is None or (failed and retry_failed):
                future = Future()
                self._start_future = future
                threading.Thread(
                    target=self._start_into, args=(future,), name="temporay-start", daemon=True
                ).start()
            return future

    def _start_into(self, future: Future[RayWorkflowRunner]) -> None:
        try:
            future.set_result(self._start_now())
        except BaseException as err:
            future.set_exception(err)

    def start(self) -> RayWorkflowRunner:
        """Connect to Ray and start the shards (idempotent). Blocking: call it off the event loop.

        Raises ``RayConnectError`` when Ray cannot be reached within ``connect_timeout`` and
        ``ShardPlacementError`` when the cluster cannot hold the shards, ``ShardStartError``
        when they did not start within ``shard_start_timeout``."""
        with self._future_lock:
            future = self._start_future
        if future is not None and not future.done():
            return future.result()
        return self._start_now()

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
                self._abandon_start()
                release_ray(lease)
                raise
            self._state.ray_lease = lease
        return self

    def _abandon_start(self) -> None:
        registry, self._state.registry = self._state.registry, None
        if registry is not None:
            try:
                ray.kill(registry, no_restart=True)
            except Exception:
                pass

    def _start_shards(self) -> None:
        count = self._shard_count or cluster_cpus()
        check_resources(self.router_id, count, self._shard_num_cpus)
        # A copy: the Worker may still be preparing further workflows while this start runs.
        runtime_env = runtime_env_for(list(self._code_objects), self._runtime_env)
        if self._runtime_env is None or not (
            {"py_modules", "working_dir"} & set(self._runtime_env)
        ):
            self._state.shipped_roots = set(runtime_env.get("py_modules", []))
        engine_spec = self._engine.arguments["engine"]
        engine_factory = dumps_code(
            EngineFactory(self._engine),
            ship_main=uses_main([type(engine_spec)]),
        )
        settings = ShardSettings(
            count=count,
            threads=self._shard_threads,
            max_concurrency=max(self._max_inflight * 8, 16),
            num_cpus=self._shard_num_cpus,
            max_inflight=self._max_inflight,
            max_batch=self._max_batch,
            namespace=self._namespace,
            runtime_env=upload_local_paths(runtime_env),
            engine_factory=engine_factory,
            transport=self._transport,
        )
        registry = Registry.options(  # type: ignore[attr-defined]
            name=f"temporay-registry-{self.router_id[:8]}", namespace=self._namespace
        ).remote(f"temporay-{self.router_id[:8]}")
        registry.register_router.remote(self.router_id, {"shards": count})
        self._state.registry = registry
        # Only weak references from what teardown keeps (the pool) back to the runner, or the
        # finalizer could never run.
        pool = ShardPool(
            self.router_id,
            settings,
            registry=registry,
            on_shard_lost=_weak_callback(self._shard_lost),
        )
        try:
            pool.start(timeout=self._shard_start_timeout)
        except BaseException:
            pool.close(timeout=1.0)
            raise
        self._state.pool = pool
        self._state.settings = settings
        if self._needs_dedicated():
            self._dedicated_pool()
        self._state.janitor = Janitor(self)
        self._state.janitor.start()

    def close(self, drain_timeout: float = 10.0) -> None:
        """Drain every run (unwinding its coroutines on its shard) and tear all actors down."""
        with self._start_lock:
            with self._runs_lock:
                runs = list(self._runs.values())
                self._runs.clear()
            for run in runs:
                run.closed = True
            self._state.drain_timeout = drain_timeout
            self._finalizer()

    def _needs_dedicated(self) -> bool:
        spec = self._dedicated_spec
        return bool(callable(spec) or spec) or any(
            getattr(cls, DEDICATED_MARKER, False) for cls in self._code_objects
        )

    def _dedicated_pool(self) -> DedicatedPool:
        with self._start_lock:
            found = self._state.dedicated
            if found is not None:
                return found
            settings = self._state.settings
            if settings is None:
                raise RunnerClosedError("this RayWorkflowRunner is not started")
            pool = DedicatedPool(
                self.router_id,
                dataclasses.replace(
                    settings,
                    count=self._dedicated_warm,
                    threads=4,
                    name_prefix="temporay-dedicated",
                    replace_lost=False,
                    ready_copies=0,  # one run per actor: copies made ahead would go unused
                    actor_options=tuple(self._dedicated_options.items()),
                ),
                registry=self._state.registry,
                on_lost=_weak_callback(self._shard_lost),
                warm=self._dedicated_warm,
                max_idle=self._dedicated_max_idle,
            )
            pool.start()
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
        with self._runs_lock:
            runs = list(self._runs.values())
        for run in runs:
            run.lost = CLUSTER_LOST
        logger.error(
            "RayWorkflowRunner %s: %s; its %d runs fail their workflow tasks until the Worker "
            "stops. Keep Ray up while a Worker uses it, or stop the Worker first.",
            self.router_id[:8],
            CLUSTER_LOST,
            len(runs),
        )
        return CLUSTER_LOST

    def _metric_replayer(self, det_meter_fn: Callable[[], Any] | None) -> MetricReplayer | None:
        if det_meter_fn is None:
            return None
        key = id(det_meter_fn)
        replayer = self._metric_replayers.get(key)
        if replayer is None:
            replayer = MetricReplayer(det_meter_fn())
            self._metric_replayers[key] = replayer
        return replayer

    def placed(self, run: RemoteRun) -> None:
        info = run.get_info()
        self._placements.append(
            (run.key.run_id, info.workflow_id, info.workflow_type, run.shard_name)
        )

    def forget(self, run: RemoteRun) -> None:
        with self._runs_lock:
            self._runs.pop(run.key, None)
        if run.shard_name:
            self._removals.append(run.key.run_id)

    def _shard_lost(self, member: ShardMember) -> None:
        """Every run of a lost shard: mark lost, and ask core to evict the idle ones now."""
        with self._runs_lock:
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

    # --- chores (the janitor's) ---------------------------------------------------------------------

    def flush_disposals(self) -> None:
        for pool in (self._state.pool, self._state.dedicated):
            if pool is not None:
                pool.flush_disposals()

    def report_to_registry(self) -> None:
        registry = self._state.registry
        if registry is None or not (self._placements or self._removals):
            return
        placed, self._placements = self._placements, []
        removed, self._removals = self._removals, []
        try:
            registry.report_runs.remote(self.router_id, placed, removed)
        except Exception:
            logger.debug("Reporting runs to the registry failed", exc_info=True)


def _weak_callback(method: Callable[[ShardMember], None]) -> Callable[[ShardMember], None]:
    ref = weakref.WeakMethod(method)

    def call(member: ShardMember) -> None:
        target = ref()
        if target is not None:
            target(member)

    return call


@dataclass
class _RunnerState:
    """Everything teardown needs, kept apart from the runner so ``weakref.finalize`` works."""

    pool: ShardPool | None = None
    dedicated: DedicatedPool | None = None
    settings: ShardSettings | None = None
    registry: Any = None
    janitor: Janitor | None = None
    ray_lease: RayLease | None = None
    cluster_lost: bool = False
    shipped_roots: set[str] | None = None
    closed: bool = False
    drain_timeout: float = 10.0


def _teardown(state: _RunnerState) -> None:
    state.closed = True
    if state.janitor is not None:
        state.janitor.stop()
    lease, state.ray_lease = state.ray_lease, None
    if not ray.is_initialized():
        if lease is not None:
            release_ray(lease)
        return  # Ray is gone already (interpreter exit): our actors died with it
    for pool in (state.pool, state.dedicated):
        if pool is None:
            continue
        try:
            pool.close(timeout=state.drain_timeout)
        except Exception:
            logger.exception("Closing a shard pool failed")
    if state.registry is not None:
        try:
            ray.kill(state.registry, no_restart=True)
        except Exception:
            pass
    if lease is not None:
        release_ray(lease)  # the last runner out shuts down a cluster temporay started


__all__ = [
    "NoLiveShardError",
    "RayWorkflowRunner",
    "RemoteRun",
    "RunnerClosedError",
    "ShardLostError",
]
