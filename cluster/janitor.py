"""Background chores of one runner: flush disposals, report placements to the registry."""

from __future__ import annotations

import logging
import threading
import time
import weakref
from typing import Protocol

logger = logging.getLogger(__name__)


class Chores(Protocol):
    def flush_disposals(self) -> None: ...

    def report_to_registry(self) -> None: ...

    def check_cluster(self) -> str | None: ...


class Janitor:
    """Holds only a weak reference to its runner, so an abandoned runner can be finalized."""

    DISPOSAL_PERIOD_S = 0.2
    REPORT_PERIOD_S = 1.0

    def __init__(self, owner: Chores) -> None:
        self._owner = weakref.ref(owner)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="temporay-janitor", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not threading.current_thread():
            self._thread.join(timeout=5)

    def _loop(self) -> None:
        last_report = time.monotonic()
        while not self._stop.wait(self.DISPOSAL_PERIOD_S):
            owner = self._owner()
            if owner is None:
                return
            try:
                owner.check_cluster()
                owner.flush_disposals()
                if time.monotonic() - last_report >= self.REPORT_PERIOD_S:
                    last_report = time.monotonic()
                    owner.report_to_registry()
            except Exception:
                logger.exception("temporay janitor chore failed")
            del owner
