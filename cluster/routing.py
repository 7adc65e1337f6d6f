"""Routing inside the process that runs the Worker: one Ray hop per activation, batched per shard.

Decisions are made here, in the caller's handle, as Ray Serve's router does: which shard holds a
run, when to batch, when a shard is dead. A ``ShardChannel`` is the line to one shard. It keeps at
most ``max_inflight`` calls in flight; an activation arriving while the line is busy waits in a
queue, and everything queued goes out as one batch as soon as a call returns. At low load every
activation is its own call (lowest latency); under load batches grow by themselves (lowest CPU per
activation). Calls complete through Ray future callbacks; the Worker's executor thread that asked
waits on its own event with its own deadline, so one slow call never blocks another's caller.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import ray
from ray.exceptions import RayActorError

from temporay.actors.wire import RunKey
from temporay.proto import hosting as pb

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class CallFailure:
    """Why an activation got no completion from its shard."""

    kind: str  # "timeout" | "shard_lost" | "error"
    message: str


class PendingActivation:
    """One activation on its way to a shard and back; resolved exactly once."""

    __slots__ = ("_event", "deadline", "envelope", "failure", "key", "result", "sent_at")

    def __init__(self, key: RunKey, envelope: pb.ActivationEnvelope, deadline: float) -> None:
        self.key = key
        self.envelope = envelope
        self.deadline = deadline
        self.result: pb.CompletionEnvelope | None = None
        self.failure: CallFailure | None = None
        self.sent_at = 0.0
        self._event = threading.Event()

    def resolve(
        self, result: pb.CompletionEnvelope | None = None, failure: CallFailure | None = None
    ) -> None:
        if self._event.is_set():
            return
        self.result = result
        self.failure = failure
        self._event.set()

    def wait(self) -> None:
        remaining = self.deadline - time.monotonic()
        timeout = None if remaining == float("inf") else max(remaining, 0.0)
        if not self._event.wait(timeout):
            self.resolve(
                failure=CallFailure("timeout", "the shard did not answer within the budget")
            )


@dataclass
class ShardMember:
    """A shard as this router sees it."""

    name: str
    handle: Any
    node_id: str = ""
    instance: str = ""
    alive: bool = True
    runs: int = 0
    strikes: int = 0
    templates_sent: set[str] = field(default_factory=set)
    main_sent: bool = False


class ShardChannel:
    """The router's line to one shard."""

    def __init__(
        self,
        member: ShardMember,
        *,
        max_inflight: int,
        max_batch: int,
        on_shard_failure: Callable[[ShardMember, BaseException], None],
        on_timeout: Callable[[ShardMember], None],
    ) -> None:
        self.member = member
        self._max_inflight = max_inflight
        self._max_batch = max_batch
        self._on_shard_failure = on_shard_failure
        self._on_timeout = on_timeout
        self._lock = threading.Lock()
        self._queue: list[PendingActivation] = []
        self._inflight = 0
        self._dispose: list[RunKey] = []
        self.calls = 0
        self.items = 0

    # --- activations ------------------------------------------------------------------------------

    def activate(self, pending: PendingActivation) -> None:
        """Send (or queue) one activation and block until it is resolved or its deadline passes."""
        with self._lock:
            if self._inflight < self._max_inflight and not self._queue:
                self._inflight += 1
                batch: list[PendingActivation] | None = [pending]
            else:
                self._queue.append(pending)
                batch = None
        if batch is not None:
            self._send(batch)
        pending.wait()
        if pending.failure is not None and pending.failure.kind == "timeout":
            self._on_timeout(self.member)

    def _send(self, batch: list[PendingActivation]) -> None:
        message = pb.ActivationBatch()
        now = time.monotonic()
        for pending in batch:
            envelope = message.items.add()
            envelope.CopyFrom(pending.envelope)
            if pending.deadline != float("inf"):
                budget_ms = int((pending.deadline - now) * 1000) - _RETURN_MARGIN_MS
                envelope.budget_ms = max(budget_ms, 1)
            pending.sent_at = now
        with self._lock:
            dispose, self._dispose = self._dispose, []
        for key in dispose:
            key.to_proto(message.dispose.add())
        self.calls += 1
        self.items += len(batch)
        try:
            ref = self.member.handle.run_batch.remote(message.SerializeToString())
        except BaseException as err:
            self._finish(batch, None, err)
            return
        ref.future().add_done_callback(lambda fut: self._finish(batch, fut, None))

    def _finish(self, batch: list[PendingActivation], fut: Any, error: BaseException | None) -> None:
        try:
            if error is None:
                try:
                    data = fut.result()
                except BaseException as err:
                    error = err
                else:
                    self._deliver(batch, data)
            if error is not None:
                self._fail(batch, error)
        finally:
            self._release()

    def _deliver(self, batch: Sequence[PendingActivation], data: bytes) -> None:
        result = pb.BatchResult.FromString(data)
        member = self.member
        if not member.instance:
            member.instance = result.shard_instance
        elif member.instance != result.shard_instance:
            # A restarted process behind the same handle holds none of our runs.
            self._on_shard_failure(member, RuntimeError("shard process was replaced"))
        by_key = {p.key: p for p in batch}
        for envelope in result.done:
            found = by_key.pop(RunKey.from_proto(envelope.key), None)
            if found is not None:
                found.resolve(result=envelope)
        member.strikes = 0
        if result.pending:
            waiting = [by_key[RunKey.from_proto(k)] for k in result.pending if RunKey.from_proto(k) in by_key]
            if waiting:
                self._collect(waiting)

    def _collect(self, waiting: list[PendingActivation]) -> None:
        message = pb.ActivationBatch()
        for pending in waiting:
            pending.key.to_proto(message.dispose.add())
        try:
            ref = self.member.handle.collect.remote(message.SerializeToString())
        except BaseException as err:
            self._fail(waiting, err)
            return

        def done(fut: Any) -> None:
            try:
                data = fut.result()
            except BaseException as err:
                self._fail(waiting, err)
            else:
                self._deliver(waiting, data)

        ref.future().add_done_callback(done)

    def _fail(self, batch: Sequence[PendingActivation], error: BaseException) -> None:
        if isinstance(error, RayActorError):
            failure = CallFailure("shard_lost", f"shard {self.member.name} died: {error}")
            self._on_shard_failure(self.member, error)
        else:
            failure = CallFailure("error", f"calling shard {self.member.name} failed: {error!r}")
        for pending in batch:
            pending.resolve(failure=failure)

    def _release(self) -> None:
        with self._lock:
            self._inflight -= 1
            if not self._queue or self._inflight >= self._max_inflight:
                return
            batch, self._queue = self._queue[: self._max_batch], self._queue[self._max_batch :]
            self._inflight += 1
        self._send(batch)

    # --- disposals ----------------------------------------------------------------------------------

    def dispose(self, key: RunKey) -> None:
        """Drop a run on the shard; rides on the next batch, or the janitor's flush."""
        with self._lock:
            self._dispose.append(key)

    def flush_disposals(self) -> None:
        with self._lock:
            if not self._dispose:
                return
            dispose, self._dispose = self._dispose, []
        if not self.member.alive:
            return
        try:
            self.member.handle.dispose.remote([tuple(k) for k in dispose])
        except BaseException:
            logger.debug("Flushing disposals to %s failed", self.member.name, exc_info=True)

    def fail_queued(self, failure: CallFailure) -> None:
        """Resolve everything still queued (the shard is gone)."""
        with self._lock:
            queued, self._queue = self._queue, []
            self._dispose = []
        for pending in queued:
            pending.resolve(failure=failure)


_RETURN_MARGIN_MS = 150
"""Of a pending activation's budget, what is kept for the answer's way back."""


def ping(handle: Any, timeout: float) -> str | None:
    """A shard's instance id, or ``None`` if it does not answer in time."""
    try:
        return str(ray.get(handle.ping.remote(), timeout=timeout))
    except Exception:
        return None
