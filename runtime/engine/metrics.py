"""The workflow metric meter: the Worker's meter, silent while the run replays history.

A replayed activation re-executes code that already recorded its metrics the first time, so every
instrument drops values while ``workflow.unsafe.is_replaying()`` (as the SDK's meter does).
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any, Generic, TypeVar

import temporalio.common
import temporalio.workflow
from temporalio.common import MetricAttributes

_M = TypeVar("_M", bound=temporalio.common.MetricCommon)


def _live() -> bool:
    return not temporalio.workflow.unsafe.is_replaying()


class ReplaySafeMetricMeter(temporalio.common.MetricMeter):
    """Wraps the meter the Worker provides (through the ``__temporal_get_metric_meter`` extern)."""

    def __init__(self, underlying: temporalio.common.MetricMeter) -> None:
        self._underlying = underlying

    def create_counter(
        self, name: str, description: str | None = None, unit: str | None = None
    ) -> temporalio.common.MetricCounter:
        return _Counter(self._underlying.create_counter(name, description, unit))

    def create_histogram(
        self, name: str, description: str | None = None, unit: str | None = None
    ) -> temporalio.common.MetricHistogram:
        return _Histogram(self._underlying.create_histogram(name, description, unit))

    def create_histogram_float(
        self, name: str, description: str | None = None, unit: str | None = None
    ) -> temporalio.common.MetricHistogramFloat:
        return _HistogramFloat(self._underlying.create_histogram_float(name, description, unit))

    def create_histogram_timedelta(
        self, name: str, description: str | None = None, unit: str | None = None
    ) -> temporalio.common.MetricHistogramTimedelta:
        return _HistogramTimedelta(
            self._underlying.create_histogram_timedelta(name, description, unit)
        )

    def create_gauge(
        self, name: str, description: str | None = None, unit: str | None = None
    ) -> temporalio.common.MetricGauge:
        return _Gauge(self._underlying.create_gauge(name, description, unit))

    def create_gauge_float(
        self, name: str, description: str | None = None, unit: str | None = None
    ) -> temporalio.common.MetricGaugeFloat:
        return _GaugeFloat(self._underlying.create_gauge_float(name, description, unit))

    def with_additional_attributes(
        self, additional_attributes: MetricAttributes
    ) -> temporalio.common.MetricMeter:
        return ReplaySafeMetricMeter(
            self._underlying.with_additional_attributes(additional_attributes)
        )


class _Common(temporalio.common.MetricCommon, Generic[_M]):
    def __init__(self, underlying: _M) -> None:
        self._underlying = underlying

    @property
    def name(self) -> str:
        return self._underlying.name

    @property
    def description(self) -> str | None:
        return self._underlying.description

    @property
    def unit(self) -> str | None:
        return self._underlying.unit

    def with_additional_attributes(self, additional_attributes: MetricAttributes) -> Any:
        return self.__class__(self._underlying.with_additional_attributes(additional_attributes))  # type: ignore[arg-type]


class _Counter(temporalio.common.MetricCounter, _Common[temporalio.common.MetricCounter]):
    def add(self, value: int, additional_attributes: MetricAttributes | None = None) -> None:
        if _live():
            self._underlying.add(value, additional_attributes)


class _Histogram(temporalio.common.MetricHistogram, _Common[temporalio.common.MetricHistogram]):
    def record(self, value: int, additional_attributes: MetricAttributes | None = None) -> None:
        if _live():
            self._underlying.record(value, additional_attributes)


class _HistogramFloat(
    temporalio.common.MetricHistogramFloat, _Common[temporalio.common.MetricHistogramFloat]
):
    def record(self, value: float, additional_attributes: MetricAttributes | None = None) -> None:
        if _live():
            self._underlying.record(value, additional_attributes)


class _HistogramTimedelta(
    temporalio.common.MetricHistogramTimedelta,
    _Common[temporalio.common.MetricHistogramTimedelta],
):
    def record(
        self, value: timedelta, additional_attributes: MetricAttributes | None = None
    ) -> None:
        if _live():
            self._underlying.record(value, additional_attributes)


class _Gauge(temporalio.common.MetricGauge, _Common[temporalio.common.MetricGauge]):
    def set(self, value: int, additional_attributes: MetricAttributes | None = None) -> None:
        if _live():
            self._underlying.set(value, additional_attributes)


class _GaugeFloat(temporalio.common.MetricGaugeFloat, _Common[temporalio.common.MetricGaugeFloat]):
    def set(self, value: float, additional_attributes: MetricAttributes | None = None) -> None:
        if _live():
            self._underlying.set(value, additional_attributes)
