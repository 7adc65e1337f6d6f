"""Waiting on a workflow's history from tests, instead of sleeping a guessed time."""

from __future__ import annotations

import asyncio
from typing import Any


async def wait_for_first_task(handle: Any) -> None:
    """Until the workflow has completed its first workflow task (its first step has run)."""
    for _ in range(200):
        async for event in handle.fetch_history_events():
            if event.HasField("workflow_task_completed_event_attributes"):
                return
        await asyncio.sleep(0.05)
    raise AssertionError("the workflow never completed its first task")
