"""Dedicated placement: a run (or a workflow type) that asks for it gets a Ray actor of its own.

A Ray actor is a whole process, slow to start, and every dead actor keeps some memory in the
GCS, so dedicated actors come from a warm pool and are recycled: when the run is evicted its
state is dropped on the actor, which goes back to the idle list (or is stopped when more than
``max_idle`` wait there).
"""

from __future__ import annotations

import dataclasses
import logging
import threading
from collections.abc import Callable, Collection, Iterable
from typing import Any

import temporalio.workflow

from temporay.cluster.pool import ShardPool, ShardSettings
from temporay.cluster.routing import ShardChannel, ShardMember
from temporay.runtime.placement import DEDICATED_MARKER

logger = logging.getLogger(__name__)

DedicatedSpec = Collection[str] | Callable[[temporalio.workflow.Info], bool]
"""How the runner keeps ``dedicated=``: type names, or a predicate on the run's ``Info``."""

DedicatedOption = Collection[str | type] | str | type | Callable[[temporalio.workflow.Info], bool]
"""What ``dedicated=`` accepts: workflow classes or type names (one or several), or a predicate."""


def normalize_dedicated(spec: Any) -> DedicatedSpec:
    """``dedicated=`` as the runner keeps it: a predicate, or a frozenset of type names.

    Workflow classes (as ``Worker(workflows=[...])`` takes them) become their type names; a bare
    name or class is taken as a one-item list; anything else is refused, naming the item."""
    if isinstance(spec, str) or _workflow_name(spec) is not None:
        spec = [spec]
    elif callable(spec):
        return spec  # type: ignore[no-any-return]
    try:
        items = list(spec)
    except TypeError:
        raise TypeError(
            "dedicated= takes workflow classes or type names, or a predicate on the run's "
            f"Info, not {spec!r}"
        ) from None
    names: set[str] = set()
    for item in items:
        name = item if isinstance(item, str) else _workflow_name(item)
        if not name:
            raise TypeError(
                "dedicated= takes workflow classes (decorated with @workflow.defn) or workflow "
                f"type names, not {item!r}"
            )
        names.add(name)
    return frozenset(names)


def _workflow_name(value: Any) -> str | None:
    if not isinstance(value, type):
        return None
    defn = temporalio.workflow._Definition.from_class(value)
    return defn.name if defn is not None and defn.name else None


def wants_dedicated(spec: DedicatedSpec, info: temporalio.workflow.Info, cls: type) -> bool:
    """Whether a run asked for its own actor: by marker on the class, by type name, or by the
    user's predicate on the run's ``Info`` (which can look at memo, search attributes, ids)."""
    if getattr(cls, DEDICATED_MARKER, False):
        return True
    if callable(spec):
        return bool(spec(info))
    return info.workflow_type in spec


def needs_dedicated(spec: DedicatedSpec, workflow_classes: Iterable[type]) -> bool:
    """Whether any run could ask for its own actor, so the runner starts a dedicated pool."""
    return bool(callable(spec) or spec) or any(
        getattr(cls, DEDICATED_MARKER, False) for cls in workflow_classes
    )


class DedicatedActorUnavailable(RuntimeError):
    """No warm dedicated actor in time; the workflow task is retried."""


class DedicatedPool:
    """Warm, recycled single-run actors."""

    def __init__(
        self,
        router_id: str,
        settings: ShardSettings,
        *,
        registry: Any | None,
        on_lost: Callable[[ShardMember], None],
        warm: int,
        max_idle: int,
    ) -> None:
        self._pool = ShardPool(router_id, settings, registry=registry, on_shard_lost=self._lost)
        self._on_lost = on_lost
        self._warm = warm
        self._max_idle = max(max_idle, warm)
        self._lock = threading.Lock()
        self._changed = threading.Condition(self._lock)
        self._idle: list[ShardChannel] = []
        self._refilling = False
        self._closed = False

    def start(self) -> None:
        if self._warm:
            self._pool.start()
            with self._lock:
                self._idle = self._pool.channels()

    def acquire(self, timeout: float) -> ShardChannel:
        """An idle actor, waiting up to ``timeout`` for the refill to start one; then top the
        pool up. Starting an actor takes longer than an activation may, so it never happens here:
        when none is ready in time the activation fails clearly and the server retries it."""
        self._refill_later()
        with self._changed:
            self._changed.wait_for(lambda: bool(self._idle) or self._closed, timeout)
            channel = self._take_idle()
        if channel is None:
            raise DedicatedActorUnavailable(
                f"no dedicated actor was ready within {timeout:.2f}s (raise dedicated_warm for "
                "bursts); the workflow task fails and the server retries it"
            )
        channel.member.runs = 1
        self._refill_later()
        return channel

    def _take_idle(self) -> ShardChannel | None:
        while self._idle:
            candidate = self._idle.pop()
            if candidate.member.alive:
                return candidate
        return None

    def release(self, channel: ShardChannel) -> None:
        """The run left the actor: recycle it (its state was dropped by the disposal)."""
        channel.member.runs = 0
        keys = channel.take_disposals()
        if keys and channel.member.alive:
            channel.member.handle.dispose.remote([tuple(k) for k in keys])
        with self._changed:
            keep = channel.member.alive and not self._closed and len(self._idle) < self._max_idle
            if keep:
                self._idle.append(channel)
                self._changed.notify_all()
        if not keep and channel.member.alive:
            self._pool.retire(channel)

    def _refill_later(self) -> None:
        with self._lock:
            if self._refilling or self._closed or len(self._idle) >= self._warm:
                return
            self._refilling = True
        threading.Thread(target=self._refill, name="temporay-dedicated-refill", daemon=True).start()

    def _refill(self) -> None:
        try:
            while True:
                with self._lock:
                    if self._closed or len(self._idle) >= self._warm:
                        return
                try:
                    channel = self._pool.add_one()
                except BaseException:  # includes Ray's SystemExit when Ray shuts down meanwhile
                    if not self._closed:
                        logger.warning("Starting a warm dedicated actor failed", exc_info=True)
                    return
                with self._changed:
                    self._idle.append(channel)
                    self._changed.notify_all()
        finally:
            with self._changed:
                self._refilling = False
                self._changed.notify_all()

    def _lost(self, member: ShardMember) -> None:
        with self._lock:
            self._idle = [c for c in self._idle if c.member is not member]
        self._on_lost(member)

    def channels(self) -> list[ShardChannel]:
        return self._pool.channels()

    def flush_disposals(self) -> None:
        self._pool.flush_disposals()

    def close(self, timeout: float = 10.0) -> int:
        with self._lock:
            self._closed = True
            self._idle = []
        return self._pool.close(timeout)


def start_dedicated_pool(
    router_id: str,
    shard_settings: ShardSettings,
    *,
    registry: Any | None,
    on_lost: Callable[[ShardMember], None],
    warm: int,
    max_idle: int,
    actor_options: dict[str, Any],
) -> DedicatedPool:
    """A started pool of single-run actors, made as the runner's shards are but for one run."""
    pool = DedicatedPool(
        router_id,
        dataclasses.replace(
            shard_settings,
            count=warm,
            threads=4,
            name_prefix="temporay-dedicated",
            replace_lost=False,
            ready_copies=0,  # one run per actor: copies made ahead would go unused
            actor_options=tuple(actor_options.items()),
        ),
        registry=registry,
        on_lost=on_lost,
        warm=warm,
        max_idle=max_idle,
    )
    pool.start()
    return pool
