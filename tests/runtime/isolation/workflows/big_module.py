"""A big workflow module: several workflow classes sharing a helper and mutable globals, and
classes that no run of those reaches (a run must not pay for them, nor see their state)."""

from __future__ import annotations

import typing
from typing import Any

from temporalio import workflow

from . import big_module_state  # module-level binding: reached by UnrelatedWorkflow1 only

EVENTS: list[str] = []
TALLY: dict[str, int] = {}
TOTAL = 0


def record(event: str) -> int:
    """The helper both WriterWorkflow and ReaderWorkflow call."""
    global TOTAL
    EVENTS.append(event)
    TALLY[event] = TALLY.get(event, 0) + 1
    TOTAL += 1
    return TOTAL


class Ledger:
    entries: list[str] = []

    @classmethod
    def add(cls, entry: str) -> int:
        cls.entries.append(entry)
        return len(cls.entries)


@workflow.defn
class WriterWorkflow:
    def __init__(self) -> None:
        self.go = False

    @workflow.signal
    def proceed(self) -> None:
        self.go = True

    @workflow.run
    async def run(self, name: str) -> dict[str, Any]:
        record(name)
        record(name)
        Ledger.add(name)
        await workflow.wait_condition(lambda: self.go)
        return {"total": TOTAL, "events": list(EVENTS), "ledger": list(Ledger.entries)}


@workflow.defn
class ReaderWorkflow:
    @workflow.run
    async def run(self) -> dict[str, Any]:
        seen: dict[str, Any] = {"total": TOTAL, "events": list(EVENTS), "tally": dict(TALLY)}
        seen["after_record"] = record("reader")
        return seen


@workflow.defn
class ImportingWorkflow:
    """Imports a user module inside a method: the run's copy of it, copied whole."""

    @workflow.run
    async def run(self) -> list[int]:
        from . import big_module_lazy

        return [big_module_lazy.bump(), big_module_lazy.bump()]


@workflow.defn
class EscapingWorkflow:
    """Reaches its module through globals(): every own module is copied whole, as if nothing
    were known."""

    @workflow.run
    async def run(self, name: str) -> int:
        cache = globals()["UNRELATED_CACHE"]
        cache.setdefault(name, []).append(name)
        return len(cache)


Reading = dict[str, int]  # named only in a string annotation of a function made at run time


@workflow.defn
class NestedAnnotationsWorkflow:
    """Makes a handler at run time: under ``from __future__ import annotations`` its annotations
    are strings, resolved later against the run's namespace (the SDK does so for every handler
    set with ``workflow.set_signal_handler``)."""

    @workflow.run
    async def run(self) -> str:
        def handler(value: Reading, *extra: Any) -> None:
            del value, extra

        return str(typing.get_type_hints(handler)["value"])


# --- what WriterWorkflow and ReaderWorkflow never reach --------------------------------------

UNRELATED_CACHE: dict[str, list[str]] = {"seed": []}


class UnrelatedHelper:
    calls = 0

    @classmethod
    def call(cls) -> int:
        cls.calls += 1
        return cls.calls


@workflow.defn
class UnrelatedWorkflow1:
    @workflow.run
    async def run(self) -> int:
        UNRELATED_CACHE["one"] = []
        return big_module_state.bump() + UnrelatedHelper.call()


@workflow.defn
class UnrelatedWorkflow2:
    @workflow.signal
    def poke(self) -> None:
        UNRELATED_CACHE.setdefault("two", [])

    @workflow.run
    async def run(self) -> int:
        return UnrelatedHelper.call()


@workflow.defn
class UnrelatedWorkflow3:
    @workflow.query
    def size(self) -> int:
        return len(UNRELATED_CACHE)

    @workflow.run
    async def run(self) -> int:
        return len(UNRELATED_CACHE)


@workflow.defn
class UnrelatedWorkflow4:
    @workflow.run
    async def run(self, n: int) -> int:
        return sum(range(n))


@workflow.defn
class UnrelatedWorkflow5:
    @workflow.run
    async def run(self) -> str:
        return "five"
