"""The differential corpus: one module per feature area, each exporting ``SCENARIOS``.

Every scenario also runs as variants (``<name>-batch``, ``<name>-nocache``, some as
``<name>-debug``), see ``ALL_SCENARIOS``.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from ..harness import Scenario
from . import (
    activities,
    advanced,
    bad_input,
    basics,
    cancellation,
    children,
    codec_contexts,
    interceptors,
    local_activities,
    messages,
    nexus_ops,
    ordering,
    patches,
    timers,
    updates,
)

DEBUG_MODE_SCENARIOS = {"return", "activity_call_styles", "signals", "updates", "children"}

# Update-with-start never gets its first workflow task on a worker without a cache (whichever
# engine: sdk-core/server behaviour), so the client waits forever.
NO_CACHE_EXCLUDED = {"updates_runtime_with_start", "update_with_start_init"}

BASE_SCENARIOS: list[Scenario] = [
    *basics.SCENARIOS,
    *activities.SCENARIOS,
    *timers.SCENARIOS,
    *messages.SCENARIOS,
    *updates.SCENARIOS,
    *children.SCENARIOS,
    *cancellation.SCENARIOS,
    *patches.SCENARIOS,
    *interceptors.SCENARIOS,
    *local_activities.SCENARIOS,
    *nexus_ops.SCENARIOS,
    *bad_input.SCENARIOS,
    *advanced.SCENARIOS,
    *codec_contexts.SCENARIOS,
    *ordering.SCENARIOS,
]


def _variant(scenario: Scenario, suffix: str, **changes: Any) -> Scenario:
    return dataclasses.replace(scenario, name=f"{scenario.name}-{suffix}", **changes)


ALL_SCENARIOS: list[Scenario] = [
    *BASE_SCENARIOS,
    # Internal flag 2 on by default (the SDK's announced next default).
    *(_variant(s, "batch", single_batch=True) for s in BASE_SCENARIOS if not s.single_batch),
    # No run cache: every workflow task replays the whole history into a new instance, and every
    # instance is evicted with its coroutines still pending.
    *(
        _variant(s, "nocache", worker_kwargs={**s.worker_kwargs, "max_cached_workflows": 0})
        for s in BASE_SCENARIOS
        if "max_cached_workflows" not in s.worker_kwargs and s.name not in NO_CACHE_EXCLUDED
    ),
    # debug_mode: activations run inline on the Worker's event loop thread.
    *(
        _variant(s, "debug", worker_kwargs={**s.worker_kwargs, "debug_mode": True})
        for s in BASE_SCENARIOS
        if s.name in DEBUG_MODE_SCENARIOS
    ),
]
