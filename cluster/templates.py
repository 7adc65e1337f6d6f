"""Run templates: what every run of one workflow definition on one Worker shares, pickled once.

The Worker builds a fresh ``WorkflowInstanceDetails`` per run, but everything in it except the
run's own info, seed and last result/failure is the same for every run of a definition. That part
is pickled once per definition and shipped once per shard; a run then costs only its details.
"""

from __future__ import annotations

import dataclasses
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import temporalio.converter
from temporalio.worker import WorkflowInstanceDetails

from temporay.actors.code import MainModule, dumps_code, uses_main
from temporay.runtime.hosting.externs import LOCAL_ACTIVITY_CHECK_EXTERN, LocalActivityCatalog
from temporay.runtime.hosting.hosted_run import RunTemplate


@dataclass(frozen=True)
class TemplateBlob:
    template_id: str
    data: bytes
    main: MainModule | None


class TemplateCache:
    """One blob per distinct (definition, worker configuration)."""

    def __init__(self) -> None:
        self._blobs: dict[tuple[Any, ...], TemplateBlob] = {}
        self._lock = threading.Lock()

    def blob_for(self, det: WorkflowInstanceDetails) -> TemplateBlob:
        factory = det.payload_converter_factory
        owner = getattr(factory, "__self__", None)
        # The Worker creates these objects once and passes the same ones for every run.
        fingerprint = (
            det.defn.cls,
            id(owner) if owner is not None else id(factory),
            det.failure_converter_class,
            tuple(det.interceptor_classes),
            tuple(det.worker_level_failure_exception_types),
            det.disable_eager_activity_execution,
            id(det.patch_activation_callback),
            det.default_workflow_logic_flags,
            id(det.extern_functions),
        )
        with self._lock:
            found = self._blobs.get(fingerprint)
        if found is not None:
            return found
        blob = _build(det, factory, owner)
        with self._lock:
            return self._blobs.setdefault(fingerprint, blob)


def _build(det: WorkflowInstanceDetails, factory: Callable[[], Any], owner: Any) -> TemplateBlob:
    if isinstance(owner, temporalio.converter.DataConverter):
        # The codec and external storage stay here: the Worker applies them.
        stripped = dataclasses.replace(owner, payload_codec=None, external_storage=None)
        factory = stripped._new_payload_converter
    template = RunTemplate(
        workflow_class=det.defn.cls,
        payload_converter_factory=factory,
        failure_converter_class=det.failure_converter_class,
        interceptor_classes=tuple(det.interceptor_classes),
        worker_level_failure_exception_types=tuple(det.worker_level_failure_exception_types),
        disable_eager_activity_execution=det.disable_eager_activity_execution,
        patch_activation_callback=det.patch_activation_callback,
        default_workflow_logic_flags=det.default_workflow_logic_flags,
        extern_names=tuple(det.extern_functions),
        local_activities=LocalActivityCatalog.probe(
            det.extern_functions.get(LOCAL_ACTIVITY_CHECK_EXTERN)
        ),
    )
    objects = [det.defn.cls, *det.interceptor_classes, det.failure_converter_class]
    main = MainModule.of_driver() if uses_main(objects) or _factory_in_main(factory) else None
    return TemplateBlob(
        template_id=uuid.uuid4().hex,
        data=dumps_code(template, ship_main=main is not None),
        main=main,
    )


def _factory_in_main(factory: Callable[..., Any]) -> bool:
    owner = getattr(factory, "__self__", None)
    target = owner if owner is not None else factory
    classes = [type(target), getattr(target, "payload_converter_class", None)]
    return uses_main([c for c in classes if c is not None])
