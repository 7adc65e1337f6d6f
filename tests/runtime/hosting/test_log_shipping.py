"""Log records of hosted runs: taken on the activation's thread in the hosting process, shipped as
plain data, emitted through the Worker process's loggers (runtime/hosting/log_shipping.py)."""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator

import pytest

from temporay.runtime.hosting.log_shipping import (
    MAX_MESSAGE_CHARS,
    MAX_RECORDS,
    LogCapture,
    LogLevels,
    emit_shipped,
    pack_records,
    unpack_records,
)

ORIGIN = {"temporay_shard": "shard-x", "temporay_node_id": "node-y"}


class Kept(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@pytest.fixture
def capture() -> Iterator[tuple[LogCapture, Kept]]:
    """A capture at the front of the root logger, and another root handler behind it."""
    kept = Kept()
    capture = LogCapture(ORIGIN)
    root = logging.getLogger()
    root.handlers.insert(0, capture)
    root.addHandler(kept)
    capture.guard_other_handlers()
    level = root.level
    root.setLevel(logging.DEBUG)
    try:
        yield capture, kept
    finally:
        root.removeHandler(capture)
        root.removeHandler(kept)
        root.setLevel(level)


def test_an_activation_s_records_are_shipped_and_not_handled_here(
    capture: tuple[LogCapture, Kept],
) -> None:
    cap, kept = capture
    log = logging.getLogger("tests.shipping.code")
    others: list[None] = []

    def elsewhere() -> None:
        log.warning("from another thread")
        others.append(None)

    with cap.activation() as scope:
        log.info("inside %s", "the activation", extra={"custom": {"n": [1, 2]}, "fn": print})
        thread = threading.Thread(target=elsewhere)
        thread.start()
        thread.join()
    log.warning("after it")
    assert [r.getMessage() for r in kept.records] == ["from another thread", "after it"]
    [shipped] = scope.records
    assert shipped["msg"] == "inside the activation" and shipped["args"] is None
    assert shipped["custom"] == {"n": [1, 2]}
    assert "fn" not in shipped  # callables are not data
    assert shipped["temporay_shard"] == "shard-x" and shipped["temporay_node_id"] == "node-y"
    assert shipped["funcName"] == "test_an_activation_s_records_are_shipped_and_not_handled_here"


def test_a_flood_is_cut_with_one_notice(capture: tuple[LogCapture, Kept]) -> None:
    cap, _ = capture
    log = logging.getLogger("tests.shipping.flood")
    with cap.activation() as scope:
        for i in range(MAX_RECORDS + 500):
            log.info("record %d", i)
        log.info("x" * (MAX_MESSAGE_CHARS * 2))
    assert len(scope.records) == MAX_RECORDS + 1
    assert scope.records[-1]["msg"].startswith("501 more log records of this activation")
    assert scope.records[-1]["levelname"] == "WARNING"
    with cap.activation() as scope:
        log.info("x" * (MAX_MESSAGE_CHARS * 2))
    assert len(scope.records[0]["msg"]) < MAX_MESSAGE_CHARS + 50


def test_shipped_records_go_through_the_worker_s_loggers_levels_and_formatters(
    capture: tuple[LogCapture, Kept],
) -> None:
    cap, _ = capture
    log = logging.getLogger("tests.shipping.worker")
    with cap.activation() as scope:
        try:
            raise ValueError("bad value")
        except ValueError:
            log.exception("it failed for %s", "run-1", extra={"temporal_workflow": {"a": 1}})
        log.debug("debug detail")
    data = unpack_records(pack_records(scope.records))
    assert unpack_records(pack_records([])) == []

    # Emitted in "the Worker's process": its own logger, level and handler decide.
    target = logging.getLogger("tests.shipping.worker")
    kept = Kept()
    target.addHandler(kept)
    target.propagate = False
    target.setLevel(logging.INFO)
    try:
        emit_shipped(data)
    finally:
        target.removeHandler(kept)
        target.propagate = True
        target.setLevel(logging.NOTSET)
    [record] = kept.records  # the DEBUG one is below the Worker's level
    assert record.getMessage() == "it failed for run-1"
    assert record.levelname == "ERROR" and record.__dict__["temporal_workflow"] == {"a": 1}
    printed = logging.Formatter("%(levelname)s %(name)s: %(message)s").format(record)
    assert printed.startswith("ERROR tests.shipping.worker: it failed for run-1\nTraceback")
    assert printed.endswith("ValueError: bad value")


def test_log_levels_are_mirrored() -> None:
    named = logging.getLogger("tests.shipping.levels")
    named.setLevel(logging.ERROR)
    try:
        levels = LogLevels.snapshot()
        assert ("tests.shipping.levels", logging.ERROR) in levels.named
        assert levels.root == logging.getLogger().level
        named.setLevel(logging.DEBUG)
        levels.apply()
        assert named.level == logging.ERROR
    finally:
        named.setLevel(logging.NOTSET)
