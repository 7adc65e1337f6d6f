"""Shard metrics exported through Ray's metrics agent (Prometheus, the Ray dashboard's Metrics view).

Series are tagged with the shard name only — never a run id (unbounded cardinality); per-run facts
go to logs and the registry. Values are published from the shard's counters every few seconds, so
the hot path pays nothing for them. Ray prefixes custom metrics with ``ray_``.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

from ray.util import metrics as ray_metrics

from temporay.proto import hosting as pb

logger = logging.getLogger(__name__)

PUBLISH_PERIOD_S = 5.0


class ShardMetrics:
    def __init__(self, shard: str, read: Callable[[], pb.ShardStats]) -> None:
        tags = ("shard",)
        self._tags = {"shard": shard}
        self._read = read
        self._runs = ray_metrics.Gauge("temporay_shard_runs", "runs hosted by the shard", tags)
        self._stuck = ray_metrics.Gauge(
            "temporay_shard_stuck_threads", "threads stuck in activations past their budget", tags
        )
        self._rss = ray_metrics.Gauge("temporay_shard_rss_bytes", "resident memory", tags)
        self._activations = ray_metrics.Counter(
            "temporay_shard_activations", "activations processed", tags
        )
        self._batches = ray_metrics.Counter("temporay_shard_batches", "batches received", tags)
        self._deadlocks = ray_metrics.Counter(
            "temporay_shard_deadlocks", "activations that overran their budget", tags
        )
        self._engine_seconds = ray_metrics.Counter(
            "temporay_shard_engine_seconds", "time spent inside workflow engines", tags
        )
        self._last = pb.ShardStats()
        self._stop = threading.Event()
        threading.Thread(target=self._loop, name=f"{shard}-metrics", daemon=True).start()

    def _loop(self) -> None:
        while not self._stop.wait(PUBLISH_PERIOD_S):
            try:
                self.publish()
            except Exception:
                logger.debug("Publishing shard metrics failed", exc_info=True)

    def publish(self) -> None:
        now = self._read()
        last = self._last
        tags = self._tags
        self._runs.set(now.runs, tags)
        self._stuck.set(now.stuck_threads, tags)
        self._rss.set(now.rss_bytes, tags)
        for counter, delta in (
            (self._activations, now.activations - last.activations),
            (self._batches, now.batches - last.batches),
            (self._deadlocks, now.deadlocks - last.deadlocks),
            (self._engine_seconds, now.activation_seconds - last.activation_seconds),
        ):
            if delta > 0:
                counter.inc(delta, tags)
        self._last = now

    def stop(self) -> None:
        self._stop.set()
