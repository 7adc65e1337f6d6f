"""How a shard makes its runs: from the templates routers send, and ahead of time.

A run's first activation carries its template (what all runs of one workflow class on one
Worker share), sent in full until the shard has it; the shard loads each template once and
remembers one that failed to load, so every run of it fails alike. Between batches the shard
makes the next runs of recently used templates as far as they do not depend on the run
(``ReadyRun``: module copies, converters, the engine's instance), which takes that work out of a
new run's first activation; the run's details, rebuilt from that activation, are bound on arrival.
"""

from __future__ import annotations

import logging
import os
import threading

import cloudpickle
import temporalio.bridge.proto.workflow_activation as wfact
import temporalio.workflow
from temporalio.worker import WorkflowRunner

from temporay.actors.code import WorkflowCodeError, ensure_main_loaded
from temporay.actors.run_table import RunTable
from temporay.actors.wire import RunKey
from temporay.proto import hosting as pb
from temporay.runtime.hosting.hosted_run import (
    HostedRun,
    ReadyRun,
    RunTemplate,
    running_loop_for_creation,
    takes_ready_converters,
)
from temporay.runtime.hosting.log_shipping import LogCapture
from temporay.runtime.hosting.run_info import details_from_activation

logger = logging.getLogger(__name__)

READY_CLASSES = 16
"""How many recently used templates (workflow classes of a Worker) a shard keeps runs ready
for."""


class RunFactory:
    """Makes one shard's runs with its engine and records them in its run table."""

    def __init__(
        self, shard_name: str, engine: WorkflowRunner, table: RunTable, ready_copies: int
    ) -> None:
        self._name = shard_name
        self._engine = engine
        self._table = table
        self._ready_copies = ready_copies
        self._prepared: set[type] = set()
        # Loaded templates and the errors of those that failed, by template ID (under table.lock).
        self.templates: dict[str, RunTemplate] = {}
        self._template_errors: dict[str, BaseException] = {}
        # Templates (with their definition) whose next runs get what does not depend on the run
        # made ahead, by template ID; most recently used last.
        self._ready_for: dict[str, tuple[RunTemplate, temporalio.workflow._Definition]] = {}
        # The runs made ahead, by template ID.
        self.ready_runs: dict[str, list[ReadyRun]] = {}
        self._converters_ahead = takes_ready_converters(engine)
        self._making_ready = threading.Lock()

    def create(
        self, key: RunKey, spec: pb.RunSpec, activation: wfact.WorkflowActivation
    ) -> HostedRun:
        """The run ``activation`` (its first) is for, made and entered in the run table."""
        template = self._template(spec)
        details = details_from_activation(
            activation, namespace=spec.namespace, task_queue=spec.task_queue
        )
        defn = template.definition()
        if defn.cls not in self._prepared:
            with running_loop_for_creation():
                self._engine.prepare_workflow(defn)
            self._prepared.add(defn.cls)
        ready = self._take_ready(spec.template_id)
        if ready is not None:
            run = ready.bind(details)
        else:
            run = HostedRun.create(self._engine, template, details, defn)
        with self._table.lock:
            self._table.runs[key] = run
            self._table.counters.runs_created += 1
            self._ready_for.pop(spec.template_id, None)
            self._ready_for[spec.template_id] = (template, defn)
            while len(self._ready_for) > READY_CLASSES:
                forgotten = next(iter(self._ready_for))
                del self._ready_for[forgotten]
                self.ready_runs.pop(forgotten, None)
        return run

    def make_ready(self) -> None:
        """Make ``ready_copies`` runs ahead for each recently used template (once a batch is
        answered; a call while another is at it returns at once)."""
        with self._table.lock:
            wanted = list(self._ready_for.items())
        if not self._ready_copies or not self._making_ready.acquire(blocking=False):
            return  # another thread is at it
        try:
            for template_id, (template, defn) in wanted:
                try:
                    self._make_ready(template_id, template, defn)
                except Exception:
                    logger.exception(
                        "Shard %s: making ready for runs of %s failed",
                        self._name,
                        defn.cls.__qualname__,
                    )
        finally:
            self._making_ready.release()

    def _make_ready(
        self, template_id: str, template: RunTemplate, defn: temporalio.workflow._Definition
    ) -> None:
        ready = self.ready_runs.setdefault(template_id, [])
        while len(ready) < self._ready_copies:
            ready.append(
                ReadyRun(self._engine, template, defn, converters_ahead=self._converters_ahead)
            )

    def _take_ready(self, template_id: str) -> ReadyRun | None:
        ready = self.ready_runs.get(template_id)
        try:
            return ready.pop() if ready else None  # atomic: another thread may take it first
        except IndexError:
            return None

    def _template(self, spec: pb.RunSpec) -> RunTemplate:
        with self._table.lock:
            template = self.templates.get(spec.template_id)
            error = self._template_errors.get(spec.template_id)
        if template is not None:
            return template
        if error is not None and not spec.template:
            raise error
        if not spec.template:
            raise WorkflowCodeError(
                f"shard {self._name} has no template {spec.template_id} and none was sent"
            )
        try:
            if spec.main_module_hash:
                ensure_main_loaded(
                    spec.main_module_hash, spec.main_module_source, spec.main_module_path
                )
            loaded = cloudpickle.loads(spec.template)
        except BaseException as err:
            wrapped = WorkflowCodeError(
                f"temporay could not load the workflow code on shard {self._name} "
                f"(node pid {os.getpid()}): {err!r}. Make the module importable on every node: "
                "install it there or ship it with a Ray runtime_env (py_modules/working_dir)."
            )
            with self._table.lock:
                self._template_errors[spec.template_id] = wrapped
            raise wrapped from err
        assert isinstance(loaded, RunTemplate)
        if LogCapture.installed() is not None:
            loaded.log_levels.apply()
        with self._table.lock:
            self.templates[spec.template_id] = loaded
        return loaded
