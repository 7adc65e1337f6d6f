"""``ShardCore`` driven directly (no Ray, no socket): what it leaves until after an answer.

A batch may carry disposals of finished runs; unwinding them used to run beside the batch's own
items and slow a new run's first activation. They now wait until the transport has sent the
answer and calls ``after_answer``, which also makes isolated module copies and converters ready
for the next runs of the templates the shard has created runs of.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence

import pytest
import temporalio.bridge.proto.workflow_completion as wfcomp
import temporalio.workflow
from temporalio.worker import WorkflowInstance, WorkflowInstanceDetails, WorkflowRunner

from bench.workloads import hosting as hosting_workflows
from bench.workloads.instance_details import instance_details
from temporay.actors.shard import ShardCore
from temporay.actors.watchdog import WATCHDOG_IDLE_S
from temporay.actors.wire import RunKey
from temporay.cluster.templates import TemplateBlob, TemplateCache
from temporay.proto import hosting as pb
from temporay.runtime.engine.runner import TemporayWorkflowRunner
from temporay.runtime.engines import EngineFactory
from temporay.runtime.local_runner import LocalWorkflowRunner
from tests.runtime.isolation.workflows import globals_state
from tests.support.activations import activation, initialize

CLASS = globals_state.GlobalsWorkflow
DEFN = temporalio.workflow._Definition.must_from_class(CLASS)


def _template(cls: type = CLASS) -> TemplateBlob:
    """What a Worker sends for all its runs of ``cls`` (one template, one ID)."""
    det = instance_details(cls, run_id="any", workflow_id="any", task_queue="q", randomness_seed=3)
    return TemplateCache().blob_for(det)


def _first_batch(
    key: RunKey,
    blob: TemplateBlob,
    workflow_type: str = "GlobalsWorkflow",
    argument: object = None,
    budget_ms: int = 0,
) -> bytes:
    init = initialize(
        workflow_type,
        key.run_id if argument is None else argument,
        workflow_id=f"wf-{key.run_id}",
        randomness_seed=3,
    )
    act = activation(key.run_id, init, at=1_000_000_000)
    batch = pb.ActivationBatch()
    item = batch.items.add(budget_ms=budget_ms)
    key.to_proto(item.key)
    item.activation = act.SerializeToString()
    item.spec.template_id = blob.template_id
    item.spec.template = blob.data
    item.spec.namespace = "default"
    item.spec.task_queue = "q"
    return batch.SerializeToString()


def _answered(data: bytes) -> pb.CompletionEnvelope:
    (done,) = pb.BatchResult.FromString(data).done
    assert not done.run_lost, done
    return done


def test_disposals_wait_for_the_answer_and_copies_are_made_after_it() -> None:
    engine = LocalWorkflowRunner()  # EngineFactory hands this very instance to the shard
    core = ShardCore("test", EngineFactory(engine), threads=2)
    try:
        blob = _template()
        first, second = RunKey("r", "run-1", 1), RunKey("r", "run-2", 1)
        _answered(core.run_batch(_first_batch(first, blob)))
        assert core.run_keys() == [tuple(first)]

        # The next run's first batch carries the first run's disposal...
        message = pb.ActivationBatch.FromString(_first_batch(second, blob))
        first.to_proto(message.dispose.add())
        _answered(core.run_batch(message.SerializeToString()))
        # ...which is not carried out while the batch is answered,
        assert sorted(core.run_keys()) == [tuple(first), tuple(second)]
        core.after_answer()
        # but right after.
        assert core.run_keys() == [tuple(second)]
        # And two runs, made as far as they can be, wait for the class's next runs.
        (ready,) = core._factory.ready_runs.values()
        assert len(ready) == 2
    finally:
        core.shutdown()


def test_no_copies_are_made_ahead_when_asked_for_none() -> None:
    engine = LocalWorkflowRunner()
    core = ShardCore("test", EngineFactory(engine), threads=2, ready_copies=0)
    try:
        _answered(core.run_batch(_first_batch(RunKey("r", "run-1", 1), _template())))
        core.after_answer()
        assert core._factory.ready_runs == {}
    finally:
        core.shutdown()


def _run_converter(core: ShardCore, key: RunKey) -> object:
    instance = core._table.runs[key].instance
    return instance.inner.context.context_free_payload_converter  # type: ignore[attr-defined]


def test_each_new_run_is_made_ahead_of_it_with_converters_of_its_own() -> None:
    core = ShardCore("test", EngineFactory(LocalWorkflowRunner()), threads=2)
    try:
        blob = _template()
        first, second, third = (RunKey("r", f"run-{i}", 1) for i in (1, 2, 3))
        _answered(core.run_batch(_first_batch(first, blob)))  # made at creation: none ready
        core.after_answer()
        (ready,) = core._factory.ready_runs.values()
        assert len(ready) == 2
        _answered(core.run_batch(_first_batch(second, blob)))
        _answered(core.run_batch(_first_batch(third, blob)))
        assert ready == []  # both taken
        converters = [_run_converter(core, key) for key in (first, second, third)]
        assert len(set(map(id, converters))) == 3
        for key in (second, third):
            assert core._table.runs[key].info.run_id == key.run_id
    finally:
        core.shutdown()


class _OpaqueRunner(WorkflowRunner):
    """A user's runner: nothing known of how it uses the converter factories."""

    def __init__(self) -> None:
        self._inner = TemporayWorkflowRunner()
        self.created: list[WorkflowInstanceDetails] = []

    def prepare_workflow(self, defn: temporalio.workflow._Definition) -> None:
        self._inner.prepare_workflow(defn)

    def create_instance(self, det: WorkflowInstanceDetails) -> WorkflowInstance:
        self.created.append(det)
        return self._inner.create_instance(det)

    def set_worker_level_failure_exception_types(
        self, types: Sequence[type[BaseException]]
    ) -> None:
        self._inner.set_worker_level_failure_exception_types(types)


def test_a_runner_of_unknown_ways_gets_no_converters_made_ahead() -> None:
    opaque = _OpaqueRunner()
    core = ShardCore("test", EngineFactory(LocalWorkflowRunner(opaque)), threads=2)
    try:
        blob = _template()
        _answered(core.run_batch(_first_batch(RunKey("r", "run-1", 1), blob)))
        core.after_answer()
        (ready,) = core._factory.ready_runs.values()
        assert len(ready) == 2  # made ahead as far as such a runner allows: module copies
        _answered(core.run_batch(_first_batch(RunKey("r", "run-2", 1), blob)))
        assert len(ready) == 1
        (template,) = core._factory.templates.values()
        # The runner got the Worker's own factories, at the run's creation.
        assert [det.payload_converter_factory for det in opaque.created] == [
            template.payload_converter_factory
        ] * 2
        assert [det.info.run_id for det in opaque.created] == ["run-1", "run-2"]
    finally:
        core.shutdown()


@pytest.mark.parametrize("budget_ms", [40, 400])
def test_the_watchdog_interrupts_an_activation_begun_while_it_sleeps(budget_ms: int) -> None:
    """The watchdog sleeps until the earliest deadline it knows of, at most ``WATCHDOG_IDLE_S``:
    an activation begun meanwhile, with less budget than that (40 ms) or more (400 ms), is still
    interrupted by it (only the watchdog counts a deadlock), and answered with its stack."""
    core = ShardCore("test", EngineFactory(LocalWorkflowRunner()), threads=2)
    answer: list[bytes] = []
    try:
        time.sleep(WATCHDOG_IDLE_S / 2)  # the watchdog is asleep when the activation begins
        key = RunKey("r", "spinning", 1)
        batch = _first_batch(
            key,
            _template(hosting_workflows.DeadlockWorkflow),
            "DeadlockWorkflow",
            argument=10**12,  # hours of pure Python: only an interrupt ends it
            budget_ms=budget_ms,
        )
        serving = threading.Thread(target=lambda: answer.append(core.run_batch(batch)), daemon=True)
        serving.start()
        serving.join(timeout=60)  # a liveness bound, not a measurement
        assert answer, "the spinning activation was never interrupted"
        (done,) = pb.BatchResult.FromString(answer[0]).done
        assert done.run_lost
        completion = wfcomp.WorkflowActivationCompletion.FromString(done.completion)
        failure = completion.failed.failure
        assert "TMPRL1101" in failure.message
        assert "workloads/hosting.py" in failure.stack_trace  # the spinning loop itself
        assert "total += i" in failure.stack_trace
        assert pb.ShardStats.FromString(core.stats()).deadlocks == 1
    finally:
        core.shutdown()
