"""``runtime/frozen.py`` builds the same objects as the dataclass machinery it shortcuts."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

import pytest
from temporalio.worker import WorkflowInstanceDetails

from bench.workloads.instance_details import instance_details
from temporay.runtime import frozen
from tests.runtime.isolation.workflows.globals_state import GlobalsWorkflow


@dataclass(frozen=True)
class Plain:
    a: int
    b: list[int]


@dataclass(frozen=True)
class WithPostInit:
    a: int
    doubled: int = 0

    def __post_init__(self) -> None:
        object.__setattr__(self, "doubled", self.a * 2)


@dataclass(frozen=True)
class WithHiddenField:
    a: int
    hidden: int = field(default=7, init=False)


@dataclass(frozen=True, slots=True)
class Slotted:
    a: int


def test_the_sdk_details_and_info_are_built_equal_to_their_constructors() -> None:
    det = instance_details(
        GlobalsWorkflow, run_id="r", workflow_id="w", task_queue="q", randomness_seed=1
    )
    fields = {f.name: getattr(det, f.name) for f in dataclasses.fields(det)}
    built = frozen.construct(WorkflowInstanceDetails, fields)
    assert type(built) is WorkflowInstanceDetails and built == WorkflowInstanceDetails(**fields)
    info_fields = {f.name: getattr(det.info, f.name) for f in dataclasses.fields(det.info)}
    assert frozen.construct(type(det.info), info_fields) == det.info

    replaced = frozen.replace(det, randomness_seed=9, last_failure=None)
    assert replaced == dataclasses.replace(det, randomness_seed=9, last_failure=None)
    assert det.randomness_seed == 1  # the original is untouched
    with pytest.raises(dataclasses.FrozenInstanceError):
        replaced.randomness_seed = 3  # type: ignore[misc]


def test_plain_dataclasses_take_the_short_way_and_stay_frozen() -> None:
    built = frozen.construct(Plain, {"a": 1, "b": [2]})
    assert built == Plain(1, [2])
    assert frozen.replace(built, a=5) == Plain(5, [2])
    with pytest.raises(dataclasses.FrozenInstanceError):
        built.a = 2  # type: ignore[misc]


def test_anything_else_goes_through_the_real_constructor() -> None:
    assert frozen.construct(WithPostInit, {"a": 2, "doubled": 0}).doubled == 4
    assert frozen.replace(WithPostInit(1), a=3).doubled == 6
    assert frozen.construct(WithHiddenField, {"a": 1}).hidden == 7
    assert frozen.construct(Slotted, {"a": 1}) == Slotted(1)
    assert frozen.replace(Slotted(1), a=2) == Slotted(2)


def test_missing_or_unknown_fields_fail_as_with_the_constructor() -> None:
    with pytest.raises(TypeError):
        frozen.construct(Plain, {"a": 1})
    with pytest.raises(TypeError):
        frozen.construct(Plain, {"a": 1, "b": [], "c": 3})
    with pytest.raises(TypeError):
        frozen.replace(Plain(1, []), c=3)
