"""Per-run isolation of workflow code, cheaper than the SDK's sandbox; restrictions on I/O.

The SDK's ``SandboxedWorkflowRunner`` re-imports the workflow's module (and every non-passthrough
module it imports, third-party packages included) for every run, behind a restricting proxy, so a
run costs what importing those modules costs. Here:

* **Per-run module state by cloning what the run can reach.** The workflow's *own* modules (its
  module and the user modules it imports; never the standard library, temporalio, or installed
  third-party packages: :mod:`.modules`) are analysed once per workflow class
  (:mod:`.plan`), starting from the class and following what its code can reach
  (:mod:`.reachability`, :mod:`.bytecode`), deciding how each value reached is shared, copied
  or re-made (:mod:`.classify`, :mod:`.values`). Every run then gets a copy of that state
  (:mod:`.clone`): new module namespaces, new function objects bound to them, new classes (so
  class attributes are per run too), copies of module-level containers and instances of the
  module's own classes.
  Nothing is re-executed, so module top-level code runs once per process, as for any import.
  Immutable values and third-party objects are shared. The ``_Definition`` and the failure
  exception types are re-derived from the run's classes.
* **The global ``sys.modules`` is never touched.** A run's modules are not registered anywhere;
  imports executed by workflow code resolve through the run's own table (a shared builtins dict
  whose ``__import__`` reads the run's ContextVar: :mod:`.imports`).
* **Shims** (:mod:`.shims`, fronted by :mod:`.shims.determinism`) are delivered through the
  same namespaces: ``time``, ``datetime``, ``random``, ``uuid``, ``os``, ``secrets``,
  ``threading`` bound by a workflow module are replaced by stand-ins (``from time import time``
  included). Type annotations are resolved once against the real modules, so converters keep
  seeing the real ``datetime``.
* **I/O restrictions** (:mod:`.io`): a process-wide audit hook (inert outside
  activations) refuses files, sockets, subprocesses and environment writes reached from workflow
  code, directly or through a library; ``time.sleep`` and thread starts are refused by the
  stand-ins.

Every run's state (its seed, clock, options and module copies) is one
:class:`~.run_state.RunState`, found through the :data:`~.run_state.CURRENT_RUN` ContextVar; what
a worker shares between runs is set by :class:`~.options.IsolationOptions`.

The SDK's escape hatches are honoured: ``workflow.unsafe.imports_passed_through()`` (imports in such
a block are shared, never cloned), ``workflow.unsafe.sandbox_unrestricted()`` (shims and
restrictions off inside it) and ``@workflow.defn(sandboxed=False)`` (no isolation at all).

The runner that applies it is :class:`temporay.runtime.isolated_runner.IsolatedWorkflowRunner`.
"""
