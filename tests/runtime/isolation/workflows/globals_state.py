"""Module-level state that runs mutate: with isolation each run sees its own."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from temporalio import workflow

from . import globals_helper
from .globals_helper import bump_helper

COUNTER = 0
SEEN: list[str] = []
BY_RUN: dict[str, int] = {}


@dataclass
class Settings:
    label: str = "default"
    tags: list[str] = field(default_factory=list)


SETTINGS = Settings()


class Registry:
    entries: list[str] = []
    total = 0

    @classmethod
    def add(cls, item: str) -> int:
        cls.entries.append(item)
        cls.total += 1
        return cls.total


def uses_registry(registry: Registry) -> int:
    return registry.total


def bump() -> int:
    global COUNTER
    COUNTER += 1
    return COUNTER


@workflow.defn
class GlobalsWorkflow:
    def __init__(self) -> None:
        self.go = False

    @workflow.signal
    def proceed(self) -> None:
        self.go = True

    def registry_size(self, registry: Registry) -> int:
        # Never called by the tests: makes uses_registry reachable from the workflow class.
        return uses_registry(registry)

    def shared_registry(self) -> Any:
        # Never called either: the tests check what SHARED_REGISTRY is in a run's namespace.
        return SHARED_REGISTRY

    @workflow.run
    async def run(self, name: str) -> dict[str, Any]:
        first = {
            "counter": bump(),
            "seen": len(SEEN) + 1,
            "registry": Registry.add(name),
            "helper": bump_helper(),
            "helper_module": globals_helper.bump_via_module(),
            "settings_tags": len(SETTINGS.tags) + 1,
        }
        SEEN.append(name)
        BY_RUN[name] = first["counter"]
        SETTINGS.tags.append(name)
        SETTINGS.label = name
        GlobalsWorkflow.marker = name  # type: ignore[attr-defined]
        await workflow.wait_condition(lambda: self.go)
        second = {
            "counter": bump(),
            "seen": sorted(SEEN),
            "by_run": dict(BY_RUN),
            "registry": Registry.add(name),
            "helper": bump_helper(),
            "settings_label": SETTINGS.label,
            "marker": GlobalsWorkflow.marker,  # type: ignore[attr-defined]
        }
        return {"first": first, "second": second}


# Imported by name from a shared module: the shared module's object, in every run.
from tests.runtime.isolation.workflows.shared_helper import REGISTRY as SHARED_REGISTRY  # noqa: E402
