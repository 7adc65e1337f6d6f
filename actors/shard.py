"""The Shard actor: one OS process hosting many workflow runs ("run actors") for any number of routers.

A Ray actor is a whole process, heavy to keep and slow to start, so one per run would cap a node
at a few hundred runs; a shard hosts thousands, each run still owning its own environment.
``ShardCore`` is the shard without Ray, wiring its parts: batch serving (``actors/batches.py``),
the run factory (``actors/run_factory.py``), the watchdog (``actors/watchdog.py``) and the run
table they share (``actors/run_table.py``).
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import cloudpickle
import ray
from temporalio.worker import WorkflowRunner

from temporay.actors.batches import BatchServer
from temporay.actors.metrics import ShardMetrics
from temporay.actors.run_factory import RunFactory
from temporay.actors.run_table import RunTable
from temporay.actors.transport import COLLECT, RUN_BATCH, ShardServer
from temporay.actors.watchdog import Watchdog
from temporay.actors.wire import RunKey
from temporay.proto import hosting as pb
from temporay.runtime.hosting.log_shipping import LogCapture

READY_COPIES_PER_CLASS = 2
"""Runs a shard keeps made ahead (``ReadyRun``: all but the run's details) for each template it
recently created runs of."""


class ShardCore:
    """The shard's logic without Ray, so it can be driven directly in tests."""

    def __init__(
        self,
        name: str,
        engine_factory: Callable[[], WorkflowRunner],
        threads: int = 32,
        ready_copies: int = READY_COPIES_PER_CLASS,
    ) -> None:
        self.name = name
        self.instance = uuid.uuid4().hex
        self._table = RunTable()
        self._factory = RunFactory(name, engine_factory(), self._table, ready_copies)
        self._pool = ThreadPoolExecutor(threads, thread_name_prefix=f"{name}-run")
        self._batches = BatchServer(name, self.instance, self._table, self._factory, self._pool)
        self._watchdog = Watchdog(name, self._table)

    def run_batch(self, data: bytes) -> bytes:
        return self._batches.run_batch(data)

    def collect(self, data: bytes) -> bytes:
        """Answer items a previous batch left pending (waits until at least one is done)."""
        return self._batches.collect(data)

    def after_answer(self) -> None:
        """Work that must not delay an answer, done on this thread once it is sent.

        The transport calls this after each batch's answer. It disposes the runs that batches
        carried (unwinding a finished run takes as long as an activation, and done beside a
        batch's own items it held the GIL against them: a new run's first activation usually
        carries its predecessor's disposal), then makes the next runs of recently used templates
        as far as they do not depend on the run (``ready_copies`` ``ReadyRun`` each: module
        copies, converters, the engine's instance), which takes that out of a new run's first
        activation."""
        keys = self._batches.take_disposals()
        if keys:
            self._table.dispose(keys)
        self._factory.make_ready()

    def after_answer_later(self) -> None:
        """``after_answer`` on the shard's pool (for callers that cannot act after answering)."""
        self._pool.submit(self.after_answer)

    def dispose(self, keys: list[tuple[str, str, int]]) -> int:
        return self._table.dispose([RunKey(*k) for k in keys])

    def drop_router(self, router_id: str) -> int:
        """Unwind and drop every run of one router (its Worker is shutting down)."""
        return self._table.dispose(self._table.keys_of_router(router_id))

    def stats(self) -> bytes:
        import psutil

        table = self._table
        with table.lock:
            counters = table.counters
            msg = pb.ShardStats(
                shard_name=self.name,
                shard_instance=self.instance,
                pid=os.getpid(),
                runs=len(table.runs),
                activations=counters.activations,
                batches=counters.batches,
                deadlocks=counters.deadlocks,
                stuck_threads=len(counters.stuck_threads),
                runs_created=counters.runs_created,
                runs_disposed=counters.runs_disposed,
                activation_seconds=counters.activation_seconds,
                batch_seconds=counters.batch_seconds,
                templates=len(self._factory.templates),
            )
        msg.rss_bytes = psutil.Process().memory_info().rss
        return msg.SerializeToString()

    def ping(self) -> str:
        return self.instance

    def run_keys(self) -> list[tuple[str, str, int]]:
        return [tuple(k) for k in self._table.run_keys()]  # type: ignore[misc]

    def shutdown(self) -> None:
        self._watchdog.stop()
        self._pool.shutdown(wait=False, cancel_futures=True)


@ray.remote(concurrency_groups={"control": 4})  # type: ignore[call-overload]
class Shard:
    """The Ray actor around ``ShardCore``. Work calls use the default concurrency group (sized
    with ``max_concurrency``); health and admin calls have their own, so a flooded or stuck work
    group never hides a shard's state from its router."""

    def __init__(
        self,
        name: str,
        engine_factory: bytes,
        threads: int = 32,
        secret: bytes = b"",
        ready_copies: int = READY_COPIES_PER_CLASS,
    ) -> None:
        factory = cloudpickle.loads(engine_factory)
        LogCapture.install(
            {"temporay_shard": name, "temporay_node_id": ray.get_runtime_context().get_node_id()}
        )
        self._core = ShardCore(name, factory, threads, ready_copies)
        # The direct activation transport (see actors/transport.py), on this node's address.
        self._server: ShardServer | None = None
        if secret:
            self._server = ShardServer(
                ray.util.get_node_ip_address(),
                secret,
                {RUN_BATCH: self._core.run_batch, COLLECT: self._core.collect},
                name=name,
                after_reply=self._core.after_answer,
            )
        self._metrics = ShardMetrics(name, lambda: pb.ShardStats.FromString(self._core.stats()))

    @ray.method(concurrency_group="control")
    def endpoint(self) -> tuple[str, int, str] | None:
        """Where routers send activations directly: host, port and the abstract Unix socket
        routers on this host use instead (``None``: Ray calls only)."""
        if self._server is None:
            return None
        host, port = self._server.address
        return host, port, self._server.local_name

    def run_batch(self, data: bytes) -> bytes:
        try:
            return self._core.run_batch(data)
        finally:
            # Ray sends the answer after this returns: leave the rest to the pool.
            self._core.after_answer_later()

    def collect(self, data: bytes) -> bytes:
        return self._core.collect(data)

    @ray.method(concurrency_group="control")
    def dispose(self, keys: list[tuple[str, str, int]]) -> int:
        return self._core.dispose(keys)

    @ray.method(concurrency_group="control")
    def drop_router(self, router_id: str) -> int:
        return self._core.drop_router(router_id)

    @ray.method(concurrency_group="control")
    def stats(self) -> bytes:
        msg = pb.ShardStats.FromString(self._core.stats())
        msg.node_id = ray.get_runtime_context().get_node_id()
        return msg.SerializeToString()

    @ray.method(concurrency_group="control")
    def ping(self) -> str:
        return self._core.ping()

    @ray.method(concurrency_group="control")
    def run_keys(self) -> list[tuple[str, str, int]]:
        return self._core.run_keys()
