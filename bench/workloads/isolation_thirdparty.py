"""The same workflow in a module that imports a few third-party packages (used by
bench/bench_isolation.py): the SDK's sandbox re-imports them for every run. (``requests`` is not
among them: the SDK's sandbox cannot import it at all unless it is passed through.)"""

from __future__ import annotations

import dataclasses
from datetime import timedelta

import attrs
import jsonschema  # type: ignore[import-untyped]
import packaging.version
import yaml  # type: ignore[import-untyped]
from temporalio import workflow

DEFAULTS = yaml.safe_load("retries: 3\nregion: eu\n")
SCHEMA = {"type": "object", "properties": {"order_id": {"type": "string"}}}
MIN_VERSION = packaging.version.Version("1.2.0")


@attrs.define
class Limits:
    max_amount: float = 1000.0


@dataclasses.dataclass
class OrderInput:
    order_id: str
    amount: float = 0.0


@workflow.defn
class ThirdPartyOrderWorkflow:
    def __init__(self) -> None:
        self.approved = False
        self.limits = Limits()

    @workflow.run
    async def run(self, input: OrderInput) -> str:
        jsonschema.validate({"order_id": input.order_id}, SCHEMA)
        await workflow.wait_condition(lambda: self.approved, timeout=timedelta(days=1))
        return f"{input.order_id}: {DEFAULTS['region']} {input.amount <= self.limits.max_amount}"

    @workflow.signal
    def approve(self) -> None:
        self.approved = True
