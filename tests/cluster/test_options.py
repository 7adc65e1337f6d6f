"""Every option of the runner and the plugin is checked where it is given, naming the rule."""

from __future__ import annotations

from typing import Any

import pytest

from bench.workloads.hosting import NoopWorkflow, SignalQueryWorkflow, charge
from temporay import RayPlugin, RayWorkflowRunner
from temporay.cluster.dedicated import normalize_dedicated


@pytest.mark.parametrize(
    ("options", "words"),
    [
        ({"shards": 0}, "shards must be an integer >= 1"),
        ({"shards": 2.5}, "shards must be an integer >= 1"),
        ({"shard_num_cpus": -1}, "shard_num_cpus must be a number >= 0"),
        ({"deadlock_budget": 2.0}, "deadlock_budget must be below the Worker's own 2 s"),
        ({"transport": "carrier-pigeon"}, "transport"),
        ({"address": ""}, "address must be a Ray address"),
        ({"connect_timeout": 0}, "connect_timeout"),
        ({"shard_start_timeout": -5}, "shard_start_timeout"),
    ],
)
def test_bad_options_fail_where_given(options: dict[str, Any], words: str) -> None:
    with pytest.raises(ValueError, match=words):
        RayWorkflowRunner(**options)
    with pytest.raises(ValueError, match=words):
        RayPlugin(**options)


def test_dedicated_takes_classes_and_names() -> None:
    assert normalize_dedicated([SignalQueryWorkflow, "Other"]) == {"SignalQueryWorkflow", "Other"}
    assert normalize_dedicated(NoopWorkflow) == {"NoopWorkflow"}
    assert normalize_dedicated("NoopWorkflow") == {"NoopWorkflow"}
    predicate = normalize_dedicated(lambda info: info.workflow_type == "x")
    assert callable(predicate)


@pytest.mark.parametrize("bad", [[42], [charge], [object], 3.5])
def test_dedicated_refuses_what_cannot_match(bad: Any) -> None:
    with pytest.raises(TypeError, match="dedicated= takes workflow classes"):
        RayWorkflowRunner(dedicated=bad)
