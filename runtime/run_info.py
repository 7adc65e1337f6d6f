"""What is particular to one run (``RunDetails``), and the activation clock every engine reads.

A run is made from what all runs of its workflow share (converters, interceptors, the
definition: ``runtime/prepared.py``) plus these details; a host that rebuilds them from a run's
first activation does so in ``runtime/hosting/run_info.py``.
"""

from __future__ import annotations

from dataclasses import dataclass

import google.protobuf.timestamp_pb2
import temporalio.api.common.v1
import temporalio.api.failure.v1
import temporalio.workflow
from temporalio.worker import WorkflowInstanceDetails

__all__ = ["RunDetails", "timestamp_ns"]


@dataclass(frozen=True)
class RunDetails:
    """What is particular to one run, beside what all runs of its workflow share."""

    info: temporalio.workflow.Info
    randomness_seed: int
    last_completion_result: temporalio.api.common.v1.Payloads
    last_failure: temporalio.api.failure.v1.Failure | None = None

    @staticmethod
    def of(det: WorkflowInstanceDetails) -> RunDetails:
        """The run fields of ``det``."""
        return RunDetails(
            det.info, det.randomness_seed, det.last_completion_result, det.last_failure
        )


_NANOS_PER_SECOND = 1_000_000_000


def timestamp_ns(ts: google.protobuf.timestamp_pb2.Timestamp) -> int:
    """``ts.ToNanoseconds()`` without its validation (core's timestamps are valid): one Python
    call where that made two, on every activation."""
    return ts.seconds * _NANOS_PER_SECOND + ts.nanos
