"""The Shard actor: one OS process hosting many workflow runs ("run actors") for any number of routers.

A Ray actor is a whole process (~40-60 MB, 0.2-0.6 s to start), so one per run would cap a node at
a few hundred runs; a shard hosts thousands, each run still owning its own environment. Batches of
activations arrive as protobuf bytes; a single activation runs on the calling thread (no extra
hop), several run concurrently on the shard's own pool, and completions are returned per item: an
answer goes back once every item is done or, after a short straggler window, with whatever is done
and the rest left to ``collect``. A watchdog enforces each item's budget, captures the stuck thread's
stack and interrupts it, so the router gets a deadlock failure with the real stack before the
Worker's own 2 s timeout fires.
"""

from __future__ import annotations

import logging
import os
import threading
import time
import uuid
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field

import cloudpickle
import ray
import temporalio.bridge.proto.workflow_activation as wfact
import temporalio.workflow
from temporalio.bridge.runtime import Runtime as _BridgeRuntime
from temporalio.worker import WorkflowRunner
from temporalio.worker._workflow import _InterruptDeadlockError

from temporay.actors.code import WorkflowCodeError, ensure_main_loaded
from temporay.actors.metrics import ShardMetrics
from temporay.actors.transport import COLLECT, RUN_BATCH, ShardServer
from temporay.actors.wire import RunKey, delta_to_proto, metric_op_to_proto
from temporay.proto import hosting as pb
from temporay.runtime import type_hints
from temporay.runtime.engine.command_contexts import NO_CHANGE
from temporay.runtime.hosting.failures import deadlock_error, failed_completion
from temporay.runtime.hosting.hosted_run import (
    HostedResult,
    HostedRun,
    ReadyRun,
    RunTemplate,
    running_loop_for_creation,
    takes_ready_converters,
)
from temporay.runtime.run_info import details_from_activation

logger = logging.getLogger(__name__)

READY_COPIES_PER_CLASS = 2
"""Runs a shard keeps made ahead (``ReadyRun``: all but the run's details) for each template it
recently created runs of."""

READY_CLASSES = 16
"""How many recently used templates (workflow classes of a Worker) a shard keeps runs ready
for."""

STRAGGLER_WINDOW_S = 0.02
"""How long a batch answer waits for its slowest items once some are done."""

WATCHDOG_IDLE_S = 0.1
"""The longest the watchdog sleeps. It wakes at the earliest deadline it knows of, so only an
activation begun while it sleeps, with less budget left than this, is interrupted up to this late.
A fixed 20 ms tick made each shard's watchdog 0.5% of a core on an idle cluster."""

WATCHDOG_MIN_SLEEP_S = 0.001
"""The shortest the watchdog sleeps, so a deadline a moment away never makes it spin."""

DEADLINE_GRACE_S = 0.1
"""After an item's deadline, how long a batch waits for the watchdog's interrupt to land."""


class RunLostError(RuntimeError):
    """The shard cannot answer for this run any more; the Worker's core will evict it."""


@dataclass
class _Running:
    """An activation in progress. The watchdog may interrupt its thread only while ``active``
    (inside the engine), under ``lock``; the executing thread closes the window under the same
    lock, so an interrupt never lands in Ray's or the pool's own code."""

    key: RunKey
    thread_id: int
    deadline: float
    budget_s: float
    lock: threading.Lock = field(default_factory=threading.Lock)
    active: bool = True
    deadlock: BaseException | None = None


@dataclass(frozen=True)
class _Item:
    key: RunKey
    deadline: float
    budget_s: float


@dataclass
class _Counters:
    activations: int = 0
    batches: int = 0
    deadlocks: int = 0
    runs_created: int = 0
    runs_disposed: int = 0
    activation_seconds: float = 0.0
    batch_seconds: float = 0.0
    stuck_threads: set[int] = field(default_factory=set)


def _item(envelope: pb.ActivationEnvelope, received: float) -> _Item:
    budget_s = (envelope.budget_ms or 0) / 1000.0
    return _Item(
        key=RunKey.from_proto(envelope.key),
        deadline=received + budget_s if budget_s else float("inf"),
        budget_s=budget_s,
    )


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
        self._ready_copies = ready_copies
        self.instance = uuid.uuid4().hex
        self._engine = engine_factory()
        self._prepared: set[type] = set()
        self._pool = ThreadPoolExecutor(threads, thread_name_prefix=f"{name}-run")
        self._lock = threading.Lock()
        self._runs: dict[RunKey, HostedRun] = {}
        self._templates: dict[str, RunTemplate] = {}
        self._template_errors: dict[str, BaseException] = {}
        self._running: dict[RunKey, _Running] = {}
        self._pending: dict[RunKey, tuple[Future[pb.CompletionEnvelope], _Item]] = {}
        # Disposals that rode on a batch, carried out once that batch is answered.
        self._disposals: list[RunKey] = []
        # Templates (with their definition) whose next runs get what does not depend on the run
        # made ahead, by template ID; most recently used last.
        self._ready_for: dict[str, tuple[RunTemplate, temporalio.workflow._Definition]] = {}
        self._ready_runs: dict[str, list[ReadyRun]] = {}
        self._converters_ahead = takes_ready_converters(self._engine)
        self._making_ready = threading.Lock()
        self._counters = _Counters()
        # Runs dropped while their thread may still be inside the engine; never served again.
        self._lost: set[RunKey] = set()
        self._stop = threading.Event()
        self._watchdog = threading.Thread(target=self._watch, name=f"{name}-watchdog", daemon=True)
        self._watchdog.start()

    # --- entry points ---------------------------------------------------------------------------

    def run_batch(self, data: bytes) -> bytes:
        received = time.monotonic()
        try:
            return self._run_batch(data, received)
        finally:
            elapsed = time.monotonic() - received
            with self._lock:
                self._counters.batch_seconds += elapsed

    def _run_batch(self, data: bytes, received: float) -> bytes:
        batch = pb.ActivationBatch.FromString(data)
        # Most batches carry no disposal; on a cold process even an empty comprehension costs.
        keys = [RunKey.from_proto(k) for k in batch.dispose] if batch.dispose else None
        with self._lock:
            self._counters.batches += 1
            if keys:
                self._disposals.extend(keys)
        result = pb.BatchResult(shard_instance=self.instance)
        if len(batch.items) == 1:
            # The common case at low load: run on this thread, saving a thread hop.
            result.done.append(self._execute_guarded(batch.items[0], received))
        else:
            futures: dict[Future[pb.CompletionEnvelope], _Item] = {}
            for item in batch.items:
                future = self._pool.submit(self._execute_guarded, item, received)
                futures[future] = _item(item, received)
            self._gather(futures, result)
        return self._serialize(result)

    def _serialize(self, result: pb.BatchResult) -> bytes:
        with self._lock:
            result.stuck_threads = len(self._counters.stuck_threads)
        return result.SerializeToString()

    def after_answer(self) -> None:
        """Work that must not delay an answer, done on this thread once it is sent.

        The transport calls this after each batch's answer. It disposes the runs that batches
        carried (unwinding a finished run takes as long as an activation, and done beside a
        batch's own items it held the GIL against them: a new run's first activation usually
        carries its predecessor's disposal), then makes the next runs of recently used templates
        as far as they do not depend on the run (``ready_copies`` ``ReadyRun`` each: module
        copies, converters, the engine's instance), which takes that out of a new run's first
        activation."""
        with self._lock:
            keys, self._disposals = self._disposals, []
            wanted = list(self._ready_for.items())
        if keys:
            self._dispose_all(keys)
        if not self._ready_copies or not self._making_ready.acquire(blocking=False):
            return  # another thread is at it
        try:
            for template_id, (template, defn) in wanted:
                try:
                    self._make_ready(template_id, template, defn)
                except Exception:
                    logger.exception(
                        "Shard %s: making ready for runs of %s failed",
                        self.name,
                        defn.cls.__qualname__,
                    )
        finally:
            self._making_ready.release()

    def _make_ready(
        self, template_id: str, template: RunTemplate, defn: temporalio.workflow._Definition
    ) -> None:
        ready = self._ready_runs.setdefault(template_id, [])
        while len(ready) < self._ready_copies:
            ready.append(
                ReadyRun(self._engine, template, defn, converters_ahead=self._converters_ahead)
            )

    def after_answer_later(self) -> None:
        """``after_answer`` on the shard's pool (for callers that cannot act after answering)."""
        self._pool.submit(self.after_answer)

    def collect(self, data: bytes) -> bytes:
        """Answer items a previous batch left pending (waits until at least one is done)."""
        request = pb.ActivationBatch.FromString(data)
        result = pb.BatchResult(shard_instance=self.instance)
        futures: dict[Future[pb.CompletionEnvelope], _Item] = {}
        with self._lock:
            for proto_key in request.dispose:
                key = RunKey.from_proto(proto_key)
                parked = self._pending.pop(key, None)
                if parked is not None:
                    futures[parked[0]] = parked[1]
                else:
                    result.done.append(
                        self._lost_envelope(key, "no pending activation for this run")
                    )
        if futures:
            self._gather(futures, result)
        return self._serialize(result)

    def dispose(self, keys: list[tuple[str, str, int]]) -> int:
        return self._dispose_all([RunKey(*k) for k in keys])

    def drop_router(self, router_id: str) -> int:
        """Unwind and drop every run of one router (its Worker is shutting down)."""
        with self._lock:
            keys = [k for k in self._runs if k.router_id == router_id]
        return self._dispose_all(keys)

    def stats(self) -> bytes:
        import psutil

        with self._lock:
            counters = self._counters
            msg = pb.ShardStats(
                shard_name=self.name,
                shard_instance=self.instance,
                pid=os.getpid(),
                runs=len(self._runs),
                activations=counters.activations,
                batches=counters.batches,
                deadlocks=counters.deadlocks,
                stuck_threads=len(counters.stuck_threads),
                runs_created=counters.runs_created,
                runs_disposed=counters.runs_disposed,
                activation_seconds=counters.activation_seconds,
                batch_seconds=counters.batch_seconds,
                templates=len(self._templates),
            )
        msg.rss_bytes = psutil.Process().memory_info().rss
        return msg.SerializeToString()

    def ping(self) -> str:
        return self.instance

    def run_keys(self) -> list[tuple[str, str, int]]:
        with self._lock:
            return [tuple(k) for k in self._runs]  # type: ignore[misc]

    def shutdown(self) -> None:
        self._stop.set()
        self._pool.shutdown(wait=False, cancel_futures=True)

    # --- batches ----------------------------------------------------------------------------------

    def _gather(
        self, futures: dict[Future[pb.CompletionEnvelope], _Item], result: pb.BatchResult
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
                with self._lock:
                    self._pending[item.key] = (future, item)
                item.key.to_proto(result.pending.add())

    def _overdue(self, future: Future[pb.CompletionEnvelope], item: _Item) -> pb.CompletionEnvelope:
        """An item whose thread did not come back in time (stuck in C code, or never started)."""
        started = not future.cancel()
        with self._lock:
            record = self._running.get(item.key)
            run = self._runs.pop(item.key, None)
            self._lost.add(item.key)
        error: BaseException
        if record is not None and record.deadlock is not None:
            error = record.deadlock
        elif started:
            error = deadlock_error(record.thread_id if record else None, item.budget_s)
        else:
            error = RunLostError(
                f"temporay shard {self.name} was too busy to start this activation within "
                f"its {item.budget_s:.2f}s budget"
            )
        envelope = pb.CompletionEnvelope(run_lost=True)
        item.key.to_proto(envelope.key)
        completion = (
            run.failed_completion(error)
            if run is not None
            else failed_completion(item.key.run_id, error)
        )
        envelope.completion = completion.SerializeToString()
        return envelope

    # --- one activation ---------------------------------------------------------------------------

    def _execute_guarded(
        self, item: pb.ActivationEnvelope, received: float
    ) -> pb.CompletionEnvelope:
        try:
            return self._execute(item, received)
        except _InterruptDeadlockError:
            # The watchdog's interrupt landed just as the activation ended: still a deadlock.
            key = RunKey.from_proto(item.key)
            with self._lock:
                run = self._runs.pop(key, None)
            if run is not None:
                run.evict("dropped after an interrupted activation")
            budget_s = (item.budget_ms or 0) / 1000.0
            envelope = pb.CompletionEnvelope(run_lost=True)
            key.to_proto(envelope.key)
            envelope.completion = failed_completion(
                key.run_id, deadlock_error(None, budget_s)
            ).SerializeToString()
            return envelope

    def _execute(self, item: pb.ActivationEnvelope, received: float) -> pb.CompletionEnvelope:
        key = RunKey.from_proto(item.key)
        try:
            activation = wfact.WorkflowActivation.FromString(item.activation)
        except Exception as err:
            return self._lost_envelope(key, f"activation bytes did not parse: {err}")
        with self._lock:
            run = self._runs.get(key)
            lost = key in self._lost
        if lost:
            return self._lost_envelope(key, "this run was dropped after an overdue activation")
        if run is None:
            if not item.HasField("spec"):
                return self._lost_envelope(
                    key,
                    "activation for a run this shard does not hold (it was lost or evicted); "
                    "the Worker will evict and replay it",
                )
            try:
                run = self._create(key, item.spec, activation)
            except BaseException as err:
                logger.exception("Creating run %s on shard %s failed", key.run_id, self.name)
                envelope = pb.CompletionEnvelope(run_lost=True)
                key.to_proto(envelope.key)
                envelope.completion = failed_completion(key.run_id, err).SerializeToString()
                return envelope
        budget_s = (item.budget_ms or 0) / 1000.0
        record = _Running(
            key=key,
            thread_id=threading.get_ident(),
            deadline=received + budget_s if budget_s else float("inf"),
            budget_s=budget_s,
        )
        with self._lock:
            self._running[key] = record
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
            with self._lock:
                self._running.pop(key, None)
                self._counters.activations += 1
                self._counters.activation_seconds += time.perf_counter() - started
                self._counters.stuck_threads.discard(record.thread_id)
        if record.deadlock is not None or isinstance(outcome, BaseException):
            return self._abandon(key, run, record, outcome)
        return self._envelope(key, outcome)

    def _create(
        self, key: RunKey, spec: pb.RunSpec, activation: wfact.WorkflowActivation
    ) -> HostedRun:
        template = self._template(spec)
        details = details_from_activation(
            activation, namespace=spec.namespace, task_queue=spec.task_queue
        )
        defn = template.definition()
        if defn.cls not in self._prepared:
            with running_loop_for_creation():
                self._engine.prepare_workflow(defn)
            self._prepared.add(defn.cls)
        ready = self._take_ready(spec.template_id)
        if ready is not None:
            run = ready.bind(details)
        else:
            run = HostedRun.create(self._engine, template, details, defn)
        with self._lock:
            self._runs[key] = run
            self._counters.runs_created += 1
            self._ready_for.pop(spec.template_id, None)
            self._ready_for[spec.template_id] = (template, defn)
            while len(self._ready_for) > READY_CLASSES:
                forgotten = next(iter(self._ready_for))
                del self._ready_for[forgotten]
                self._ready_runs.pop(forgotten, None)
        return run

    def _take_ready(self, template_id: str) -> ReadyRun | None:
        ready = self._ready_runs.get(template_id)
        try:
            return ready.pop() if ready else None  # atomic: another thread may take it first
        except IndexError:
            return None

    def _template(self, spec: pb.RunSpec) -> RunTemplate:
        with self._lock:
            template = self._templates.get(spec.template_id)
            error = self._template_errors.get(spec.template_id)
        if template is not None:
            return template
        if error is not None and not spec.template:
            raise error
        if not spec.template:
            raise WorkflowCodeError(
                f"shard {self.name} has no template {spec.template_id} and none was sent"
            )
        try:
            if spec.main_module_hash:
                ensure_main_loaded(
                    spec.main_module_hash, spec.main_module_source, spec.main_module_path
                )
            loaded = cloudpickle.loads(spec.template)
        except BaseException as err:
            wrapped = WorkflowCodeError(
                f"temporay could not load the workflow code on shard {self.name} "
                f"(node pid {os.getpid()}): {err!r}. Make the module importable on every node: "
                "install it there or ship it with a Ray runtime_env (py_modules/working_dir)."
            )
            with self._lock:
                self._template_errors[spec.template_id] = wrapped
            raise wrapped from err
        assert isinstance(loaded, RunTemplate)
        with self._lock:
            self._templates[spec.template_id] = loaded
        return loaded

    def _envelope(self, key: RunKey, result: HostedResult) -> pb.CompletionEnvelope:
        envelope = pb.CompletionEnvelope()
        key.to_proto(envelope.key)
        envelope.completion = result.completion.SerializeToString()
        if result.contexts is not NO_CHANGE:  # left absent otherwise: the Worker skips it
            envelope.contexts.SetInParent()
            delta_to_proto(result.contexts, envelope.contexts)
        for op in result.metric_ops:
            metric_op_to_proto(op, envelope.metric_ops.add())
        return envelope

    def _abandon(
        self,
        key: RunKey,
        run: HostedRun,
        record: _Running,
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
        with self._lock:
            self._runs.pop(key, None)
            self._counters.runs_disposed += 1
        # Unwind its coroutines here, on the thread that ran them.
        run.evict("dropped after an interrupted activation")
        envelope = pb.CompletionEnvelope(run_lost=True)
        key.to_proto(envelope.key)
        envelope.completion = run.failed_completion(error).SerializeToString()
        return envelope

    def _lost_envelope(self, key: RunKey, why: str) -> pb.CompletionEnvelope:
        envelope = pb.CompletionEnvelope(run_lost=True)
        key.to_proto(envelope.key)
        envelope.completion = failed_completion(
            key.run_id, RunLostError(f"temporay shard {self.name}: {why}")
        ).SerializeToString()
        return envelope

    def _dispose_all(self, keys: list[RunKey]) -> int:
        disposed = 0
        for key in keys:
            with self._lock:
                run = self._runs.pop(key, None)
                self._pending.pop(key, None)
                self._lost.discard(key)
                if run is not None:
                    self._counters.runs_disposed += 1
            if run is not None:
                run.evict()
                disposed += 1
        return disposed

    # --- watchdog -------------------------------------------------------------------------------

    def _watch(self) -> None:
        sleep_s = WATCHDOG_IDLE_S
        while not self._stop.wait(sleep_s):
            now = time.monotonic()
            with self._lock:
                watched = [r for r in self._running.values() if r.deadlock is None]
            overdue = [r for r in watched if now >= r.deadline]
            upcoming = min((r.deadline for r in watched if now < r.deadline), default=float("inf"))
            sleep_s = min(WATCHDOG_IDLE_S, max(upcoming - now, WATCHDOG_MIN_SLEEP_S))
            for record in overdue:
                with record.lock:
                    if not record.active or record.deadlock is not None:
                        continue
                    # Capture the stack first: interrupting unwinds it.
                    record.deadlock = deadlock_error(record.thread_id, record.budget_s)
                    _BridgeRuntime._raise_in_thread(record.thread_id, _InterruptDeadlockError)
                with self._lock:
                    self._counters.deadlocks += 1
                    self._counters.stuck_threads.add(record.thread_id)
                logger.warning(
                    "Run %s exceeded its %.2fs activation budget on shard %s; interrupted",
                    record.key.run_id,
                    record.budget_s,
                    self.name,
                )


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
        type_hints.install()  # this process is ours: see runtime/type_hints.py
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
