"""The engine's two loggers.

Records the SDK's own runner emits about a run (a failed activation, a dropped signal, a failing
dynamic-config function, an exception nobody retrieved) are emitted with the same message, level
and ``extra`` on the same logger, ``temporalio.worker._workflow_instance``: users filter and alert
on that name and on ``__temporal_error_identifier``. Everything else the engine says about itself
goes to ``temporay.runtime``.
"""

from __future__ import annotations

import logging

SDK_RUNNER_LOGGER_NAME = "temporalio.worker._workflow_instance"

sdk_logger = logging.getLogger(SDK_RUNNER_LOGGER_NAME)
"""Where the SDK's runner logs what it reports about runs."""

logger = logging.getLogger("temporay.runtime")
"""temporay's own records."""
