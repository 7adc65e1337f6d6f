"""Placement requests made by workflow code's authors (no Ray here: workflow modules import it)."""

from __future__ import annotations

from typing import TypeVar

DEDICATED_MARKER = "__temporay_dedicated__"

_C = TypeVar("_C", bound=type)


def dedicated_actor(cls: _C) -> _C:
    """Class decorator: every run of this workflow gets a Ray actor of its own (under
    ``RayWorkflowRunner``; elsewhere it has no effect)."""
    setattr(cls, DEDICATED_MARKER, True)
    return cls
