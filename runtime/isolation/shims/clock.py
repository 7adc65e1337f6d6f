"""The workflow's clock behind ``time`` and ``datetime``, for workflow code written for plain
Python.

Every clock a workflow can read (wall, monotonic, performance, CPU) answers the workflow time, so
a value computed from them replays identically. Naive datetimes (``datetime.now()``, ``utcnow()``,
``today()``, ``date.today()``) are UTC, never the host's local time zone: a worker in another
time zone must replay the same values.

``datetime.datetime.now = ...`` cannot be patched (an immutable type), and a subclass would fail
``type(x) is datetime`` checks in converters: the stand-in classes construct real instances and
answer ``isinstance`` for the real classes (:class:`_TransparentMeta`).
"""

from __future__ import annotations

import datetime as _dt
import time as _time
from collections.abc import Callable
from typing import Any

from temporay.runtime.isolation.run_state import clock_run, present_as

__all__ = ["DATETIME_BOUND", "DATETIME_OVERRIDES", "TIME_OVERRIDES"]

_CLOCK_HINT = "workflow.time() / workflow.now()"


def _ns_clock(name: str, real: Callable[[], int]) -> Callable[[], int]:
    def clock_ns() -> int:
        st = clock_run(f"time.{name}", _CLOCK_HINT)
        return real() if st is None else st.now_ns()

    clock_ns.__name__ = clock_ns.__qualname__ = name
    clock_ns.__doc__ = f"Deterministic ``time.{name}``: the workflow time in a workflow run."
    clock_ns.__module__ = "time"
    return clock_ns


def _float_clock(name: str, real: Callable[[], float]) -> Callable[[], float]:
    def clock() -> float:
        st = clock_run(f"time.{name}", _CLOCK_HINT)
        return real() if st is None else st.now_ns() / 1e9

    clock.__name__ = clock.__qualname__ = name
    clock.__doc__ = f"Deterministic ``time.{name}``: the workflow time in a workflow run."
    clock.__module__ = "time"
    return clock


_real_localtime = _time.localtime
_real_gmtime = _time.gmtime
_real_ctime = _time.ctime
_real_asctime = _time.asctime
_real_strftime = _time.strftime


def _shim_seconds(secs: float | None, name: str) -> float | None:
    if secs is not None:
        return secs
    st = clock_run(f"time.{name}", _CLOCK_HINT)
    return None if st is None else st.now_ns() / 1e9


def _localtime(secs: float | None = None, /) -> _time.struct_time:
    return _real_localtime(_shim_seconds(secs, "localtime"))


def _gmtime(secs: float | None = None, /) -> _time.struct_time:
    return _real_gmtime(_shim_seconds(secs, "gmtime"))


def _ctime(secs: float | None = None, /) -> str:
    return _real_ctime(_shim_seconds(secs, "ctime"))


def _asctime(t: Any = None, /) -> str:
    if t is None:
        secs = _shim_seconds(None, "asctime")
        if secs is not None:
            t = _real_localtime(secs)
    return _real_asctime() if t is None else _real_asctime(t)


def _strftime(fmt: str, t: Any = None, /) -> str:
    if t is None:
        secs = _shim_seconds(None, "strftime")
        if secs is not None:
            t = _real_localtime(secs)
    return _real_strftime(fmt) if t is None else _real_strftime(fmt, t)


TIME_OVERRIDES: dict[str, Any] = {
    "time": _float_clock("time", _time.time),
    "time_ns": _ns_clock("time_ns", _time.time_ns),
    "monotonic": _float_clock("monotonic", _time.monotonic),
    "monotonic_ns": _ns_clock("monotonic_ns", _time.monotonic_ns),
    "perf_counter": _float_clock("perf_counter", _time.perf_counter),
    "perf_counter_ns": _ns_clock("perf_counter_ns", _time.perf_counter_ns),
    "process_time": _float_clock("process_time", _time.process_time),
    "process_time_ns": _ns_clock("process_time_ns", _time.process_time_ns),
    "thread_time": _float_clock("thread_time", _time.thread_time),
    "thread_time_ns": _ns_clock("thread_time_ns", _time.thread_time_ns),
    "localtime": _localtime,
    "gmtime": _gmtime,
    "ctime": _ctime,
    "asctime": _asctime,
    "strftime": _strftime,
}
"""Stand-ins for the clocks of the ``time`` module (``time.sleep`` is refused elsewhere)."""


# --- datetime ----------------------------------------------------------------------------------

_real_datetime = _dt.datetime
_real_date = _dt.date
_UTC = _dt.UTC


def _workflow_now(name: str) -> _dt.datetime | None:
    st = clock_run(name, "workflow.now()")
    if st is None:
        return None
    # Exactly workflow.now(): datetime.fromtimestamp(time_ns / 1e9, timezone.utc).
    return _real_datetime.fromtimestamp(st.now_ns() / 1e9, _UTC)


class _TransparentMeta(type):
    """Metaclass of the stand-in ``datetime``/``date`` classes: constructing one gives a real
    ``datetime.datetime``/``date`` and ``isinstance``/``issubclass`` answer for the real class, so
    converters, pydantic and ``type(x) is datetime`` checks in libraries see real objects."""

    _real: type

    def __instancecheck__(cls, instance: Any) -> bool:
        return isinstance(instance, cls._real)

    def __subclasscheck__(cls, subclass: type) -> bool:
        return issubclass(subclass, cls._real)

    def __call__(cls, *args: Any, **kwargs: Any) -> Any:
        if cls._real is not None and cls.__dict__.get("_stand_in", False):
            return cls._real(*args, **kwargs)
        return super().__call__(*args, **kwargs)


class _ShimDatetime(_real_datetime, metaclass=_TransparentMeta):
    """Stand-in for ``datetime.datetime``: ``now``/``utcnow``/``today`` read the workflow clock."""

    _real = _real_datetime
    _stand_in = True

    @classmethod
    def now(cls, tz: _dt.tzinfo | None = None) -> _dt.datetime:  # type: ignore[override]
        now = _workflow_now("datetime.datetime.now")
        if now is None:
            return _real_datetime.now(tz)
        return now.replace(tzinfo=None) if tz is None else now.astimezone(tz)

    @classmethod
    def utcnow(cls) -> _dt.datetime:  # type: ignore[override]
        now = _workflow_now("datetime.datetime.utcnow")
        if now is None:
            return _real_datetime.now(_UTC).replace(tzinfo=None)
        return now.replace(tzinfo=None)

    @classmethod
    def today(cls) -> _dt.datetime:  # type: ignore[override]
        now = _workflow_now("datetime.datetime.today")
        if now is None:
            return _real_datetime.today()
        return now.replace(tzinfo=None)

    @classmethod
    def __get_pydantic_core_schema__(cls, source: Any, handler: Callable[[Any], Any]) -> Any:
        return handler(_real_datetime)


class _ShimDate(_real_date, metaclass=_TransparentMeta):
    """Stand-in for ``datetime.date``: ``today`` reads the workflow clock (UTC)."""

    _real = _real_date
    _stand_in = True

    @classmethod
    def today(cls) -> _dt.date:  # type: ignore[override]
        now = _workflow_now("datetime.date.today")
        return _real_date.today() if now is None else now.date()

    @classmethod
    def __get_pydantic_core_schema__(cls, source: Any, handler: Callable[[Any], Any]) -> Any:
        return handler(_real_date)


present_as(_ShimDatetime, "datetime", "datetime")
present_as(_ShimDate, "date", "datetime")


DATETIME_OVERRIDES: dict[str, Any] = {"datetime": _ShimDatetime, "date": _ShimDate}

DATETIME_BOUND: dict[tuple[int, str], Any] = {
    (id(_real_datetime), "now"): _ShimDatetime.now,
    (id(_real_datetime), "utcnow"): _ShimDatetime.utcnow,
    (id(_real_datetime), "today"): _ShimDatetime.today,
    (id(_real_date), "today"): _ShimDate.today,
}
"""``from datetime import datetime; now = datetime.now`` binds a new bound method on every access:
found by (owner, name) rather than identity."""
