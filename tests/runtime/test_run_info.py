"""A hosted run's details rebuilt from its first activation equal what the Worker gave the runner.

Shards no longer receive a run's ``workflow.Info`` pickled: they rebuild it from the
``InitializeWorkflow`` job with the SDK's recipe (``runtime/hosting/run_info.py``). Here the
differential harness's recording runner keeps, for real runs of every shape the recipe branches on (memo,
search attributes, headers, timeouts, retry policy and a retried attempt with its last failure,
parent and root, a continued-as-new run), the ``WorkflowInstanceDetails`` the Worker built and
the first activation; the rebuilt details must be equal, field by field.
"""

from __future__ import annotations

import copy
import dataclasses
import pickle
import random
import uuid
from datetime import UTC, timedelta

import pytest
import temporalio.bridge.proto.workflow_activation as wfact
import temporalio.common
from google.protobuf.duration_pb2 import Duration
from google.protobuf.timestamp_pb2 import Timestamp
from temporalio import workflow
from temporalio.client import Client
from temporalio.exceptions import ApplicationError
from temporalio.worker import UnsandboxedWorkflowRunner, Worker

from temporay.runtime.hosting.run_info import details_from_activation, duration, utc_datetime
from temporay.runtime.run_info import timestamp_ns
from tests.conftest import TEST_SEARCH_ATTRIBUTES
from tests.differential.harness import RecordingRunner
from tests.support.activations import activation, fire_timer, initialize


@workflow.defn(sandboxed=False)
class InfoChild:
    @workflow.run
    async def run(self, n: int) -> int:
        return n + 1


@workflow.defn(sandboxed=False)
class InfoParent:
    @workflow.run
    async def run(self) -> int:
        return await workflow.execute_child_workflow(
            InfoChild.run,
            1,
            id=f"{workflow.info().workflow_id}-child",
            memo={"from": "parent"},
            retry_policy=temporalio.common.RetryPolicy(maximum_attempts=3),
        )


@workflow.defn(sandboxed=False)
class InfoRetried:
    @workflow.run
    async def run(self) -> int:
        if workflow.info().attempt == 1:
            raise ApplicationError("first attempt fails on purpose")
        return workflow.info().attempt


@workflow.defn(sandboxed=False)
class InfoContinued:
    @workflow.run
    async def run(self, left: int) -> int:
        if left > 0:
            workflow.continue_as_new(left - 1)
        return left


async def test_details_rebuilt_from_the_first_activation_equal_the_workers(
    client: Client, task_queue: str
) -> None:
    runner = RecordingRunner(UnsandboxedWorkflowRunner())
    keyword = TEST_SEARCH_ATTRIBUTES[0]
    async with Worker(
        client,
        task_queue=task_queue,
        workflows=[InfoChild, InfoParent, InfoRetried, InfoContinued],
        workflow_runner=runner,
        unsandboxed_workflow_runner=runner,
    ):
        prefix = uuid.uuid4().hex[:8]
        await client.execute_workflow(
            InfoParent.run,
            id=f"{prefix}-parent",
            task_queue=task_queue,
            memo={"k": [1, 2]},
            search_attributes=temporalio.common.TypedSearchAttributes(
                [temporalio.common.SearchAttributePair(keyword, "kw")]  # type: ignore[arg-type]
            ),
            execution_timeout=timedelta(minutes=5),
            run_timeout=timedelta(minutes=4),
            task_timeout=timedelta(seconds=7),
            priority=temporalio.common.Priority(priority_key=2),
        )
        assert (
            await client.execute_workflow(
                InfoRetried.run,
                id=f"{prefix}-retried",
                task_queue=task_queue,
                retry_policy=temporalio.common.RetryPolicy(
                    initial_interval=timedelta(milliseconds=10), maximum_attempts=2
                ),
            )
            == 2
        )
        await client.execute_workflow(
            InfoContinued.run, 2, id=f"{prefix}-continued", task_queue=task_queue
        )

    shapes = {
        "parent and root": lambda d: d.info.parent is not None and d.info.root is not None,
        "memo": lambda d: bool(d.info.raw_memo),
        "search attributes": lambda d: len(d.info.typed_search_attributes) > 0,
        "execution timeout": lambda d: d.info.execution_timeout is not None,
        "retry policy": lambda d: d.info.retry_policy is not None,
        "retried attempt with last failure": lambda d: (
            d.info.attempt == 2 and d.last_failure is not None
        ),
        "continued run": lambda d: d.info.continued_run_id is not None,
    }
    recorded = runner.snapshot()
    covered = {name for name, has in shapes.items() if any(has(r.details) for r in recorded)}
    assert covered == set(shapes), f"shapes not exercised: {set(shapes) - covered}"

    assert len(recorded) >= 7
    for record in recorded:
        det = record.details
        act = wfact.WorkflowActivation.FromString(record.steps[0].activation)
        rebuilt = details_from_activation(
            act, namespace=det.info.namespace, task_queue=det.info.task_queue
        )
        for field in dataclasses.fields(det.info):
            assert getattr(rebuilt.info, field.name) == getattr(det.info, field.name), (
                f"Info.{field.name} of {det.info.workflow_type}"
            )
        assert rebuilt.info == det.info
        assert rebuilt.randomness_seed == det.randomness_seed
        assert rebuilt.last_completion_result == det.last_completion_result
        assert rebuilt.last_failure == det.last_failure


def test_an_activation_without_initialize_job_is_refused_clearly() -> None:
    act = activation("r1", fire_timer(1))
    with pytest.raises(ValueError, match="run r1 has no InitializeWorkflow job"):
        details_from_activation(act, namespace="default", task_queue="q")


def test_timestamps_convert_as_protobuf_converts_them() -> None:
    rng = random.Random(7)
    stamps = [(0, 0), (-1, 999_999_999), (253_402_300_799, 999_999_999), (-62_135_596_800, 0)]
    stamps += [(rng.randint(-(10**10), 10**11), rng.randrange(10**9)) for _ in range(20_000)]
    for seconds, nanos in stamps:
        ts = Timestamp(seconds=seconds, nanos=nanos)
        expected = ts.ToDatetime().replace(tzinfo=UTC)
        converted = utc_datetime(ts)
        assert converted == expected and converted.tzinfo is expected.tzinfo, (seconds, nanos)
        assert timestamp_ns(ts) == ts.ToNanoseconds(), (seconds, nanos)


def test_durations_convert_as_protobuf_converts_them() -> None:
    rng = random.Random(11)
    spans = [(0, 0), (10, 0), (0, 999_999_999), (-1, -999_999_999), (0, -1), (0, -1_500)]
    spans += [(315_576_000_000, 999_999_999), (-315_576_000_000, -999_999_999)]
    spans += [
        (s, n) for s, n in ((rng.randrange(10**9), rng.randrange(10**9)) for _ in range(10_000))
    ]
    spans += [
        (-s, -n) for s, n in ((rng.randrange(10**9), rng.randrange(10**9)) for _ in range(10_000))
    ]
    for seconds, nanos in spans:
        d = Duration(seconds=seconds, nanos=nanos)
        assert duration(d) == d.ToTimedelta(), (seconds, nanos)


def test_a_set_priority_converts_as_the_sdk_converts_it() -> None:
    act = activation("r1", initialize("W"), at=1_700_000_000)
    init = act.jobs[0].initialize_workflow
    init.priority.priority_key = 3
    init.priority.fairness_key = "tenant"
    init.priority.fairness_weight = 2.5
    info = details_from_activation(act, namespace="default", task_queue="q").info
    assert info.priority == temporalio.common.Priority._from_proto(init.priority)
    assert info.priority != temporalio.common.Priority.default
    init.ClearField("priority")
    info = details_from_activation(act, namespace="default", task_queue="q").info
    assert info.priority == temporalio.common.Priority._from_proto(init.priority)


def _rich_activation() -> wfact.WorkflowActivation:
    act = activation("r1", initialize("W", workflow_id="w1"), at=1_700_000_000)
    init = act.jobs[0].initialize_workflow
    init.attempt = 3
    init.parent_workflow_info.workflow_id = "p1"
    init.parent_workflow_info.run_id = "pr1"
    init.parent_workflow_info.namespace = "default"
    init.memo.fields["m"].data = b'"memo"'
    init.headers["h"].data = b'"header"'
    init.workflow_run_timeout.FromSeconds(30)
    init.start_time.FromSeconds(1_699_999_999)
    init.retry_policy.maximum_attempts = 4
    return act


def test_hosted_info_makes_each_field_once_when_read() -> None:
    info = details_from_activation(_rich_activation(), namespace="default", task_queue="q").info
    assert isinstance(info, workflow.Info)
    assert "parent" not in vars(info)
    parent = info.parent
    assert parent is not None and parent.workflow_id == "p1"
    assert info.parent is parent
    assert info.raw_memo is info.raw_memo and set(info.raw_memo) == {"m"}
    with pytest.raises(AttributeError, match="no attribute 'not_a_field'"):
        getattr(info, "not_a_field")
    with pytest.raises(dataclasses.FrozenInstanceError):
        info.attempt = 4  # type: ignore[misc]
    # Upserts change the search attributes in place: the change stays, and each run has its own.
    info.search_attributes["k"] = ["v"]  # type: ignore[index]
    assert info.search_attributes == {"k": ["v"]}
    again = details_from_activation(_rich_activation(), namespace="default", task_queue="q").info
    assert again.search_attributes == {}
    assert again.typed_search_attributes is not info.typed_search_attributes


def test_hosted_info_behaves_as_the_sdks_info() -> None:
    hosted = details_from_activation(_rich_activation(), namespace="default", task_queue="q").info
    whole = workflow.Info(
        **{field.name: getattr(hosted, field.name) for field in dataclasses.fields(workflow.Info)}
    )
    fresh = details_from_activation(_rich_activation(), namespace="default", task_queue="q").info
    assert fresh == whole and whole == fresh and fresh == hosted
    assert fresh != dataclasses.replace(whole, attempt=9)
    assert dataclasses.replace(whole, attempt=9) != fresh
    assert dataclasses.asdict(fresh) == dataclasses.asdict(whole)
    assert repr(fresh) == repr(whole)
    for copied in (
        pickle.loads(pickle.dumps(fresh)),
        copy.copy(fresh),
        copy.deepcopy(fresh),
        dataclasses.replace(fresh),
    ):
        assert copied == whole, type(copied)
