"""Routing inside the process that runs the Worker: one hop per activation, batched per shard.

Decisions are made here, in the caller's handle, as Ray Serve's router does: which shard holds a
run, when to batch, when a shard looks dead. A ``ShardChannel`` is the line to one shard. It keeps
at most ``max_inflight`` requests in flight; an activation arriving while the line is busy waits
in a queue, and everything queued leaves as one batch as soon as a request returns. At low load
each activation is its own request (lowest latency); under load batches grow by themselves
(lowest CPU per activation).

No thread of our own carries requests: the Worker's executor thread that finds the line free
sends and waits itself. When a request returns, the next queued batch is handed to the thread
of one of its activations, woken to lead it; each waiting thread also keeps its own deadline, so
one slow request never holds another's caller past its budget. With ``HopExecutor`` a request
for a free line is sent even earlier, from the Worker's event loop as it hands the activation to
an executor thread (``start``); that thread then only reads the answer.

An activation is one ``InFlightActivation`` from the moment its run prepares it until its answer
is in: the run, the channel and ``HopExecutor`` all hold that same object.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from enum import Enum, auto
from typing import Any

from temporay.actors.transport import (
    COLLECT,
    RUN_BATCH,
    Call,
    ShardUnreachable,
    Transport,
    TransportTimeout,
)
from temporay.actors.wire import RunKey
from temporay.cluster.wakeup import Wakeup
from temporay.proto import hosting as pb

logger = logging.getLogger(__name__)

RETURN_MARGIN_S = 0.35
"""Of an activation's budget, what is kept for the answer's way back: after the shard's watchdog
interrupts a stuck run, the shard still unwinds it, formats the stack and replies, and the
router's thread must wake. With too small a margin a loaded machine's router times out first,
and the task failure loses the shard's stack."""


EARLY_SEND_MAX = 16 * 1024
"""Largest request ``ShardChannel.start`` sends from the Worker's event loop. Linux starts a TCP
socket with a 16 KiB send buffer (``tcp_wmem``; a Unix socket's is larger): a request of about
that size on an idle connection is taken by the kernel at once, whatever the shard is doing; a
bigger one, which could wait for the network, is sent by its executor thread. Activations are
mostly far smaller, even the first one of a run, which carries its template."""


@dataclass(frozen=True)
class CallFailure:
    """Why an activation got no completion from its shard."""

    kind: str  # "timeout" | "shard_lost" | "error"
    message: str


class TaskKind(Enum):
    """What a waiting caller's thread is woken to do for its channel."""

    SEND_BATCH = auto()  # send queued activations as one request (the line was taken for it)
    COLLECT = auto()  # ask the shard for the answers a request left pending


@dataclass(frozen=True, slots=True)
class LeaderTask:
    """Work for the channel, handed to the thread of one of ``items``, which leads it."""

    kind: TaskKind
    items: list[InFlightActivation]


class InFlightActivation:
    """One activation on its way to a shard and back; resolved exactly once.

    Made by its run (``RemoteRun``) with what the run needs to finish it (``channel``,
    ``first``); queued, batched and waited for by the channel; and, when ``ShardChannel.start``
    took the line for it on the Worker's event loop, holding that request (``early_payload``)
    until its executor thread finishes it."""

    __slots__ = (
        "_event",
        "_task",
        "abandoned",
        "alone",
        "channel",
        "deadline",
        "early_call",
        "early_error",
        "early_payload",
        "envelope",
        "failure",
        "first",
        "key",
        "result",
    )

    def __init__(
        self,
        key: RunKey,
        envelope: pb.ActivationEnvelope,
        deadline: float,
        alone: pb.ActivationBatch | None = None,
        *,
        channel: ShardChannel | None = None,
        first: bool = False,
    ) -> None:
        self.key = key
        self.envelope = envelope
        self.alone = alone
        """The one-item batch ``envelope`` was made in, if it was: a request of its own then
        sends it as is instead of copying the envelope (with the activation) into a new one."""
        self.deadline = deadline
        self.channel = channel
        """The line it was prepared for (``None``: its caller drives a channel itself)."""
        self.first = first
        """Its run's first activation: it places the run on ``channel``."""
        self.early_payload: bytes | None = None
        """The request ``ShardChannel.start`` built for it alone, holding a place on the line."""
        self.early_call: Call | None = None
        """That request, sent already (from the Worker's event loop)."""
        self.early_error: Exception | None = None
        """Why sending that request failed, reported on the executor thread."""
        self.result: pb.CompletionEnvelope | None = None
        self.failure: CallFailure | None = None
        self.abandoned = False
        self._task: LeaderTask | None = None
        self._event = Wakeup()

    @property
    def begun_early(self) -> bool:
        """``start`` took the line for it: ``activate`` or ``abandon`` must follow."""
        return self.early_payload is not None

    @property
    def sent_early(self) -> bool:
        """Its request left before its executor thread woke."""
        return self.early_call is not None

    @property
    def resolved(self) -> bool:
        return self.result is not None or self.failure is not None

    def resolve(
        self, result: pb.CompletionEnvelope | None = None, failure: CallFailure | None = None
    ) -> None:
        if self.result is not None or self.failure is not None:
            return  # resolved already
        self.result = result
        self.failure = failure
        self._event.set()


def _set_budget(envelope: pb.ActivationEnvelope, deadline: float, now: float) -> None:
    """What is left of the activation's budget when it leaves, less the answer's way back."""
    if deadline != float("inf"):
        envelope.budget_ms = max(int((deadline - now - RETURN_MARGIN_S) * 1000), 1)


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


class ShardChannel:
    """The router's line to one shard."""

    def __init__(
        self,
        member: ShardMember,
        transport: Transport,
        *,
        max_inflight: int,
        max_batch: int,
        on_unreachable: Callable[[ShardMember, BaseException], None],
        on_timeout: Callable[[ShardMember], None],
        on_stuck: Callable[[ShardMember, int], None],
    ) -> None:
        self.member = member
        self.transport = transport
        self._max_inflight = max_inflight
        self._max_batch = max_batch
        self._on_unreachable = on_unreachable
        self._on_timeout = on_timeout
        self._on_stuck = on_stuck
        self._lock = threading.Lock()
        self._queue: list[InFlightActivation] = []
        self._inflight = 0
        self._dispose: list[RunKey] = []
        self.requests = 0
        self.items = 0

    # --- the caller's side ----------------------------------------------------------------------

    def start(self, pending: InFlightActivation) -> bool:
        """Take the line for ``pending`` and send it as a request of its own now, if the line is
        free and sending cannot block; whether the line was taken (if not, ``activate`` will
        queue it). A taken line is held until ``activate`` or ``abandon`` is called with it.

        Called on the Worker's event loop (``HopExecutor``), so the shard works on the
        activation while an executor thread wakes to wait for the answer. Never raises: a
        failure to send is kept for ``activate`` to report on that thread."""
        with self._lock:
            if self._inflight >= self._max_inflight or self._queue:
                return False
            self._inflight += 1
        try:
            payload = self._batch_payload([pending])
        except Exception:
            logger.exception("Building the request for run %s failed", pending.key.run_id)
            self._release()
            return False
        pending.early_payload = payload
        if len(payload) <= EARLY_SEND_MAX:
            try:
                pending.early_call = self.transport.send(
                    RUN_BATCH, payload, self._timeout([pending]), may_block=False
                )
            except Exception as err:
                pending.early_error = err
        return True

    def activate(self, pending: InFlightActivation) -> None:
        """Send (or queue) one activation, or finish the request ``start`` began for it;
        return once it is resolved or its deadline passed."""
        if pending.begun_early:
            leading = True
            self._run_batch([pending], early=True)
        else:
            with self._lock:
                if self._inflight < self._max_inflight and not self._queue:
                    self._inflight += 1
                    leading = True
                else:
                    self._queue.append(pending)
                    leading = False
            if leading:
                self._run_batch([pending])
        if (
            leading
            and pending._task is None
            and (pending.result is not None or pending.failure is not None)
        ):
            return  # the common case: our own request brought our answer
        self._wait(pending)

    def abandon(self, pending: InFlightActivation) -> None:
        """No thread will finish the request ``start`` began for ``pending`` (the Worker's
        executor refused it): fail the activation and free the line."""
        if pending.early_call is not None:
            pending.early_call.abandon()
        self._fail([pending], CallFailure("error", "the Worker's executor refused the activation"))
        self._release()

    def _wait(self, pending: InFlightActivation) -> None:
        while True:
            remaining = pending.deadline - time.monotonic()
            timeout = None if remaining == float("inf") else max(remaining, 0.0)
            fired = pending._event.wait(timeout)
            with self._lock:
                task, pending._task = pending._task, None
                pending._event.clear()
                if task is None:
                    if pending.resolved:
                        return
                    if not fired:
                        pending.abandoned = True
                        pending.failure = CallFailure(
                            "timeout", "the shard did not answer within the budget"
                        )
                        break
                    continue
            if task.kind is TaskKind.SEND_BATCH:
                self._run_batch(task.items)
            else:
                self._collect(task.items)
        self._on_timeout(self.member)

    # --- leading a request ----------------------------------------------------------------------

    def _run_batch(self, batch: list[InFlightActivation], early: bool = False) -> None:
        """Send ``batch`` as one request and deliver its answers; ``early``: finish the request
        ``start`` began for its one activation."""
        try:
            if early:
                (alone,) = batch
                payload = alone.early_payload
                assert payload is not None
                self._request(RUN_BATCH, payload, batch, alone.early_call, alone.early_error)
            else:
                self._request(RUN_BATCH, self._batch_payload(batch), batch)
        finally:
            self._release()

    def _batch_payload(self, batch: list[InFlightActivation]) -> bytes:
        now = time.monotonic()
        alone = batch[0].alone if len(batch) == 1 else None
        if alone is not None:
            batch[0].alone = None  # sent once
            message = alone
            _set_budget(batch[0].envelope, batch[0].deadline, now)
        else:
            message = pb.ActivationBatch()
            for pending in batch:
                envelope = message.items.add()
                envelope.CopyFrom(pending.envelope)
                _set_budget(envelope, pending.deadline, now)
        with self._lock:
            dispose, self._dispose = self._dispose, []
        for key in dispose:
            key.to_proto(message.dispose.add())
        self.requests += 1
        self.items += len(batch)
        return message.SerializeToString()

    @staticmethod
    def _timeout(batch: Sequence[InFlightActivation]) -> float | None:
        deadline = batch[0].deadline if len(batch) == 1 else max(p.deadline for p in batch)
        return None if deadline == float("inf") else max(deadline - time.monotonic(), 0.01)

    def _collect(self, waiting: list[InFlightActivation]) -> None:
        message = pb.ActivationBatch()
        for pending in waiting:
            pending.key.to_proto(message.dispose.add())
        self._request(COLLECT, message.SerializeToString(), waiting)

    def _request(
        self,
        kind: int,
        payload: bytes,
        batch: list[InFlightActivation],
        call: Call | None = None,
        send_error: Exception | None = None,
    ) -> None:
        """Wait for the answer to ``call``, sending the request first if nobody has yet."""
        timeout = self._timeout(batch)
        try:
            if send_error is not None:
                raise send_error
            if call is None:
                call = self.transport.send(kind, payload, timeout)
                assert call is not None
            data = call.result(timeout)
        except TransportTimeout:
            self._fail(batch, CallFailure("timeout", "the shard did not answer within the budget"))
        except ShardUnreachable as err:
            self._fail(batch, CallFailure("shard_lost", f"shard {self.member.name}: {err}"))
            self._on_unreachable(self.member, err)
        except Exception as err:
            self._fail(batch, CallFailure("error", f"shard {self.member.name}: {err!r}"))
        else:
            self._deliver(batch, data)

    def _deliver(self, batch: Sequence[InFlightActivation], data: bytes) -> None:
        result = pb.BatchResult.FromString(data)
        member = self.member
        if not member.instance:
            member.instance = result.shard_instance
        elif member.instance != result.shard_instance:
            # A restarted process behind the same handle holds none of our runs.
            self._on_unreachable(member, ShardUnreachable("the shard process was replaced"))
        member.strikes = 0
        if result.stuck_threads:
            self._on_stuck(member, result.stuck_threads)
        if len(batch) == 1 and len(result.done) == 1 and not result.pending:
            # The usual answer at low load: one item, done. Saves the general case's maps.
            envelope = result.done[0]
            if RunKey.from_proto(envelope.key) == batch[0].key:
                batch[0].resolve(result=envelope)
            return
        by_key = {p.key: p for p in batch}
        for envelope in result.done:
            found = by_key.pop(RunKey.from_proto(envelope.key), None)
            if found is not None:
                found.resolve(result=envelope)
        waiting = [
            by_key[key] for key in (RunKey.from_proto(k) for k in result.pending) if key in by_key
        ]
        if waiting:
            self._hand_over(LeaderTask(TaskKind.COLLECT, waiting))

    def _fail(self, batch: Sequence[InFlightActivation], failure: CallFailure) -> None:
        for pending in batch:
            pending.resolve(failure=failure)

    def _release(self) -> None:
        with self._lock:
            self._inflight -= 1
            while self._queue and self._inflight < self._max_inflight:
                batch = self._queue[: self._max_batch]
                self._queue = self._queue[len(batch) :]
                live = [p for p in batch if not p.abandoned]
                if not live:
                    continue
                self._inflight += 1
                self._assign(LeaderTask(TaskKind.SEND_BATCH, live))

    def _hand_over(self, task: LeaderTask) -> None:
        with self._lock:
            self._assign(task)

    def _assign(self, task: LeaderTask) -> None:
        """Wake one waiting caller of the task's items to carry it out (lock held).

        The caller with the latest deadline leads, so the request's timeout is its own."""
        items = [p for p in task.items if not p.abandoned and not p.resolved]
        if not items:
            if task.kind is TaskKind.SEND_BATCH:
                self._inflight -= 1
            return
        leader = max(items, key=lambda p: p.deadline)
        leader._task = LeaderTask(task.kind, items)
        leader._event.set()

    # --- disposals ----------------------------------------------------------------------------------

    def dispose(self, key: RunKey) -> None:
        """Drop a run on the shard; rides on the next batch, or the janitor's flush."""
        with self._lock:
            self._dispose.append(key)

    def take_disposals(self) -> list[RunKey]:
        with self._lock:
            dispose, self._dispose = self._dispose, []
        return dispose

    def fail_queued(self, failure: CallFailure) -> None:
        """Resolve everything still queued (the shard is gone)."""
        with self._lock:
            queued, self._queue = self._queue, []
            self._dispose = []
        for pending in queued:
            pending.resolve(failure=failure)
