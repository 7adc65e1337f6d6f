"""A runner's Ray side: starting its registry and shard pool, and tearing everything down.

A start runs once, blocking its caller or on a thread of its own (``StartOnce``): the Worker
gives a runner no asynchronous hook before its first activation, so ``RayPlugin`` starts it in
the background while the Worker is built and waits for it before polling.

What teardown needs lives in a ``RunnerState`` apart from ``RayWorkflowRunner``, and nothing it
holds refers back to the runner but weakly (``weak_callback``): a runner nobody closed is then
still finalized, and its actors and Ray lease released, once it is garbage.
"""

from __future__ import annotations

import logging
import threading
import weakref
from collections.abc import Callable, Collection
from concurrent.futures import Future
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

import ray
import temporalio.workflow

from temporay.actors.code import (
    dumps_code,
    runtime_env_for,
    source_roots_for,
    upload_local_paths,
    uses_main,
)
from temporay.actors.registry import Registry
from temporay.cluster.connect import RayLease, cluster_cpus, release_ray
from temporay.cluster.dedicated import DedicatedPool
from temporay.cluster.janitor import Janitor
from temporay.cluster.placement import check_resources
from temporay.cluster.pool import ShardPool, ShardSettings
from temporay.cluster.routing import ShardMember
from temporay.runtime.engines import EngineFactory
from temporay.runtime.local_runner import LocalWorkflowRunner

logger = logging.getLogger(__name__)

T = TypeVar("T")


@dataclass(frozen=True)
class ShardOptions:
    """What ``RayWorkflowRunner`` was told about its shards, as starting them needs it."""

    count: int | None
    threads: int
    num_cpus: float
    max_inflight: int
    max_batch: int
    namespace: str
    runtime_env: dict[str, Any] | None
    transport: str
    start_timeout: float


@dataclass
class RunnerState:
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


class StartOnce(Generic[T]):
    """One start shared by whoever asks for it: run by its caller (``run``) or on a thread of
    its own (``begin``); a caller that finds one under way waits for it instead."""

    def __init__(self) -> None:
        self._future: Future[T] | None = None
        self._lock = threading.Lock()

    def begin(self, start_now: Callable[[], T], retry_failed: bool) -> Future[T]:
        """A start already under way (or done) is shared; a failed one is tried again only with
        ``retry_failed``."""
        with self._lock:
            future = self._future
            failed = future is not None and future.done() and future.exception() is not None
            if future is None or (failed and retry_failed):
                future = Future()
                self._future = future
                threading.Thread(
                    target=_start_into,
                    args=(start_now, future),
                    name="temporay-start",
                    daemon=True,
                ).start()
            return future

    def run(self, start_now: Callable[[], T]) -> T:
        with self._lock:
            future = self._future
        if future is not None and not future.done():
            return future.result()
        return start_now()


def _start_into(start_now: Callable[[], T], future: Future[T]) -> None:
    try:
        future.set_result(start_now())
    except BaseException as err:
        future.set_exception(err)


def start_shards(
    router_id: str,
    options: ShardOptions,
    local_runner: LocalWorkflowRunner,
    workflow_classes: Collection[type],
    state: RunnerState,
    on_shard_lost: Callable[[ShardMember], None],
) -> None:
    """Create the registry and the shard pool into ``state`` and wait until every shard answers.

    ``local_runner`` is the engine in our isolation, rebuilt in every shard from its arguments;
    ``workflow_classes`` decide what code is shipped to the shards."""
    count = options.count or cluster_cpus()
    check_resources(router_id, count, options.num_cpus)
    # A copy: the Worker may still be preparing further workflows while this start runs.
    runtime_env = runtime_env_for(list(workflow_classes), options.runtime_env)
    if options.runtime_env is None or not (
        {"py_modules", "working_dir"} & set(options.runtime_env)
    ):
        state.shipped_roots = set(runtime_env.get("py_modules", []))
    engine_spec = local_runner.arguments["engine"]
    engine_factory = dumps_code(
        EngineFactory(local_runner),
        ship_main=uses_main([type(engine_spec)]),
    )
    settings = ShardSettings(
        count=count,
        threads=options.threads,
        max_concurrency=max(options.max_inflight * 8, 16),
        num_cpus=options.num_cpus,
        max_inflight=options.max_inflight,
        max_batch=options.max_batch,
        namespace=options.namespace,
        runtime_env=upload_local_paths(runtime_env),
        engine_factory=engine_factory,
        transport=options.transport,
    )
    registry = Registry.options(  # type: ignore[attr-defined]
        name=f"temporay-registry-{router_id[:8]}", namespace=options.namespace
    ).remote(f"temporay-{router_id[:8]}")
    registry.register_router.remote(router_id, {"shards": count})
    state.registry = registry
    pool = ShardPool(router_id, settings, registry=registry, on_shard_lost=on_shard_lost)
    try:
        pool.start(timeout=options.start_timeout)
    except BaseException:
        pool.close(timeout=1.0)
        raise
    state.pool = pool
    state.settings = settings


def warn_if_unshipped(defn: temporalio.workflow._Definition, shipped: set[str] | None) -> None:
    """A workflow prepared after the shards started may live in code they were not sent."""
    if shipped is None:
        return
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


def abandon_start(state: RunnerState) -> None:
    """Undo what a failed ``start_shards`` left behind (the pool closed itself)."""
    registry, state.registry = state.registry, None
    if registry is not None:
        try:
            ray.kill(registry, no_restart=True)
        except Exception:
            pass


def weak_callback(method: Callable[[ShardMember], None]) -> Callable[[ShardMember], None]:
    """``method`` of an object that may be gone by the time it is called (then nothing)."""
    ref = weakref.WeakMethod(method)

    def call(member: ShardMember) -> None:
        target = ref()
        if target is not None:
            target(member)

    return call


def teardown(state: RunnerState) -> None:
    """Stop the janitor, drain and kill the shards and the registry, release the Ray lease."""
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
