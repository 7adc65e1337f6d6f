"""The Worker-side copy of a hosted run's serialization contexts.

The Worker asks a run's instance, on its event loop, which serialization context belongs to each
command. A hosted run lives in another process, which sends what its real instance answered
(``temporay.runtime.engine.command_contexts:ContextTracker``) with each completion; the mirror
keeps those answers so the Worker's questions are answered without leaving its event loop.
"""

from __future__ import annotations

import temporalio.converter
import temporalio.workflow
from temporalio.converter import StorageDriverStoreContext
from temporalio.worker._command_aware_visitor import CommandInfo

from temporay.runtime.engine.command_contexts import CommandKey, ContextDelta, default_contexts

__all__ = ["ContextMirror"]


class ContextMirror:
    """The Worker-side copy of a remote run's contexts; answers without leaving the event loop."""

    def __init__(self, info: temporalio.workflow.Info) -> None:
        # What the SDK's instance answers by default; the host sends the defaults only if its
        # run answers otherwise (ContextTracker).
        self._default_ser: temporalio.converter.SerializationContext | None
        self._default_ser, self._default_store = default_contexts(info)
        self._ser: dict[CommandKey, temporalio.converter.SerializationContext] = {}
        self._store: dict[CommandKey, StorageDriverStoreContext] = {}

    def apply(self, delta: ContextDelta) -> None:
        if delta.default_serialization is not None:
            self._default_ser = delta.default_serialization
        if delta.default_store is not None:
            self._default_store = delta.default_store
        for entry in delta.commands:
            if entry.serialization is None:
                self._ser.pop(entry.key, None)
            else:
                self._ser[entry.key] = entry.serialization
            if entry.store is None:
                self._store.pop(entry.key, None)
            else:
                self._store[entry.key] = entry.store

    def serialization_context(
        self, command_info: CommandInfo | None
    ) -> temporalio.converter.SerializationContext | None:
        if command_info is None:
            return self._default_ser
        return self._ser.get(
            (int(command_info.command_type), command_info.command_seq), self._default_ser
        )

    def store_context(self, command_info: CommandInfo | None) -> StorageDriverStoreContext:
        if command_info is None:
            return self._default_store
        return self._store.get(
            (int(command_info.command_type), command_info.command_seq), self._default_store
        )

    def __len__(self) -> int:
        return len(self._ser.keys() | self._store.keys())
