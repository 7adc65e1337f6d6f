"""The Worker's mirror of a hosted run's contexts against the run's own answers.

A hosted run's completion carries only what the mirror does not hold yet (``ContextTracker``);
these tests check that the mirror, fed those deltas through the wire format, answers what the
run's instance answers, on both SDK engines, and that the tracker sends what changes and only that.
"""

from __future__ import annotations

import dataclasses
import functools
from dataclasses import dataclass, field

import temporalio.bridge.proto.workflow_activation as wfact
import temporalio.bridge.proto.workflow_completion as wfcomp
import temporalio.converter
import temporalio.workflow
from temporalio.api.enums.v1.command_type_pb2 import CommandType
from temporalio.converter import StorageDriverStoreContext, StorageDriverWorkflowInfo
from temporalio.worker import WorkflowInstance
from temporalio.worker._command_aware_visitor import CommandInfo

from temporay.actors.wire import delta_from_proto, delta_to_proto
from temporay.proto import hosting as pb
from temporay.runtime.engine.command_contexts import (
    NO_CHANGE,
    CommandKey,
    ContextDelta,
    ContextTracker,
    default_contexts,
    touched_commands,
)
from temporay.runtime.hosting.context_mirror import ContextMirror
from tests.runtime.engine.test_engine import RUN_ID, START, SleepyWorkflow, both, init, on_thread
from tests.support.activations import activation

ACTIVITY: CommandKey = (CommandType.COMMAND_TYPE_SCHEDULE_ACTIVITY_TASK, 1)
TIMER: CommandKey = (CommandType.COMMAND_TYPE_START_TIMER, 99)


def _command(key: CommandKey) -> CommandInfo:
    return CommandInfo(command_type=key[0], command_seq=key[1])  # type: ignore[arg-type]


def _through_wire(delta: ContextDelta) -> ContextDelta:
    message = pb.ContextDelta()
    delta_to_proto(delta, message)
    return delta_from_proto(pb.ContextDelta.FromString(message.SerializeToString()))


def test_mirror_answers_what_each_engine_answers_after_a_first_activation() -> None:
    for name, instance in both(SleepyWorkflow, "x").items():
        first = activation(RUN_ID, init(SleepyWorkflow, "x"), at=START)
        completion = on_thread(functools.partial(instance.activate, first))
        assert isinstance(completion, wfcomp.WorkflowActivationCompletion)
        info = instance.get_info()
        tracker, mirror = ContextTracker(info), ContextMirror(info)
        delta = tracker.capture(instance, touched_commands(first, completion))
        # Both engines answer the defaults both sides predict, so none cross the wire...
        assert delta.default_serialization is None, name
        assert delta.default_store is None, name
        # ...while the scheduled activity's own context does.
        assert [entry.key for entry in delta.commands] == [ACTIVITY], name
        mirror.apply(_through_wire(delta))
        for key in (None, ACTIVITY, TIMER):
            command = None if key is None else _command(key)
            assert mirror.serialization_context(command) == instance.get_serialization_context(
                command
            ), (name, key)
            assert mirror.store_context(command) == instance.get_external_store_context(command), (
                name,
                key,
            )


@dataclass
class _AnsweringInstance(WorkflowInstance):
    """A run whose context answers the test sets (only the two questions are asked)."""

    info: temporalio.workflow.Info
    default_ser: temporalio.converter.SerializationContext | None
    default_store: StorageDriverStoreContext
    ser: dict[CommandKey, temporalio.converter.SerializationContext] = field(default_factory=dict)

    def activate(self, act: wfact.WorkflowActivation) -> wfcomp.WorkflowActivationCompletion:
        raise NotImplementedError

    def get_info(self) -> temporalio.workflow.Info:
        return self.info

    def get_serialization_context(
        self, command_info: CommandInfo | None
    ) -> temporalio.converter.SerializationContext | None:
        if command_info is None:
            return self.default_ser
        key = (int(command_info.command_type), command_info.command_seq)
        return self.ser.get(key, self.default_ser)

    def get_external_store_context(
        self, command_info: CommandInfo | None
    ) -> StorageDriverStoreContext:
        return self.default_store


def _sleepy_info() -> temporalio.workflow.Info:
    instance = both(SleepyWorkflow, "x")["temporay"]
    return instance.get_info()


def test_tracker_sends_changes_only_and_the_mirror_follows() -> None:
    info = _sleepy_info()
    predicted = temporalio.converter.WorkflowSerializationContext(
        namespace=info.namespace, workflow_id=info.workflow_id
    )
    other_ser = temporalio.converter.WorkflowSerializationContext(
        namespace=info.namespace, workflow_id="somebody-else"
    )
    other_store = StorageDriverStoreContext(
        target=StorageDriverWorkflowInfo(id="elsewhere", namespace=info.namespace)
    )
    instance = _AnsweringInstance(info, predicted, other_store)
    tracker, mirror = ContextTracker(info), ContextMirror(info)

    def step(*keys: CommandKey) -> ContextDelta:
        delta = tracker.capture(instance, keys)
        mirror.apply(_through_wire(delta))
        for key in (None, *keys, TIMER):
            command = None if key is None else _command(key)
            assert mirror.serialization_context(command) == instance.get_serialization_context(
                command
            )
            assert mirror.store_context(command) == instance.get_external_store_context(command)
        return delta

    # A default store the mirror did not predict is sent, once.
    delta = step(TIMER)
    assert delta.default_serialization is None
    assert delta.default_store == other_store
    assert delta.commands == ()
    assert step().default_store is None

    # A command's own context is sent; when it is back to the default, its entry is cleared once.
    instance.ser[ACTIVITY] = other_ser
    assert [entry.key for entry in step(ACTIVITY).commands] == [ACTIVITY]
    del instance.ser[ACTIVITY]
    cleared = step(ACTIVITY).commands
    assert [(entry.key, entry.serialization, entry.store) for entry in cleared] == [
        (ACTIVITY, None, None)
    ]
    assert step(ACTIVITY) is NO_CHANGE
    assert len(mirror) == 0

    # A new default serialization context reaches the mirror; commands follow it.
    instance.default_ser = other_ser
    delta = step(ACTIVITY)
    assert delta.default_serialization == other_ser
    assert delta.commands == ()


def test_tracker_predicts_the_defaults_field_by_field() -> None:
    """The tracker compares the instance's defaults with Info field by field instead of building
    ``default_contexts``; any one field that differs must still be sent."""
    info = _sleepy_info()
    ser, store = default_contexts(info)
    assert store.target is not None
    ser_variants = [
        dataclasses.replace(ser, namespace="elsewhere"),
        dataclasses.replace(ser, workflow_id="somebody-else"),
        temporalio.converter.ActivitySerializationContext(
            namespace=info.namespace,
            workflow_id=info.workflow_id,
            workflow_type=info.workflow_type,
            activity_type="a",
            activity_task_queue=info.task_queue,
            activity_id="1",
            is_local=False,
        ),
    ]
    store_variants = [
        dataclasses.replace(store, target=dataclasses.replace(store.target, **{name: "other"}))
        for name in ("namespace", "id", "run_id", "type")
    ] + [StorageDriverStoreContext(target=None)]

    # Equal copies (not the same objects) of the prediction: nothing to send, now or later.
    tracker = ContextTracker(info)
    instance = _AnsweringInstance(info, *default_contexts(info))
    assert tracker.capture(instance, ()) is NO_CHANGE
    assert tracker.capture(instance, ()) is NO_CHANGE
    for variant in ser_variants:
        tracker = ContextTracker(info)
        delta = tracker.capture(_AnsweringInstance(info, variant, store), ())
        assert delta.default_serialization == variant
        assert delta.default_store is None
    for store_variant in store_variants:
        tracker = ContextTracker(info)
        delta = tracker.capture(_AnsweringInstance(info, ser, store_variant), ())
        assert delta.default_store == store_variant
        assert delta.default_serialization is None
        # Once seen, an equal answer is not sent again; a different one is.
        again = _AnsweringInstance(info, ser, dataclasses.replace(store_variant))
        assert tracker.capture(again, ()) is NO_CHANGE
        assert tracker.capture(_AnsweringInstance(info, ser, store), ()).default_store == store
