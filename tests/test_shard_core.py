"""``ShardCore`` driven directly (no Ray, no socket): what it leaves until after an answer.

A batch may carry disposals of finished runs; unwinding them used to run beside the batch's own
items and slow a new run's first activation. They now wait until the transport has sent the
answer and calls ``after_answer``, which also makes isolated module copies ready for the next
runs of the classes the shard has created runs of.
"""

from __future__ import annotations

import temporalio.bridge.proto.workflow_activation as wfact
import temporalio.converter
import temporalio.workflow

from temporay.actors.shard import ShardCore
from temporay.actors.wire import RunKey
from temporay.cluster.templates import TemplateCache
from temporay.proto import hosting as pb
from temporay.runtime.engines import EngineFactory
from temporay.runtime.local_runner import LocalWorkflowRunner
from tests.instance_details import instance_details
from tests.isolation_workflows import globals_state

CLASS = globals_state.GlobalsWorkflow
DEFN = temporalio.workflow._Definition.must_from_class(CLASS)


def _first_batch(key: RunKey, cache: TemplateCache) -> bytes:
    det = instance_details(
        CLASS, run_id=key.run_id, workflow_id=f"wf-{key.run_id}", task_queue="q", randomness_seed=3
    )
    blob = cache.blob_for(det)
    act = wfact.WorkflowActivation(run_id=key.run_id)
    act.timestamp.FromSeconds(1_000_000_000)
    init = act.jobs.add().initialize_workflow
    init.workflow_type = "GlobalsWorkflow"
    init.workflow_id = f"wf-{key.run_id}"
    init.randomness_seed = 3
    init.arguments.extend(
        temporalio.converter.DataConverter.default.payload_converter.to_payloads([key.run_id])
    )
    batch = pb.ActivationBatch()
    item = batch.items.add()
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
        cache = TemplateCache()
        first, second = RunKey("r", "run-1", 1), RunKey("r", "run-2", 1)
        _answered(core.run_batch(_first_batch(first, cache)))
        assert core.run_keys() == [tuple(first)]

        # The next run's first batch carries the first run's disposal...
        message = pb.ActivationBatch.FromString(_first_batch(second, cache))
        first.to_proto(message.dispose.add())
        _answered(core.run_batch(message.SerializeToString()))
        # ...which is not carried out while the batch is answered,
        assert sorted(core.run_keys()) == [tuple(first), tuple(second)]
        core.after_answer()
        # but right after.
        assert core.run_keys() == [tuple(second)]
        # And two module copies wait for the class's next runs.
        assert engine.make_ready(DEFN, [], 2) == 0
    finally:
        core.shutdown()


def test_no_copies_are_made_ahead_when_asked_for_none() -> None:
    engine = LocalWorkflowRunner()
    core = ShardCore("test", EngineFactory(engine), threads=2, ready_copies=0)
    try:
        _answered(core.run_batch(_first_batch(RunKey("r", "run-1", 1), TemplateCache())))
        core.after_answer()
        assert engine.make_ready(DEFN, [], 2) == 2
    finally:
        core.shutdown()
