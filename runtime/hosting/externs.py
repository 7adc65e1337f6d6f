"""Host-side extern functions for runs that live outside the Worker's process.

The Worker hands every instance ``extern_functions``: closures over objects of the Worker process
(the runtime's metric meter, the local-activity registry check, interceptor hooks such as
OpenTelemetry's span callback). None of them can be pickled into another process, so:

- the metric meter is replaced by a recorder; what workflow code records travels back with the
  completion and is replayed onto the real meter by the Worker side (``MetricReplayer``);
- the local-activity check is answered from a snapshot of the Worker's registered activity names
  (``LocalActivityCatalog``), reproducing the Worker's own error message;
- any other extern function raises ``UnsupportedExternError`` naming it, so the task fails with a
  clear message instead of silently skipping a hook.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import temporalio.common
from temporalio.common import MetricAttributes

METRIC_METER_EXTERN = "__temporal_get_metric_meter"
LOCAL_ACTIVITY_CHECK_EXTERN = "__temporal_assert_local_activity_valid"
_PROBE_NAME = "__temporay_probe_activity__"
_AVAILABLE_MARKER = "available activities: "


class UnsupportedExternError(RuntimeError):
    """A Worker-process extern function was called from a run hosted in another process."""


# --- metrics -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class MetricInstrument:
    """An instrument as created by workflow code: kind, identity and meter-level attributes."""

    kind: str  # counter | histogram | histogram_float | histogram_timedelta | gauge | gauge_float
    name: str
    description: str | None
    unit: str | None
    attributes: tuple[tuple[str, str | int | float | bool], ...]


@dataclass(frozen=True)
class MetricOp:
    """One recorded ``add``/``record``/``set``; timedeltas travel as integer milliseconds."""

    instrument: MetricInstrument
    value: int | float
    attributes: tuple[tuple[str, str | int | float | bool], ...]


def _check_attributes(attributes: MetricAttributes | None) -> tuple[tuple[str, Any], ...]:
    if not attributes:
        return ()
    for key, value in attributes.items():
        if not isinstance(key, str) or not isinstance(value, str | int | float | bool):
            raise TypeError(f"Invalid metric attribute {key!r}: {value!r}")
    return tuple(attributes.items())


class MetricRecorder:
    """Collects metric operations of one run between two completions."""

    def __init__(self) -> None:
        self._ops: list[MetricOp] = []
        self._lock = threading.Lock()

    def append(self, op: MetricOp) -> None:
        with self._lock:
            self._ops.append(op)

    def drain(self) -> list[MetricOp]:
        with self._lock:
            ops, self._ops = self._ops, []
        return ops

    def meter(self) -> temporalio.common.MetricMeter:
        return _RecordingMeter(self, ())


class _RecordingMeter(temporalio.common.MetricMeter):
    def __init__(self, recorder: MetricRecorder, attributes: tuple[tuple[str, Any], ...]) -> None:
        self._recorder = recorder
        self._attributes = attributes

    def _make(self, kind: str, name: str, description: str | None, unit: str | None) -> Any:
        instrument = MetricInstrument(kind, name, description, unit, self._attributes)
        return _RecordingMetric(self._recorder, instrument, ())

    def create_counter(
        self, name: str, description: str | None = None, unit: str | None = None
    ) -> temporalio.common.MetricCounter:
        return self._make("counter", name, description, unit)

    def create_histogram(
        self, name: str, description: str | None = None, unit: str | None = None
    ) -> temporalio.common.MetricHistogram:
        return self._make("histogram", name, description, unit)

    def create_histogram_float(
        self, name: str, description: str | None = None, unit: str | None = None
    ) -> temporalio.common.MetricHistogramFloat:
        return self._make("histogram_float", name, description, unit)

    def create_histogram_timedelta(
        self, name: str, description: str | None = None, unit: str | None = None
    ) -> temporalio.common.MetricHistogramTimedelta:
        return self._make("histogram_timedelta", name, description, unit)

    def create_gauge(
        self, name: str, description: str | None = None, unit: str | None = None
    ) -> temporalio.common.MetricGauge:
        return self._make("gauge", name, description, unit)

    def create_gauge_float(
        self, name: str, description: str | None = None, unit: str | None = None
    ) -> temporalio.common.MetricGaugeFloat:
        return self._make("gauge_float", name, description, unit)

    def with_additional_attributes(
        self, additional_attributes: MetricAttributes
    ) -> temporalio.common.MetricMeter:
        merged = dict(self._attributes)
        merged.update(_check_attributes(additional_attributes))
        return _RecordingMeter(self._recorder, tuple(merged.items()))


class _RecordingMetric(
    temporalio.common.MetricCounter,
    temporalio.common.MetricHistogram,
    temporalio.common.MetricHistogramFloat,
    temporalio.common.MetricHistogramTimedelta,
    temporalio.common.MetricGauge,
    temporalio.common.MetricGaugeFloat,
):
    """One class for every instrument kind: the kind lives in the instrument record."""

    def __init__(
        self,
        recorder: MetricRecorder,
        instrument: MetricInstrument,
        attributes: tuple[tuple[str, Any], ...],
    ) -> None:
        self._recorder = recorder
        self._instrument = instrument
        self._attributes = attributes

    @property
    def name(self) -> str:
        return self._instrument.name

    @property
    def description(self) -> str | None:
        return self._instrument.description

    @property
    def unit(self) -> str | None:
        return self._instrument.unit

    def with_additional_attributes(self, additional_attributes: MetricAttributes) -> Any:
        merged = dict(self._attributes)
        merged.update(_check_attributes(additional_attributes))
        return _RecordingMetric(self._recorder, self._instrument, tuple(merged.items()))

    def _record(self, value: Any, additional_attributes: MetricAttributes | None) -> None:
        kind = self._instrument.kind
        if isinstance(value, timedelta):
            if kind != "histogram_timedelta":
                raise TypeError(f"{kind} metric {self.name} takes a number, not a timedelta")
            value = int(value / timedelta(milliseconds=1))
        if kind in ("counter", "histogram", "histogram_float", "histogram_timedelta") and value < 0:
            raise ValueError("Metric value must be non-negative value")
        merged = dict(self._attributes)
        merged.update(_check_attributes(additional_attributes))
        self._recorder.append(MetricOp(self._instrument, value, tuple(merged.items())))

    def add(self, value: Any, additional_attributes: MetricAttributes | None = None) -> None:
        self._record(value, additional_attributes)

    def record(self, value: Any, additional_attributes: MetricAttributes | None = None) -> None:
        self._record(value, additional_attributes)

    def set(self, value: Any, additional_attributes: MetricAttributes | None = None) -> None:
        self._record(value, additional_attributes)


class MetricReplayer:
    """Applies recorded operations to the Worker's real meter, caching the real instruments."""

    def __init__(self, meter: temporalio.common.MetricMeter) -> None:
        self._meter = meter
        self._instruments: dict[MetricInstrument, Any] = {}
        self._lock = threading.Lock()

    def _instrument(self, spec: MetricInstrument) -> Any:
        with self._lock:
            found = self._instruments.get(spec)
            if found is None:
                meter = self._meter
                if spec.attributes:
                    meter = meter.with_additional_attributes(dict(spec.attributes))
                create = getattr(meter, f"create_{spec.kind}")
                found = create(spec.name, spec.description, spec.unit)
                self._instruments[spec] = found
            return found

    def apply(self, ops: Sequence[MetricOp]) -> None:
        for op in ops:
            instrument = self._instrument(op.instrument)
            attributes = dict(op.attributes) or None
            if op.instrument.kind == "counter":
                instrument.add(op.value, attributes)
            elif op.instrument.kind.startswith("histogram"):
                value: Any = op.value
                if op.instrument.kind == "histogram_timedelta":
                    value = timedelta(milliseconds=op.value)
                instrument.record(value, attributes)
            else:
                instrument.set(op.value, attributes)


# --- local activities --------------------------------------------------------------------------


@dataclass(frozen=True)
class LocalActivityCatalog:
    """The Worker's answer to "may this workflow start local activity X?", as data.

    Built by calling the Worker's own check once with a name that cannot be registered: no error
    means a dynamic activity accepts everything; otherwise the message lists the registered names
    and is reused, with the real name put in, for every refusal.
    """

    accepts_all: bool
    names: frozenset[str] = field(default_factory=frozenset)
    message_template: str = ""

    @staticmethod
    def probe(check: Callable[[str], None] | None) -> LocalActivityCatalog:
        if check is None:
            return LocalActivityCatalog(
                accepts_all=False,
                message_template=f"Activity function {_PROBE_NAME} is not registered on this worker, no available activities.",
            )
        try:
            check(_PROBE_NAME)
        except Exception as err:
            message = str(err)
            names: frozenset[str] = frozenset()
            if _AVAILABLE_MARKER in message:
                listed = message.split(_AVAILABLE_MARKER, 1)[1]
                names = frozenset(n for n in listed.split(", ") if n)
                # Names containing ", " would be split apart: confirm each with the real check.
                confirmed = set()
                for name in names:
                    try:
                        check(name)
                        confirmed.add(name)
                    except Exception:
                        pass
                names = frozenset(confirmed)
            return LocalActivityCatalog(False, names, message)
        return LocalActivityCatalog(accepts_all=True)

    def check(self, name: str) -> None:
        if self.accepts_all or name in self.names:
            return
        raise ValueError(self.message_template.replace(_PROBE_NAME, name, 1))


# --- the mapping handed to a hosted run ----------------------------------------------------------


def hosted_extern_functions(
    extern_names: Sequence[str],
    recorder: MetricRecorder,
    catalog: LocalActivityCatalog,
) -> Mapping[str, Callable[..., Any]]:
    """The extern functions a hosted run sees in place of the Worker's closures."""
    meter = recorder.meter()
    functions: dict[str, Callable[..., Any]] = {}
    for name in extern_names:
        if name == METRIC_METER_EXTERN:
            functions[name] = lambda: meter
        elif name == LOCAL_ACTIVITY_CHECK_EXTERN:
            functions[name] = catalog.check
        else:
            functions[name] = _unsupported(name)
    return functions


def _unsupported(name: str) -> Callable[..., Any]:
    def call(*_args: Any, **_kwargs: Any) -> Any:
        raise UnsupportedExternError(
            f"extern function {name!r} (added by a worker interceptor) runs in the Worker's "
            "process and cannot be called from a run hosted by temporay in another process; "
            "remove that interceptor or run this workflow with the SDK's own runner "
            "(see README, 'Unsupported')"
        )

    return call
