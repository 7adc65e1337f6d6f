"""The run's handler tables: its signal, query and update handlers, and the signals that
arrived before a handler for them existed.

The tables start from the workflow definition (queries also from the built-in ones) and change
while the workflow runs (``workflow.set_*_handler``), as with the SDK's instance.
"""

from __future__ import annotations

import inspect
import warnings
from collections.abc import Callable, Mapping
from typing import Any

import temporalio.bridge.proto.workflow_activation as wfact
import temporalio.workflow


class HandlerTables:
    """Handlers by name (``None``: the dynamic handler) and the buffered signals."""

    __slots__ = ("buffered_signals", "queries", "signals", "updates")

    def __init__(
        self,
        defn: temporalio.workflow._Definition,
        builtin_queries: Mapping[str | None, temporalio.workflow._QueryDefinition],
    ) -> None:
        # Handlers can be added and removed while the workflow runs.
        self.signals = dict(defn.signals)
        # The built-in queries are registered here (not answered by the activator) so that they
        # show up in the list of known queries when a query is not found, and can be
        # overridden, as with the SDK.
        self.queries = {**defn.queries, **builtin_queries}
        self.updates = dict(defn.updates)
        self.buffered_signals: dict[str, list[wfact.SignalWorkflow]] = {}

    # --- finding handlers ----------------------------------------------------------------------

    @staticmethod
    def _bound(defn: Any, obj: Any) -> Callable[..., Any] | None:
        if not defn:
            return None
        return defn.bind_fn(obj) if defn.is_method else defn.fn

    def query_handler(self, name: str | None, obj: Any) -> Callable[..., Any] | None:
        """The query handler registered under ``name``, bound to the workflow object ``obj``."""
        return self._bound(self.queries.get(name), obj)

    def signal_handler(self, name: str | None, obj: Any) -> Callable[..., Any] | None:
        return self._bound(self.signals.get(name), obj)

    def update_handler(self, name: str | None, obj: Any) -> Callable[..., Any] | None:
        return self._bound(self.updates.get(name), obj)

    def update_validator(self, name: str | None, obj: Any) -> Callable[..., Any] | None:
        defn = self.updates.get(name) or self.updates.get(None)
        if not defn or not defn.validator:
            return None
        return defn.bind_validator(obj) if defn.is_method else defn.validator

    # --- registering handlers ------------------------------------------------------------------
    # Called from the context's ``workflow_set_*_handler``, itself called from the SDK's
    # ``workflow.set_*_handler``: warnings name the workflow code that called that (stacklevel 4).

    def set_query_handler(self, name: str | None, handler: Callable[..., Any] | None) -> None:
        if not handler:
            self.queries.pop(name, None)
            return
        if inspect.iscoroutinefunction(handler):
            warnings.warn(
                "Queries as async def functions are deprecated", DeprecationWarning, stacklevel=4
            )
        defn = temporalio.workflow._QueryDefinition(name=name, fn=handler, is_method=False)
        self.queries[name] = defn
        if defn.dynamic_vararg:
            warnings.warn(
                "Dynamic queries with vararg third param is deprecated, use Sequence[RawValue]",
                DeprecationWarning,
                stacklevel=4,
            )

    def set_signal_handler(
        self, name: str | None, handler: Callable[..., Any] | None
    ) -> temporalio.workflow._SignalDefinition | None:
        """Register (or with no ``handler``, remove) a signal handler; returns the new
        definition, which the caller hands the buffered signals it now takes
        (``take_buffered_signals``)."""
        if not handler:
            self.signals.pop(name, None)
            return None
        defn = temporalio.workflow._SignalDefinition(name=name, fn=handler, is_method=False)
        self.signals[name] = defn
        if defn.dynamic_vararg:
            warnings.warn(
                "Dynamic signals with vararg third param is deprecated, use Sequence[RawValue]",
                DeprecationWarning,
                stacklevel=4,
            )
        return defn

    def take_buffered_signals(self, name: str | None) -> list[wfact.SignalWorkflow]:
        """The buffered signals a handler registered as ``name`` takes (the dynamic handler
        takes them all), in arrival order per name; they leave the buffer."""
        if name:
            return self.buffered_signals.pop(name, [])
        jobs = [job for jobs in self.buffered_signals.values() for job in jobs]
        self.buffered_signals.clear()
        return jobs

    def buffer_signal(self, job: wfact.SignalWorkflow) -> None:
        """Keep a signal until a handler for it (or a dynamic one) is registered."""
        self.buffered_signals.setdefault(job.signal_name, []).append(job)

    def set_update_handler(
        self,
        name: str | None,
        handler: Callable[..., Any] | None,
        validator: Callable[..., Any] | None,
    ) -> None:
        if not handler:
            self.updates.pop(name, None)
            return
        defn = temporalio.workflow._UpdateDefinition(name=name, fn=handler, is_method=False)
        if validator is not None:
            defn.set_validator(validator)
        self.updates[name] = defn
        if defn.dynamic_vararg:
            raise RuntimeError(
                "Dynamic updates do not support a vararg third param, use Sequence[RawValue]"
            )
