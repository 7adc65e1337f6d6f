"""What a shard's parts share about its runs, under one lock, and its answer for a lost run.

Batch serving, the run factory and the watchdog each keep their own state, but they meet here:
the runs the shard holds, the runs it dropped while their thread may still be inside the engine,
the activations in progress, the items a batch left for ``collect``, and the counters ``stats``
reports. One lock guards all of it, so a step that touches several (dropping an overdue run)
is seen whole by the others.
"""

from __future__ import annotations

import threading
from concurrent.futures import Future
from dataclasses import dataclass, field

from temporay.actors.wire import RunKey
from temporay.proto import hosting as pb
from temporay.runtime.hosting.failures import failed_completion
from temporay.runtime.hosting.hosted_run import HostedRun


class RunLostError(RuntimeError):
    """The shard cannot answer for this run any more; the Worker's core will evict it."""


@dataclass
class Running:
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
class Item:
    """One activation of a batch as its answer waits for it: whose, due when, on what budget."""

    key: RunKey
    deadline: float
    budget_s: float


@dataclass
class Counters:
    activations: int = 0
    batches: int = 0
    deadlocks: int = 0
    runs_created: int = 0
    runs_disposed: int = 0
    activation_seconds: float = 0.0
    batch_seconds: float = 0.0
    stuck_threads: set[int] = field(default_factory=set)


class RunTable:
    """A shard's runs and what its parts share about them; every field is guarded by ``lock``."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.runs: dict[RunKey, HostedRun] = {}
        # Runs dropped while their thread may still be inside the engine; never served again.
        self.lost: set[RunKey] = set()
        self.running: dict[RunKey, Running] = {}
        self.pending: dict[RunKey, tuple[Future[pb.CompletionEnvelope], Item]] = {}
        self.counters = Counters()

    def run_keys(self) -> list[RunKey]:
        with self.lock:
            return list(self.runs)

    def keys_of_router(self, router_id: str) -> list[RunKey]:
        with self.lock:
            return [k for k in self.runs if k.router_id == router_id]

    def dispose(self, keys: list[RunKey]) -> int:
        """Drop these runs and unwind each on this thread; how many the shard held."""
        disposed = 0
        for key in keys:
            with self.lock:
                run = self.runs.pop(key, None)
                self.pending.pop(key, None)
                self.lost.discard(key)
                if run is not None:
                    self.counters.runs_disposed += 1
            if run is not None:
                run.evict()
                disposed += 1
        return disposed


def lost_run_envelope(
    key: RunKey, error: BaseException, run: HostedRun | None = None
) -> pb.CompletionEnvelope:
    """The answer for an activation the shard cannot serve, whatever the reason: a task failure
    with ``error`` (converted with the run's own converters when the run is at hand), flagged
    ``run_lost`` so the Worker's core evicts the run."""
    envelope = pb.CompletionEnvelope(run_lost=True)
    key.to_proto(envelope.key)
    completion = (
        run.failed_completion(error) if run is not None else failed_completion(key.run_id, error)
    )
    envelope.completion = completion.SerializeToString()
    return envelope
