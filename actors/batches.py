"""How a shard serves batches of activations and answers for each item.

Batches arrive as protobuf bytes. A single activation runs on the calling thread (no extra hop);
several run concurrently on the shard's pool, and completions are returned per item: an answer
goes back once every item is done or, after a short straggler window, with whatever is done and
the rest parked for ``collect``. An item still unfinished past its deadline (and a grace for the
watchdog's interrupt) is answered as a deadlock whatever its thread is doing, and its run is
dropped: the Worker evicts it and replays it.
"""

from __future__ import annotations

import logging
import threading
import time
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait

import temporalio.bridge.proto.workflow_activation as wfact
from temporalio.worker._workflow import _InterruptDeadlockError

from temporay.actors.run_factory import RunFactory
from temporay.actors.run_table import (
    Item,
    RunLostError,
    Running,
    RunTable,
    lost_run_envelope,
)
from temporay.actors.wire import RunKey, delta_to_proto, metric_op_to_proto
from temporay.proto import hosting as pb
from temporay.runtime.engine.command_contexts import NO_CHANGE
from temporay.runtime.hosting.failures import deadlock_error
from temporay.runtime.hosting.hosted_run import HostedResult, HostedRun
from temporay.runtime.hosting.log_shipping import pack_records

logger = logging.getLogger(__name__)

STRAGGLER_WINDOW_S = 0.02
"""How long a batch answer waits for its slowest items once some are done."""

DEADLINE_GRACE_S = 0.1
"""After an item's deadline, how long a batch waits for the watchdog's interrupt to land."""


def _item(envelope: pb.ActivationEnvelope, received: float) -> Item:
    budget_s = (envelope.budget_ms or 0) / 1000.0
    return Item(
        key=RunKey.from_proto(envelope.key),
        deadline=received + budget_s if budget_s else float("inf"),
        budget_s=budget_s,
    )


class BatchServer:
    """Answers one shard's ``run_batch`` and ``collect`` requests."""

    def __init__(
        self,
        shard_name: str,
        shard_instance: str,
        table: RunTable,
        factory: RunFactory,
        pool: ThreadPoolExecutor,
    ) -> None:
        self._name = shard_name
        self._instance = shard_instance
        self._table = table
        self._factory = factory
        self._pool = pool
        # Disposals that rode on a batch, carried out once that batch is answered (under
        # table.lock).
        self._disposals: list[RunKey] = []

    # --- requests -------------------------------------------------------------------------------

    def run_batch(self, data: bytes) -> bytes:
        received = time.monotonic()
        try:
            return self._run_batch(data, received)
        finally:
            elapsed = time.monotonic() - received
            with self._table.lock:
                self._table.counters.batch_seconds += elapsed

    def _run_batch(self, data: bytes, received: float) -> bytes:
        batch = pb.ActivationBatch.FromString(data)
        # Most batches carry no disposal; on a cold process even an empty comprehension costs.
        keys = [RunKey.from_proto(k) for k in batch.dispose] if batch.dispose else None
        with self._table.lock:
            self._table.counters.batches += 1
            if keys:
                self._disposals.extend(keys)
        result = pb.BatchResult(shard_instance=self._instance)
        if len(batch.items) == 1:
            # The common case at low load: run on this thread, saving a thread hop.
            result.done.append(self._execute_guarded(batch.items[0], received))
        else:
            futures: dict[Future[pb.CompletionEnvelope], Item] = {}
            for item in batch.items:
                future = self._pool.submit(self._execute_guarded, item, received)
                futures[future] = _item(item, received)
            self._gather(futures, result)
        return self._serialize(result)

    def take_disposals(self) -> list[RunKey]:
        """The runs batches asked to dispose of since the last call."""
        with self._table.lock:
            keys, self._disposals = self._disposals, []
        return keys

    def collect(self, data: bytes) -> bytes:
        """Answer items a previous batch left pending (waits until at least one is done)."""
        request = pb.ActivationBatch.FromString(data)
        result = pb.BatchResult(shard_instance=self._instance)
        futures: dict[Future[pb.CompletionEnvelope], Item] = {}
        with self._table.lock:
            for proto_key in request.dispose:
                key = RunKey.from_proto(proto_key)
                parked = self._table.pending.pop(key, None)
                if parked is not None:
                    futures[parked[0]] = parked[1]
                else:
                    result.done.append(self._lost(key, "no pending activation for this run"))
        if futures:
            self._gather(futures, result)
        return self._serialize(result)

    def _serialize(self, result: pb.BatchResult) -> bytes:
        with self._table.lock:
            result.stuck_threads = len(self._table.counters.stuck_threads)
        return result.SerializeToString()

    def _lost(self, key: RunKey, why: str) -> pb.CompletionEnvelope:
        return lost_run_envelope(key, RunLostError(f"temporay shard {self._name}: {why}"))

    # --- waiting for items ------------------------------------------------------------------------

    def _gather(
        self, futures: dict[Future[pb.CompletionEnvelope], Item], result: pb.BatchResult
    ) -> None:
        """Wait for all items, but after the straggler window return what is done and park the
        rest; an item still unfinished past its deadline (plus a grace for the watchdog) is
        answered as a deadlock, whatever its thread is doing."""
        first_done_at: float | None = None
        not_done = set(futures)
        while not_done:
            now = time.monotonic()
            if first_done_at is None and len(not_done) < len(futures):
                first_done_at = now
            if first_done_at is not None and now - first_done_at >= STRAGGLER_WINDOW_S:
                break
            hard = min(futures[f].deadline for f in not_done) + DEADLINE_GRACE_S
            if now >= hard:
                break
            limit = hard - now
            if first_done_at is not None:
                limit = min(limit, first_done_at + STRAGGLER_WINDOW_S - now)
            timeout = None if limit == float("inf") else limit
            _, not_done = wait(not_done, timeout=timeout, return_when=FIRST_COMPLETED)
        now = time.monotonic()
        for future, item in futures.items():
            if future not in not_done:
                result.done.append(future.result())
            elif now >= item.deadline + DEADLINE_GRACE_S:
                result.done.append(self._overdue(future, item))
            else:
                with self._table.lock:
                    self._table.pending[item.key] = (future, item)
                item.key.to_proto(result.pending.add())

    def _overdue(self, future: Future[pb.CompletionEnvelope], item: Item) -> pb.CompletionEnvelope:
        """An item whose thread did not come back in time (stuck in C code, or never started)."""
        started = not future.cancel()
        with self._table.lock:
            record = self._table.running.get(item.key)
            run = self._table.runs.pop(item.key, None)
            self._table.lost.add(item.key)
        error: BaseException
        if record is not None and record.deadlock is not None:
            error = record.deadlock
        elif started:
            error = deadlock_error(record.thread_id if record else None, item.budget_s)
        else:
            error = RunLostError(
                f"temporay shard {self._name} was too busy to start this activation within "
                f"its {item.budget_s:.2f}s budget"
            )
        return lost_run_envelope(item.key, error, run)

    # --- one activation ---------------------------------------------------------------------------

    def _execute_guarded(
        self, item: pb.ActivationEnvelope, received: float
    ) -> pb.CompletionEnvelope:
        try:
            return self._execute(item, received)
        except _InterruptDeadlockError:
            # The watchdog's interrupt landed just as the activation ended: still a deadlock.
            key = RunKey.from_proto(item.key)
            with self._table.lock:
                run = self._table.runs.pop(key, None)
            if run is not None:
                run.evict("dropped after an interrupted activation")
            budget_s = (item.budget_ms or 0) / 1000.0
            return lost_run_envelope(key, deadlock_error(None, budget_s))

    def _execute(self, item: pb.ActivationEnvelope, received: float) -> pb.CompletionEnvelope:
        key = RunKey.from_proto(item.key)
        try:
            activation = wfact.WorkflowActivation.FromString(item.activation)
        except Exception as err:
            return self._lost(key, f"activation bytes did not parse: {err}")
        table = self._table
        with table.lock:
            run = table.runs.get(key)
            lost = key in table.lost
        if lost:
            return self._lost(key, "this run was dropped after an overdue activation")
        if run is None:
            if not item.HasField("spec"):
                return self._lost(
                    key,
                    "activation for a run this shard does not hold (it was lost or evicted); "
                    "the Worker will evict and replay it",
                )
            try:
                run = self._factory.create(key, item.spec, activation)
            except BaseException as err:
                logger.exception("Creating run %s on shard %s failed", key.run_id, self._name)
                return lost_run_envelope(key, err)
        budget_s = (item.budget_ms or 0) / 1000.0
        record = Running(
            key=key,
            thread_id=threading.get_ident(),
            deadline=received + budget_s if budget_s else float("inf"),
            budget_s=budget_s,
        )
        with table.lock:
            table.running[key] = record
        started = time.perf_counter()
        outcome: HostedResult | BaseException
        try:
            try:
                outcome = run.activate(activation)
            except BaseException as err:
                outcome = err
            finally:
                with record.lock:
                    record.active = False
        finally:
            with table.lock:
                table.running.pop(key, None)
                table.counters.activations += 1
                table.counters.activation_seconds += time.perf_counter() - started
                table.counters.stuck_threads.discard(record.thread_id)
        if record.deadlock is not None or isinstance(outcome, BaseException):
            return self._abandon(key, run, record, outcome)
        return _envelope(key, outcome)

    def _abandon(
        self,
        key: RunKey,
        run: HostedRun,
        record: Running,
        outcome: HostedResult | BaseException,
    ) -> pb.CompletionEnvelope:
        """The activation overran its budget or broke out of the engine: report and drop the run."""
        error: BaseException
        if record.deadlock is not None:
            error = record.deadlock
        elif isinstance(outcome, _InterruptDeadlockError):
            error = deadlock_error(None, record.budget_s)
        else:
            assert isinstance(outcome, BaseException)
            error = outcome
        with self._table.lock:
            self._table.runs.pop(key, None)
            self._table.counters.runs_disposed += 1
        # Unwind its coroutines here, on the thread that ran them.
        run.evict("dropped after an interrupted activation")
        return lost_run_envelope(key, error, run)


def _envelope(key: RunKey, result: HostedResult) -> pb.CompletionEnvelope:
    envelope = pb.CompletionEnvelope()
    key.to_proto(envelope.key)
    envelope.completion = result.completion.SerializeToString()
    if result.contexts is not NO_CHANGE:  # left absent otherwise: the Worker skips it
        envelope.contexts.SetInParent()
        delta_to_proto(result.contexts, envelope.contexts)
    for op in result.metric_ops:
        metric_op_to_proto(op, envelope.metric_ops.add())
    if result.log_records:
        envelope.log_records = pack_records(result.log_records)
    return envelope
