"""Shared fixtures: a real Temporal dev server and a real local Ray cluster, both on loopback.

Both are started once per test session (the dev server in ~0.3 s, Ray in a few seconds) and
stopped at the end; tests isolate themselves with their own task queues and runners.
"""

from __future__ import annotations

import logging
import os
import uuid
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
import pytest_asyncio
import temporalio.common
from temporalio.client import Client
from temporalio.testing import WorkflowEnvironment

from temporay.cluster.devserver import start_dev_server

# Search attributes some workflows upsert; the dev server has no Custom*Field ones by default.
TEST_SEARCH_ATTRIBUTES: list[temporalio.common.SearchAttributeKey[Any]] = [
    temporalio.common.SearchAttributeKey.for_keyword("TemporayKeyword"),
    temporalio.common.SearchAttributeKey.for_int("TemporayInt"),
    temporalio.common.SearchAttributeKey.for_text("TemporayText"),
]


@pytest_asyncio.fixture(scope="session")
async def temporal_env() -> AsyncIterator[WorkflowEnvironment]:
    env = await start_dev_server(search_attributes=TEST_SEARCH_ATTRIBUTES)
    try:
        yield env
    finally:
        await env.shutdown()


@pytest.fixture
def client(temporal_env: WorkflowEnvironment) -> Client:
    return temporal_env.client


@pytest.fixture
def task_queue() -> str:
    return f"tq-{uuid.uuid4().hex[:12]}"


@pytest.fixture(scope="session")
def ray_cluster() -> Iterator[None]:
    """A local Ray cluster shared by the session's single-node tests."""
    import ray

    if not ray.is_initialized():
        ray.init(
            address="local",  # the tests' own cluster, never one a `ray start` left running
            num_cpus=int(os.environ.get("TEMPORAY_TEST_RAY_CPUS", "4")),
            # The dashboard serves the State API, which the teardown tests read.
            include_dashboard=True,
            logging_level=logging.WARNING,
        )
    try:
        yield
    finally:
        ray.shutdown()
