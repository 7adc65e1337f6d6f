"""A shard's watchdog: interrupts an activation that overruns its budget, keeping its stack.

Each activation in progress is a ``Running`` record in the shard's run table. Past its deadline
the watchdog captures the thread's stack (interrupting unwinds it) and raises an interrupt in
that thread, so the router gets a deadlock failure with the real stack before the Worker's own
deadlock timeout fires. A thread stuck in C code is out of reach of the interrupt; it is counted
as stuck until its activation ends.
"""

from __future__ import annotations

import logging
import threading
import time

from temporalio.bridge.runtime import Runtime as _BridgeRuntime
from temporalio.worker._workflow import _InterruptDeadlockError

from temporay.actors.run_table import RunTable
from temporay.runtime.hosting.failures import deadlock_error

logger = logging.getLogger(__name__)

WATCHDOG_IDLE_S = 0.1
"""The longest the watchdog sleeps. It wakes at the earliest deadline it knows of, so only an
activation begun while it sleeps, with less budget left than this, is interrupted up to this late.
A fixed short tick kept each idle shard's watchdog busy for nothing."""

WATCHDOG_MIN_SLEEP_S = 0.001
"""The shortest the watchdog sleeps, so a deadline a moment away never makes it spin."""


class Watchdog:
    """The thread that watches one shard's activations in progress (``RunTable.running``)."""

    def __init__(self, shard_name: str, table: RunTable) -> None:
        self._name = shard_name
        self._table = table
        self._stop = threading.Event()
        self._thread = threading.Thread(
            target=self._watch, name=f"{shard_name}-watchdog", daemon=True
        )
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()

    def _watch(self) -> None:
        table = self._table
        sleep_s = WATCHDOG_IDLE_S
        while not self._stop.wait(sleep_s):
            now = time.monotonic()
            with table.lock:
                watched = [r for r in table.running.values() if r.deadlock is None]
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
                with table.lock:
                    table.counters.deadlocks += 1
                    table.counters.stuck_threads.add(record.thread_id)
                logger.warning(
                    "Run %s exceeded its %.2fs activation budget on shard %s; interrupted",
                    record.key.run_id,
                    record.budget_s,
                    self._name,
                )
