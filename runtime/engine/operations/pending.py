"""The operations of a run that wait for core's answer, by sequence number.

Each operation's handle goes in when its command is issued and out when the activator applies
its resolve job; meanwhile the Worker's context questions about the command are answered from it.
"""

from __future__ import annotations

from typing import Any

from temporay.runtime.engine.operations.activities import ActivityHandle
from temporay.runtime.engine.operations.child_workflows import ChildWorkflowHandle
from temporay.runtime.engine.operations.external_workflows import PendingRequests
from temporay.runtime.engine.operations.nexus import NexusOperationHandle


class PendingOperations:
    """One table per kind of operation (sequence numbers are counted per kind)."""

    __slots__ = ("activities", "children", "external_cancels", "external_signals", "nexus")

    def __init__(self) -> None:
        self.activities: dict[int, ActivityHandle] = {}
        self.children: dict[int, ChildWorkflowHandle] = {}
        self.nexus: dict[int, NexusOperationHandle[Any]] = {}
        self.external_signals: PendingRequests = {}
        self.external_cancels: PendingRequests = {}
