"""The shards one router uses: creation, placement, failure detection, replacement, teardown."""

from __future__ import annotations

import itertools
import logging
import secrets
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import ray

from temporay.actors.shard import READY_COPIES_PER_CLASS, Shard
from temporay.actors.transport import Endpoint, RayCallTransport, SocketTransport, Transport
from temporay.cluster.options import TRANSPORTS
from temporay.cluster.routing import CallFailure, ShardChannel, ShardMember

logger = logging.getLogger(__name__)

STRIKES_BEFORE_PROBE = 3
"""Timed-out activations in a row before a shard's health is checked."""
PROBE_TIMEOUT_S = 10.0
"""A shard that does not answer a ping (its own concurrency group) this long is replaced: slow
is not dead, and killing a merely overloaded shard would only add replays to the load."""

STUCK_THREADS_LIMIT = 4
"""Threads of a shard still stuck in activations the watchdog gave up on (blocked in C code, out
of reach of its interrupt) before the shard is recycled: each holds its run's memory and a
thread for good."""


@dataclass(frozen=True)
class ShardSettings:
    count: int
    threads: int
    max_concurrency: int
    num_cpus: float
    max_inflight: int
    max_batch: int
    namespace: str
    runtime_env: dict[str, Any]
    engine_factory: bytes
    transport: str = "socket"
    name_prefix: str = "temporay-shard"
    replace_lost: bool = True
    ready_copies: int = READY_COPIES_PER_CLASS
    actor_options: tuple[tuple[str, Any], ...] = ()


class ShardStartError(RuntimeError):
    """A shard did not start in time (short of resources, or its runtime_env failed)."""


def _resource_hint(settings: ShardSettings) -> str:
    want = settings.count * settings.num_cpus
    free = ray.available_resources().get("CPU", 0.0) if ray.is_initialized() else 0.0
    if want > 0:
        return (
            f"{settings.count} shards x {settings.num_cpus:g} CPU = {want:g} CPU wanted, "
            f"{free:g} CPU free in the cluster; lower shards= or shard_num_cpus=, or add nodes "
            "(`ray status` shows who holds what)"
        )
    return "check the shard's log (`ray logs`, or the dashboard) for a failed runtime_env"


def ping(handle: Any, timeout: float) -> str | None:
    """A shard's instance id, or ``None`` if it does not answer in time (or is dead)."""
    try:
        return str(ray.get(handle.ping.remote(), timeout=timeout))
    except Exception:
        return None


class ShardPool:
    def __init__(
        self,
        router_id: str,
        settings: ShardSettings,
        *,
        registry: Any | None,
        on_shard_lost: Callable[[ShardMember], None],
    ) -> None:
        if settings.transport not in TRANSPORTS:
            raise ValueError(f"transport must be one of {TRANSPORTS}, not {settings.transport!r}")
        self.router_id = router_id
        self._settings = settings
        self._registry = registry
        self._on_shard_lost = on_shard_lost
        self._lock = threading.Lock()
        self._channels: list[ShardChannel] = []
        self._secrets: dict[str, bytes] = {}
        self._names = itertools.count()
        self._closing = False
        self._closed = threading.Event()
        # Suspicions are raised on the Worker's executor threads; checking them takes Ray calls
        # that can block for seconds, so they run on a thread of their own.
        self._events = ThreadPoolExecutor(1, thread_name_prefix="temporay-shard-events")

    # --- lifecycle ----------------------------------------------------------------------------------

    def start(self, timeout: float = 120.0) -> None:
        """Create every shard and wait until each answers (so the first activation is fast)."""
        members = [self._spawn() for _ in range(self._settings.count)]
        deadline = time.monotonic() + timeout
        for member in members:
            instance = ping(member.handle, max(deadline - time.monotonic(), 0.1))
            if instance is None:
                raise ShardStartError(
                    f"shard {member.name} did not start within {timeout:.0f}s: "
                    f"{_resource_hint(self._settings)}"
                )
            self._admit(member, instance)

    def add_one(self, timeout: float = 60.0) -> ShardChannel:
        """Start one more shard now and return its channel (blocking)."""
        member = self._spawn()
        instance = ping(member.handle, timeout)
        if instance is None:
            try:
                ray.kill(member.handle, no_restart=True)
            except Exception:
                pass
            raise RuntimeError(f"actor {member.name} did not start within {timeout:.0f}s")
        channel = self._admit(member, instance)
        if channel is None:
            raise RuntimeError("the pool is closing")
        return channel

    def retire(self, channel: ShardChannel) -> None:
        """Stop one shard that holds no runs (a recycled dedicated actor over the idle limit)."""
        with self._lock:
            if channel in self._channels:
                self._channels.remove(channel)
        channel.member.alive = False
        channel.transport.close()
        try:
            ray.kill(channel.member.handle, no_restart=True)
        except Exception:
            pass
        if self._registry is not None:
            self._registry.shard_dead.remote(channel.member.name, "retired")

    def _spawn(self) -> ShardMember:
        s = self._settings
        name = f"{s.name_prefix}-{self.router_id[:8]}-{next(self._names)}"
        secret = secrets.token_bytes(32) if s.transport == "socket" else b""
        self._secrets[name] = secret
        options: dict[str, Any] = {
            "name": name,
            "namespace": s.namespace,
            "max_concurrency": s.max_concurrency,
            "num_cpus": s.num_cpus,
            "scheduling_strategy": "SPREAD",
        }
        if s.runtime_env:
            options["runtime_env"] = s.runtime_env
        options.update(dict(s.actor_options))
        handle = Shard.options(**options).remote(  # type: ignore[attr-defined]
            name, s.engine_factory, s.threads, secret, s.ready_copies
        )
        return ShardMember(name=name, handle=handle)

    def _transport(self, member: ShardMember) -> Transport:
        secret = self._secrets.pop(member.name, b"")
        if not secret:
            return RayCallTransport(member.handle)
        host, port, local_name = ray.get(member.handle.endpoint.remote(), timeout=30)
        return SocketTransport(Endpoint(host, port, secret, local_name))

    def _admit(self, member: ShardMember, instance: str) -> ShardChannel | None:
        member.instance = instance
        channel = ShardChannel(
            member,
            self._transport(member),
            max_inflight=self._settings.max_inflight,
            max_batch=self._settings.max_batch,
            on_unreachable=self._suspect,
            on_timeout=self._timed_out,
            on_stuck=self._stuck,
        )
        with self._lock:
            closing = self._closing
            if not closing:
                self._channels.append(channel)
        if closing:
            channel.transport.close()
            ray.kill(member.handle, no_restart=True)
            return None
        if self._registry is not None:
            self._registry.register_shard.remote(member.name, self.router_id, "", member.handle)
        return channel

    def close(self, timeout: float = 10.0) -> int:
        """Drop every run of this router on every shard (unwinding them), then kill the shards."""
        with self._lock:
            self._closing = True
            channels = list(self._channels)
        self._closed.set()
        refs = [
            c.member.handle.drop_router.remote(self.router_id) for c in channels if c.member.alive
        ]
        dropped = 0
        try:
            for count in ray.get(refs, timeout=timeout):
                dropped += int(count)
        except Exception:
            logger.warning("Draining runs from shards did not finish in %.0fs", timeout)
        for channel in channels:
            channel.transport.close()
            try:
                ray.kill(channel.member.handle, no_restart=True)
            except Exception:
                pass
            channel.member.alive = False
        self._events.shutdown(wait=False, cancel_futures=True)
        return dropped

    # --- placement ----------------------------------------------------------------------------------

    def place(self) -> ShardChannel:
        """The live shard with the fewest of this router's runs."""
        with self._lock:
            live = [c for c in self._channels if c.member.alive]
            if not live:
                raise NoLiveShardError("no live shard to place the run on")
            channel = min(live, key=lambda c: c.member.runs)
            channel.member.runs += 1
        return channel

    def release(self, channel: ShardChannel) -> None:
        with self._lock:
            channel.member.runs = max(channel.member.runs - 1, 0)

    def channels(self) -> list[ShardChannel]:
        with self._lock:
            return list(self._channels)

    def live_count(self) -> int:
        with self._lock:
            return sum(1 for c in self._channels if c.member.alive)

    def flush_disposals(self) -> None:
        for channel in self.channels():
            keys = channel.take_disposals()
            if keys and channel.member.alive:
                try:
                    channel.member.handle.dispose.remote([tuple(k) for k in keys])
                except Exception:
                    logger.debug("Flushing disposals to %s failed", channel.member.name)

    # --- failures -----------------------------------------------------------------------------------

    def _timed_out(self, member: ShardMember) -> None:
        member.strikes += 1
        if member.strikes >= STRIKES_BEFORE_PROBE:
            self._suspect(member, TimeoutError("activations time out"))

    def _stuck(self, member: ShardMember, threads: int) -> None:
        if threads >= STUCK_THREADS_LIMIT and member.alive and not self._closed.is_set():
            error = RuntimeError(f"{threads} threads stuck in activations; recycling the shard")
            try:
                self._events.submit(self._lost, member, error)
            except RuntimeError:
                pass

    def _suspect(self, member: ShardMember, error: BaseException) -> None:
        if member.alive and not self._closed.is_set():
            try:
                self._events.submit(self._check, member, error)
            except RuntimeError:
                pass  # closing

    def _check(self, member: ShardMember, error: BaseException) -> None:
        """A shard is lost only if Ray cannot reach it either (a broken connection is not enough)."""
        if not member.alive or self._closed.is_set():
            return
        instance = ping(member.handle, PROBE_TIMEOUT_S)
        if instance is not None and instance == member.instance:
            member.strikes = 0
            return
        self._lost(member, error if instance is None else RuntimeError("shard process replaced"))

    def _lost(self, member: ShardMember, error: BaseException) -> None:
        with self._lock:
            if not member.alive:
                return
            member.alive = False
            channel = next((c for c in self._channels if c.member is member), None)
            if channel is not None:
                self._channels.remove(channel)
            closing = self._closing
        logger.warning("Shard %s lost: %s", member.name, error)
        if channel is not None:
            channel.fail_queued(CallFailure("shard_lost", f"shard {member.name} was lost"))
            channel.transport.close()
        try:
            ray.kill(member.handle, no_restart=True)
        except Exception:
            pass
        if self._registry is not None:
            self._registry.shard_dead.remote(member.name, repr(error))
        self._on_shard_lost(member)
        if not closing and self._settings.replace_lost:
            threading.Thread(
                target=self._replace, name="temporay-shard-replace", daemon=True
            ).start()

    def _replace(self) -> None:
        """Start a shard in place of a lost one, retrying with backoff until the pool closes.

        Every Ray call here is guarded by the pool's closed event and ``ray.is_initialized()``:
        a Ray call after ``ray.shutdown()`` would silently start or join a cluster."""
        delay = 0.5
        while not self._closed.is_set():
            if not ray.is_initialized():
                return
            member = self._spawn()
            instance = None
            deadline = time.monotonic() + 120.0
            while instance is None and time.monotonic() < deadline:
                if self._closed.is_set() or not ray.is_initialized():
                    break
                instance = ping(member.handle, 1.0)
            if instance is not None and not self._closed.is_set():
                try:
                    self._admit(member, instance)
                except Exception:
                    logger.exception("Admitting replacement shard %s failed", member.name)
                else:
                    logger.info("Shard %s replaced a lost one", member.name)
                    return
            if ray.is_initialized():
                try:
                    ray.kill(member.handle, no_restart=True)
                except Exception:
                    pass
            self._closed.wait(delay)
            delay = min(delay * 2, 10.0)


class NoLiveShardError(RuntimeError):
    """Every shard of the runner is dead and none has been replaced yet."""
