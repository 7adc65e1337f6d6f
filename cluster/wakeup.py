"""``Wakeup``: the flag a caller waiting for its activation's answer sleeps on."""

from __future__ import annotations

import threading


class Wakeup:
    """A flag one thread waits on and others set: ``threading.Event`` on a single lock.

    Every activation creates one and at low load nobody ever waits on it; an Event is a
    condition, a lock and a waiter list in Python code, this one C lock. ``wait`` consumes the
    flag (the one waiter clears it right after anyway)."""

    __slots__ = ("_lock",)

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._lock.acquire()  # held: not set

    def set(self) -> None:
        try:
            self._lock.release()
        except RuntimeError:
            pass  # set already

    def wait(self, timeout: float | None) -> bool:
        """Wait until set (``None``: for ever); returns whether it was, leaving it clear."""
        return self._lock.acquire(timeout=-1 if timeout is None else timeout)

    def clear(self) -> None:
        self._lock.acquire(blocking=False)
