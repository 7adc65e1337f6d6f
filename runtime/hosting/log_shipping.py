"""Log records of hosted runs, taken in the hosting process and emitted in the Worker's.

A run hosted on a shard logs there: ``workflow.logger``, the engine's task-failure and dropped-
signal records (on the SDK's ``temporalio.worker._workflow_instance`` logger), whatever the user's
workflow code logs. Users configure logging in the Worker's process (handlers, JSON formatters,
filters, capturing handlers in tests), so those records must be emitted there, not printed by the
shard and forwarded by Ray as text. Three parts:

- ``LogLevels``: the Worker's effective levels (root and every logger given one), carried with a
  run's template and applied in the hosting process, so it builds the records the Worker would
  keep and no others;
- ``LogCapture``: a handler at the front of the hosting process's root logger. While a thread runs
  an activation (``LogCapture.activation``), the records that thread makes are turned into plain
  data (``shippable``) and kept for the completion, and the process's other handlers skip them;
  records made outside an activation are left to the process as before;
- ``emit_shipped``: in the Worker's process, each record is rebuilt and handed to its logger
  (``Logger.handle``), passing that logger's level and filters and the handlers it propagates to.

Records keep their own time, place (``pathname``, ``lineno``, ``funcName``), thread and process;
``temporay_shard`` and ``temporay_node_id`` say where they were made. An exception's traceback
travels as text (``exc_text``), which formatters print as they would the exception. An activation
ships at most ``MAX_RECORDS`` records of at most ``MAX_MESSAGE_CHARS`` characters each; past
that one warning says how many were dropped, so a logging loop in workflow code cannot stall the
hop or the Worker.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import msgpack

MAX_RECORDS = 1000
MAX_MESSAGE_CHARS = 32_768
_MAX_DEPTH = 6

_STANDARD_ATTRIBUTES = frozenset(vars(logging.makeLogRecord({}))) | {"message", "asctime"}
_SKIPPED = object()


@dataclass(frozen=True)
class LogLevels:
    """The levels of the Worker process's loggers, as the hosting process must mirror them."""

    root: int
    named: tuple[tuple[str, int], ...]

    @staticmethod
    def snapshot() -> LogLevels:
        named = []
        for name, logger in list(logging.root.manager.loggerDict.items()):
            if isinstance(logger, logging.Logger) and logger.level != logging.NOTSET:
                named.append((name, logger.level))
        return LogLevels(logging.root.level, tuple(sorted(named)))

    def apply(self) -> None:
        """Give this process's loggers the Worker's levels (the last Worker's, when several
        share a shard: they normally configure logging alike)."""
        logging.root.setLevel(self.root)
        for name, level in self.named:
            logging.getLogger(name).setLevel(level)


class _Shipped:
    """The records one thread's activation made so far."""

    __slots__ = ("dropped", "records")

    def __init__(self) -> None:
        self.records: list[dict[str, Any]] = []
        self.dropped = 0


class _SkipShipped(logging.Filter):
    """Put on the process's other root handlers: what is shipped is not also printed here."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not getattr(record, "_temporay_shipped", False)


class LogCapture(logging.Handler):
    """The hosting process's root handler that takes the records of running activations."""

    _installed: LogCapture | None = None

    def __init__(self, origin: Mapping[str, str]) -> None:
        super().__init__(logging.NOTSET)
        self._origin = dict(origin)
        self._local = threading.local()
        self._skip = _SkipShipped()

    @classmethod
    def install(cls, origin: Mapping[str, str]) -> LogCapture:
        """Put the capture at the front of the root logger (once per process)."""
        if cls._installed is None:
            cls._installed = cls(origin)
            logging.root.handlers.insert(0, cls._installed)
        cls._installed.guard_other_handlers()
        return cls._installed

    @classmethod
    def installed(cls) -> LogCapture | None:
        return cls._installed

    def guard_other_handlers(self) -> None:
        for handler in logging.root.handlers:
            if handler is not self and self._skip not in handler.filters:
                handler.addFilter(self._skip)

    def activation(self) -> _ActivationScope:
        return _ActivationScope(self)

    def _begin(self) -> None:
        self._local.shipped = _Shipped()

    def _end(self) -> list[dict[str, Any]]:
        shipped: _Shipped | None = getattr(self._local, "shipped", None)
        self._local.shipped = None
        if shipped is None:
            return []
        if shipped.dropped:
            shipped.records.append(_dropped_notice(shipped.dropped, self._origin))
        return shipped.records

    def handle(self, record: logging.LogRecord) -> bool:
        shipped: _Shipped | None = getattr(self._local, "shipped", None)
        if shipped is None:
            last_resort = logging.lastResort
            if (
                last_resort is not None
                and len(logging.root.handlers) == 1
                and not _has_own_handlers(record.name)
                and record.levelno >= last_resort.level
            ):
                # No handler but ours: do what logging does when there is none.
                last_resort.handle(record)
            return False
        record._temporay_shipped = True
        if len(shipped.records) >= MAX_RECORDS:
            shipped.dropped += 1
        else:
            shipped.records.append(shippable(record, self._origin, self))
        return True

    def emit(self, record: logging.LogRecord) -> None:  # handle() does the work
        raise NotImplementedError


class _ActivationScope:
    """``with capture.activation() as scope: ...``; ``scope.records`` once it has ended."""

    __slots__ = ("_capture", "records")

    def __init__(self, capture: LogCapture) -> None:
        self._capture = capture
        self.records: list[dict[str, Any]] = []

    def __enter__(self) -> _ActivationScope:
        self._capture._begin()
        return self

    def __exit__(self, *_: object) -> None:
        self.records = self._capture._end()


def _has_own_handlers(name: str) -> bool:
    logger: logging.Logger | None = logging.getLogger(name)
    while logger is not None and logger is not logging.root:
        if logger.handlers:
            return True
        logger = logger.parent if logger.propagate else None
    return False


def shippable(
    record: logging.LogRecord, origin: Mapping[str, str], formatter_of: logging.Handler
) -> dict[str, Any]:
    """The record as plain data: its message formatted, its traceback as text, extras kept when
    they are plain values (others as their ``repr``)."""
    data: dict[str, Any] = {}
    for key, value in vars(record).items():
        if key in ("msg", "args", "exc_info", "message", "_temporay_shipped"):
            continue
        if key in _STANDARD_ATTRIBUTES:
            data[key] = value
        else:
            plain = _plain(value, 0)
            if plain is not _SKIPPED:
                data[key] = plain
    try:
        message = record.getMessage()
    except Exception as err:  # a bad format string: logging would print an error instead
        message = f"{record.msg!r} (could not format with {record.args!r}: {err})"
    data["msg"] = _truncate(message)
    data["args"] = None
    if record.exc_info and not record.exc_text:
        data["exc_text"] = (formatter_of.formatter or logging.Formatter()).formatException(
            record.exc_info
        )
    data.update(origin)
    return data


def _truncate(text: str) -> str:
    if len(text) <= MAX_MESSAGE_CHARS:
        return text
    return text[:MAX_MESSAGE_CHARS] + f"... [{len(text) - MAX_MESSAGE_CHARS} characters cut]"


def _plain(value: Any, depth: int) -> Any:
    if value is None or isinstance(value, bool | int | float):
        return value
    if isinstance(value, str):
        return _truncate(value)
    if depth >= _MAX_DEPTH:
        return repr(value)
    if isinstance(value, Mapping):
        return {str(k): _plain(v, depth + 1) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v, depth + 1) for v in value]
    if callable(value):
        return _SKIPPED
    return _truncate(repr(value))


def _dropped_notice(count: int, origin: Mapping[str, str]) -> dict[str, Any]:
    record = logging.makeLogRecord(
        {
            "name": "temporay.runtime",
            "levelno": logging.WARNING,
            "levelname": "WARNING",
            "msg": f"{count} more log records of this activation were dropped "
            f"(temporay ships at most {MAX_RECORDS} per activation)",
        }
    )
    data = {k: v for k, v in vars(record).items() if k != "exc_info"}
    data.update(origin)
    return data


def pack_records(records: list[dict[str, Any]]) -> bytes:
    return msgpack.packb(records, use_bin_type=True) if records else b""


def unpack_records(data: bytes) -> list[dict[str, Any]]:
    return msgpack.unpackb(data, raw=False) if data else []


def emit_shipped(records: Iterable[Mapping[str, Any]]) -> None:
    """Emit records shipped from a hosting process through this process's loggers."""
    for data in records:
        record = logging.makeLogRecord(dict(data))
        logger = logging.getLogger(record.name)
        if logger.isEnabledFor(record.levelno):
            logger.handle(record)
