"""Per-run isolation of workflow code, cheaper than the SDK's sandbox; restrictions on I/O.

The SDK's ``SandboxedWorkflowRunner`` re-imports the workflow's module (and every non-passthrough
module it imports, third-party packages included) for every run, behind a restricting proxy:
~3-4 ms and ~40-50 KiB per run, 80 ms and more once the module imports a few packages. Here:

* **Per-run module state by cloning.** The workflow's *own* modules (its module and the user
  modules it imports; never the standard library, temporalio, or installed third-party packages)
  are analysed once (:class:`ModulePlan`), then every run gets a copy of their state: new module
  namespaces, new function objects bound to them, new classes (so class attributes are per run
  too), copies of module-level containers and instances of the module's own classes. Nothing is
  re-executed, so module top-level code runs once per process, as for any import. Immutable values
  and third-party objects are shared. The ``_Definition`` and the failure exception types are
  re-derived from the run's classes.
* **The global ``sys.modules`` is never touched.** A run's modules are not registered anywhere;
  imports executed by workflow code resolve through the run's own table (a shared builtins dict
  whose ``__import__`` reads the run's ContextVar).
* **Shims** (:mod:`temporay.runtime.determinism`) are delivered through the same namespaces:
  ``time``, ``datetime``, ``random``, ``uuid``, ``os``, ``secrets``, ``threading`` bound by a
  workflow module are replaced by stand-ins (``from time import time`` included). Type annotations
  are resolved once against the real modules, so converters keep seeing the real ``datetime``.
* **I/O restrictions**: a process-wide audit hook (inert outside activations) refuses files,
  sockets, subprocesses and environment writes reached from workflow code, directly or through a
  library; ``time.sleep`` and thread starts are refused by the stand-ins. The error is the SDK's
  ``RestrictedWorkflowAccessError`` naming the call and what to use instead, so the workflow task
  fails and is retried, as under the SDK.

The SDK's escape hatches are honoured: ``workflow.unsafe.imports_passed_through()`` (imports in such
a block are shared, never cloned), ``workflow.unsafe.sandbox_unrestricted()`` (shims and
restrictions off inside it) and ``@workflow.defn(sandboxed=False)`` (no isolation at all).
"""

from __future__ import annotations

import abc
import ast
import builtins
import collections
import copy
import dataclasses
import functools
import inspect
import logging
import os
import site
import sys
import sysconfig
import threading
import types
import typing
import weakref
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import temporalio.bridge.proto.workflow_activation as wfact
import temporalio.bridge.proto.workflow_completion as wfcomp
import temporalio.converter
import temporalio.workflow
from temporalio.worker import WorkflowInstance, WorkflowInstanceDetails, WorkflowRunner
from temporalio.worker._command_aware_visitor import CommandInfo
from temporalio.worker.workflow_sandbox import RestrictedWorkflowAccessError, SandboxRestrictions

from .determinism import CURRENT_RUN, RunState, stand_in_for, stand_in_module

__all__ = [
    "WORKFLOW_BUILTINS",
    "IsolatedWorkflowRunner",
    "IsolationOptions",
    "ModulePlan",
    "RestrictedWorkflowAccessError",
]

logger = logging.getLogger(__name__)

_unsafe = temporalio.workflow.unsafe


# --- options -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class IsolationOptions:
    """What is shared between runs and what each run gets a copy of.

    In the spirit of the SDK's ``SandboxRestrictions.passthrough_modules``: by default the
    standard library, ``temporalio``, ``temporay`` and every installed package (anything under
    ``site-packages``/``dist-packages``) are shared, as are modules imported inside
    ``workflow.unsafe.imports_passed_through()``; the workflow's own module and the other user
    modules it imports are per run.

    Attributes:
        shared_modules: Module names (a name covers its submodules) shared between runs, like the
            SDK's ``with_passthrough_modules(...)``.
        isolated_modules: Module names given a per-run copy even though they are installed as
            third-party packages (your own package installed in site-packages).
        restrict_io: Refuse files, sockets, subprocesses, threads, ``time.sleep`` and environment
            writes from workflow code.
    """

    shared_modules: frozenset[str] = frozenset()
    isolated_modules: frozenset[str] = frozenset()
    restrict_io: bool = True

    def with_shared_modules(self, *names: str) -> IsolationOptions:
        return dataclasses.replace(self, shared_modules=self.shared_modules | set(names))

    def with_isolated_modules(self, *names: str) -> IsolationOptions:
        return dataclasses.replace(self, isolated_modules=self.isolated_modules | set(names))

    @classmethod
    def from_sandbox_restrictions(cls, restrictions: SandboxRestrictions) -> IsolationOptions:
        """The modules the SDK's sandbox passes through are the ones shared here.

        ``passthrough_all_modules`` is not supported (it would leave nothing but the workflow's
        own module to isolate: say so with ``shared_modules`` instead).
        """
        if restrictions.passthrough_all_modules:
            raise ValueError(
                "SandboxRestrictions.passthrough_all_modules has no equivalent here: list the "
                "modules to share in IsolationOptions(shared_modules=...)"
            )
        return cls(shared_modules=frozenset(restrictions.passthrough_modules))


# Shared whatever their location (editable installs are not under site-packages).
_ALWAYS_SHARED = ("temporalio", "temporay")


def _covered(name: str, prefixes: Iterable[str]) -> bool:
    return any(name == p or name.startswith(p + ".") for p in prefixes)


@functools.lru_cache(maxsize=1)
def _installed_roots() -> tuple[str, ...]:
    roots: set[str] = set()
    for key in ("stdlib", "platstdlib", "purelib", "platlib"):
        path = sysconfig.get_paths().get(key)
        if path:
            roots.add(os.path.realpath(path))
    try:
        roots.update(os.path.realpath(p) for p in site.getsitepackages())
    except AttributeError:  # virtualenvs with an old site.py
        pass
    user = site.getusersitepackages() if hasattr(site, "getusersitepackages") else None
    if user:
        roots.add(os.path.realpath(user))
    return tuple(sorted(r.rstrip(os.sep) + os.sep for r in roots))


def _is_installed(module: types.ModuleType) -> bool:
    path = getattr(module, "__file__", None)
    if not path:
        # Built-in, frozen, or a namespace package (no code of its own).
        return True
    real = os.path.realpath(path)
    if f"{os.sep}site-packages{os.sep}" in real or f"{os.sep}dist-packages{os.sep}" in real:
        return True
    return real.startswith(_installed_roots())


# --- the builtins of per-run namespaces --------------------------------------------------------

_real_import = builtins.__import__


def _workflow_import(
    name: str,
    globals: dict[str, Any] | None = None,
    locals: Any = None,
    fromlist: Sequence[str] = (),
    level: int = 0,
) -> types.ModuleType:
    """``__import__`` of workflow code: the run's copy of its own modules, the stand-ins of the
    shimmed standard library modules, the shared module otherwise."""
    module = _real_import(name, globals, locals, fromlist, level)
    st = CURRENT_RUN.get()
    if st is None:
        return module
    if not _unsafe.is_imports_passed_through():
        per_run = st.modules.get(id(module))
        if per_run is not None:
            return per_run
        plan = st.plan
        if plan is not None and id(module) in plan.ancestor_ids:
            return plan.package_view(st, module)
    if st.shims:
        # As for imports at module level: passed through means shared, not unshimmed.
        stand_in = stand_in_module(module)
        if stand_in is not None:
            return stand_in
    return module


WORKFLOW_BUILTINS: dict[str, Any] = dict(builtins.__dict__)
"""``__builtins__`` of every per-run module namespace (one dict for all runs). Its identity also
marks a frame as workflow code for the I/O restrictions."""
WORKFLOW_BUILTINS["__import__"] = _workflow_import


# --- I/O restrictions --------------------------------------------------------------------------

_FILES = "file I/O is not replayed: read or write files in an activity"
_NETWORK = "network I/O is not replayed: call other services from an activity"
_PROCESSES = "a subprocess is not replayed: run it from an activity"
_ENVIRONMENT = (
    "the environment is shared by every run in the worker: pass configuration as workflow input, "
    "or read it in an activity"
)

_AUDITED: dict[str, tuple[str, str]] = {
    "open": ("open()", _FILES),
    "os.remove": ("os.remove()", _FILES),
    "os.rename": ("os.rename()", _FILES),
    "os.rmdir": ("os.rmdir()", _FILES),
    "os.mkdir": ("os.mkdir()", _FILES),
    "os.truncate": ("os.truncate()", _FILES),
    "os.chmod": ("os.chmod()", _FILES),
    "os.chown": ("os.chown()", _FILES),
    "os.link": ("os.link()", _FILES),
    "os.symlink": ("os.symlink()", _FILES),
    "os.utime": ("os.utime()", _FILES),
    "os.listdir": ("os.listdir()", _FILES),
    "os.scandir": ("os.scandir()", _FILES),
    "os.chdir": ("os.chdir()", _FILES),
    "glob.glob": ("glob.glob()", _FILES),
    "shutil.copyfile": ("shutil.copyfile()", _FILES),
    "shutil.copytree": ("shutil.copytree()", _FILES),
    "shutil.rmtree": ("shutil.rmtree()", _FILES),
    "shutil.move": ("shutil.move()", _FILES),
    "shutil.make_archive": ("shutil.make_archive()", _FILES),
    "shutil.unpack_archive": ("shutil.unpack_archive()", _FILES),
    "tempfile.mkstemp": ("tempfile.mkstemp()", _FILES),
    "tempfile.mkdtemp": ("tempfile.mkdtemp()", _FILES),
    "builtins.input": ("input()", "workflow code cannot read the terminal"),
    "socket.__new__": ("socket.socket()", _NETWORK),
    "socket.connect": ("socket.connect()", _NETWORK),
    "socket.bind": ("socket.bind()", _NETWORK),
    "socket.getaddrinfo": ("socket.getaddrinfo()", _NETWORK),
    "socket.gethostbyname": ("socket.gethostbyname()", _NETWORK),
    "socket.gethostbyaddr": ("socket.gethostbyaddr()", _NETWORK),
    "socket.sendto": ("socket.sendto()", _NETWORK),
    "urllib.Request": ("urllib.request.urlopen()", _NETWORK),
    "subprocess.Popen": ("subprocess.Popen()", _PROCESSES),
    "os.system": ("os.system()", _PROCESSES),
    "os.exec": ("os.exec*()", _PROCESSES),
    "os.spawn": ("os.spawn*()", _PROCESSES),
    "os.posix_spawn": ("os.posix_spawn()", _PROCESSES),
    "os.fork": ("os.fork()", _PROCESSES),
    "os.forkpty": ("os.forkpty()", _PROCESSES),
    "os.kill": ("os.kill()", _PROCESSES),
    "os.killpg": ("os.killpg()", _PROCESSES),
    "os.putenv": ("os.environ[...] = ... (os.putenv)", _ENVIRONMENT),
    "os.unsetenv": ("del os.environ[...] (os.unsetenv)", _ENVIRONMENT),
    "webbrowser.open": ("webbrowser.open()", "workflow code cannot open a browser"),
}

# Frames of these modules between the I/O and the workflow code make it infrastructure (imports,
# source lines for tracebacks, log handlers), not the workflow's own I/O.
_EXEMPT_MODULES = (
    "importlib",
    "_frozen_importlib",
    "_frozen_importlib_external",
    "zipimport",
    "pkgutil",
    "linecache",
    "tokenize",
    "traceback",
    "inspect",
    "warnings",
    "logging",
    "temporay.runtime",
)


def _from_workflow_code(st: RunState, frame: types.FrameType | None) -> bool:
    code_globals = st.code_globals
    while frame is not None:
        if frame.f_builtins is WORKFLOW_BUILTINS or (
            code_globals and id(frame.f_globals) in code_globals
        ):
            return True
        name = frame.f_globals.get("__name__")
        if isinstance(name, str) and name.startswith(_EXEMPT_MODULES):
            return False
        frame = frame.f_back
    return False


def _audit_hook(event: str, args: tuple[Any, ...]) -> None:
    rule = _AUDITED.get(event)
    if rule is None:
        return
    st = CURRENT_RUN.get()
    if st is None or not st.restrict_io or _unsafe.is_sandbox_unrestricted():
        return
    if not _from_workflow_code(st, sys._getframe(1)):
        return
    call, reason = rule
    detail = ""
    if event == "open" and args:
        detail = f" of {args[0]!r}"
    raise RestrictedWorkflowAccessError(
        call,
        override_message=(
            f"Cannot call {call}{detail} from workflow code: {reason}. "
            "(workflow.unsafe.sandbox_unrestricted() lifts this for code you know is safe.)"
        ),
    )


_audit_installed = False
_audit_lock = threading.Lock()


def install_restrictions() -> None:
    """Install the I/O audit hook (once per process; it cannot be removed, and does nothing
    outside a restricted run's activation)."""
    global _audit_installed
    if _audit_installed:
        return
    with _audit_lock:
        if not _audit_installed:
            sys.addaudithook(_audit_hook)
            _audit_installed = True


# --- which modules are the workflow's own ------------------------------------------------------


def _is_passthrough_block(node: ast.With | ast.AsyncWith) -> bool:
    for item in node.items:
        call = item.context_expr
        if isinstance(call, ast.Call):
            func = call.func
            name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", None)
            if name == "imports_passed_through":
                return True
    return False


@dataclass
class _SourceFacts:
    """What a module's source says about its imports (the imports themselves are long done)."""

    passed_through: set[str] = field(default_factory=set)
    # name bound in the module -> (module imported from, attribute), for `from M import a as b`
    imported_from: dict[str, tuple[str, str]] = field(default_factory=dict)


def _resolve_from(package: str, level: int, module: str | None) -> str:
    if not level:
        return module or ""
    parts = package.split(".") if package else []
    parent = ".".join(parts[: len(parts) - level + 1])
    return f"{parent}.{module}" if module and parent else (module or parent)


def _source_facts(module: types.ModuleType) -> _SourceFacts:
    """Read once from the module's source: modules imported inside ``with
    workflow.unsafe.imports_passed_through():`` blocks, and where ``from M import name`` names
    come from."""
    facts = _SourceFacts()
    try:
        tree = ast.parse(inspect.getsource(module))
    except (OSError, TypeError, SyntaxError):
        return facts
    package = module.__package__ or ""
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            base = _resolve_from(package, node.level, node.module)
            for alias in node.names:
                if alias.name != "*":
                    facts.imported_from[alias.asname or alias.name] = (base, alias.name)
        if not isinstance(node, (ast.With, ast.AsyncWith)) or not _is_passthrough_block(node):
            continue
        for sub in ast.walk(node):
            if isinstance(sub, ast.Import):
                facts.passed_through.update(alias.name for alias in sub.names)
            elif isinstance(sub, ast.ImportFrom):
                base = _resolve_from(package, sub.level, sub.module)
                if base:
                    facts.passed_through.add(base)
                    facts.passed_through.update(f"{base}.{alias.name}" for alias in sub.names)
    return facts


# --- the plan: what a run's copy is made of ----------------------------------------------------

# Slot kinds.
_SHARE = 0  # the template value itself
_SUBST = 1  # a fixed replacement (a shim's stand-in, resolved annotations)
_MEMO = 2  # the run's copy of a module, namespace, function, class or cell
_COPY = 3  # copy.deepcopy with the run's memo (own classes/functions map to the run's)
_TUPLE = 4  # rebuilt from part slots
_LIST = 5
_DICT = 6
_SET = 7
_WRAP = 8  # classmethod/staticmethod/property/partial/cached_property around part slots
_OBJECT = 9  # a plain instance (dataclass, own class): new object, __dict__ from a dict slot
_VIEW = 10  # a package above one of our modules: the run's view of it (see package_view)

_MISSING = object()
_STATE = -1  # memo key of the RunState being instantiated (never an id())


@dataclass(slots=True, eq=False)
class _Slot:
    """How one value of a run's copy is produced from the template's."""

    kind: int
    value: Any  # the shared value, the replacement, or the template object
    parts: tuple[Any, ...] = ()
    wrapper: Any = None
    # Resolvable before the run's classes exist (nothing to copy, no class to look up).
    eager: bool = True

    @property
    def shared(self) -> bool:
        return self.kind == _SHARE


_ATOMIC: frozenset[type] = frozenset(
    {
        type(None),
        bool,
        int,
        float,
        complex,
        str,
        bytes,
        range,
        slice,
        type(Ellipsis),
        type(NotImplemented),
        types.CodeType,
        types.BuiltinFunctionType,
        types.BuiltinMethodType,
        types.MethodWrapperType,
        types.WrapperDescriptorType,
        types.MethodDescriptorType,
        types.ClassMethodDescriptorType,
        types.GetSetDescriptorType,
        types.MemberDescriptorType,
        weakref.ref,
        logging.Logger,
        logging.LoggerAdapter,
        temporalio.workflow.LoggerAdapter,
        type(threading.Lock()),
        type(threading.RLock()),
    }
)

# Class dict entries that type() makes itself, or that must keep the template's value.
_CLASS_SKIP = frozenset({"__dict__", "__weakref__", "__abstractmethods__", "_abc_impl"})
_CLASS_SHARE = frozenset(
    {
        "__module__",
        "__qualname__",
        "__doc__",
        "__slots__",
        "__orig_bases__",
        "__parameters__",
        "__dataclass_fields__",
        "__dataclass_params__",
        "__match_args__",
    }
)
_NS_SHARE = frozenset(
    {
        "__name__",
        "__doc__",
        "__package__",
        "__loader__",
        "__spec__",
        "__file__",
        "__cached__",
        "__path__",
        "__annotations__",
        "__all__",
    }
)
_CLONEABLE_METACLASSES: frozenset[type] = frozenset({type, abc.ABCMeta})


def _is_typing_construct(value: Any) -> bool:
    return typing.get_origin(value) is not None or isinstance(
        value, (typing.TypeVar, typing.ForwardRef, types.UnionType)
    )


@dataclass
class _FunctionPlan:
    fn: types.FunctionType
    globals_id: int | None  # id of the own template namespace, or None (keep the foreign one)
    cells: tuple[int, ...]
    defaults: _Slot | None = None
    kwdefaults: _Slot | None = None
    attrs: _Slot | None = None
    annotations: _Slot | None = None


@dataclass
class _ClassPlan:
    cls: type
    bases: tuple[_Slot, ...]
    items: list[tuple[str, _Slot]]


@dataclass
class _ModulePlanEntry:
    module: types.ModuleType
    base: dict[str, Any]
    dirty: list[tuple[str, _Slot]]


@dataclass
class Instantiation:
    """One run's copy of the workflow's modules."""

    defn: temporalio.workflow._Definition
    modules: dict[int, types.ModuleType]
    failure_exception_types: list[type[BaseException]]


class UnsupportedWorkflowModuleError(TypeError):
    """The workflow's module cannot be given per-run state (names the offending object)."""


class ModulePlan:
    """How to make one run's copy of the modules a workflow class lives in.

    Built once per workflow class and process (milliseconds: it walks the module namespaces,
    resolves type annotations, reads the module source for ``imports_passed_through`` blocks);
    :meth:`instantiate` then costs tens of microseconds per run.
    """

    def __init__(self, cls: type, options: IsolationOptions, *, shims: bool) -> None:
        self.workflow_class = cls
        self.options = options
        self.shims = shims
        self.module_name = cls.__module__
        root = sys.modules.get(cls.__module__)
        if root is None or not _defined_in(root, cls):
            raise UnsupportedWorkflowModuleError(
                f"workflow class {cls.__qualname__} is not reachable from its module "
                f"{cls.__module__!r} in sys.modules: isolation copies the state of the module the "
                "class is defined in (or pass isolation=False)"
            )
        self._shared_names: set[str] = set()
        self._own: dict[int, types.ModuleType] = {}  # id(namespace) -> module
        self._facts: dict[int, _SourceFacts] = {}
        self._discover_modules(root)
        self._slots: dict[int, _Slot] = {}
        self._functions: dict[int, _FunctionPlan] = {}
        self._pending_functions: list[types.FunctionType] = []
        self._classes: dict[int, _ClassPlan] = {}
        self._cells: dict[int, types.CellType] = {}
        self._cell_slots: dict[int, _Slot] = {}
        self._data_classes: dict[int, bool] = {}
        self._copy_failures: list[str] = []
        self._keep: list[Any] = []  # objects whose id() the plan keys on
        own_names = {m.__name__ for m in self._own.values()}
        self._modules = [self._plan_namespace(m) for m in self._own.values()]
        # The workflow class is the run's even when its module does not bind it by name (a class
        # made in a function, or bound under another name).
        self.classify(cls)
        self._drain_functions()
        self._class_order = self._order_classes()
        self.code_globals = frozenset(self._own)
        self.own_modules = tuple(m.__name__ for m in self._own.values())
        self._children: dict[str, list[str]] = {}
        for name in self.own_modules:
            parent, _, child = name.rpartition(".")
            while parent:
                self._children.setdefault(parent, [])
                if child not in self._children[parent]:
                    self._children[parent].append(child)
                parent, _, child = parent.rpartition(".")
        self.ancestor_ids = frozenset(
            id(sys.modules[p]) for p in self._children if p in sys.modules and p not in own_names
        )
        if self._copy_failures:
            logger.debug(
                "Shared between runs of %s (cannot be copied): %s",
                cls.__qualname__,
                ", ".join(self._copy_failures),
            )
        # Instantiate once now: a plan that cannot produce a run fails at prepare time.
        self.instantiate(RunState(0))

    # -- discovery --

    def _shared_module(self, name: str, module: types.ModuleType) -> bool:
        if name == self.module_name:
            return False
        if _covered(name, self._shared_names) or _covered(name, self.options.shared_modules):
            return True
        if _covered(name, self.options.isolated_modules):
            return False
        top = name.partition(".")[0]
        if top in sys.stdlib_module_names or _covered(name, _ALWAYS_SHARED):
            return True
        return _is_installed(module)

    @staticmethod
    def _module_of(value: Any) -> types.ModuleType | None:
        if isinstance(value, types.ModuleType):
            return value
        if isinstance(value, types.FunctionType):
            mod = sys.modules.get(value.__module__ or "")
            if mod is not None and mod.__dict__ is value.__globals__:
                return mod
            return None
        if isinstance(value, type):
            return sys.modules.get(value.__module__)
        return None

    def _discover_modules(self, root: types.ModuleType) -> None:
        queue = [root]
        seen: set[int] = set()
        while queue:
            module = queue.pop()
            if id(module) in seen:
                continue
            seen.add(id(module))
            if self._shared_module(module.__name__, module):
                continue
            self._own[id(module.__dict__)] = module
            facts = self._facts[id(module)] = _source_facts(module)
            self._shared_names.update(facts.passed_through)
            for value in list(module.__dict__.values()):
                other = self._module_of(value)
                if other is not None and id(other) not in seen:
                    queue.append(other)
        # A module found before another declared it passed through is shared after all.
        for ns_id, module in list(self._own.items()):
            if module.__name__ != self.module_name and _covered(
                module.__name__, self._shared_names
            ):
                del self._own[ns_id]

    def _is_ancestor(self, name: str) -> bool:
        prefix = name + "."
        return any(m.__name__.startswith(prefix) for m in self._own.values())

    def package_view(self, st: RunState, package: types.ModuleType) -> types.ModuleType:
        """A run's view of a shared package above its own modules: the package's attributes,
        with the run's copies of the own submodules (``import pkg.mod`` then ``pkg.mod.X``, or
        ``from pkg import mod`` executed by workflow code)."""
        view = st.modules.get(id(package))
        if view is not None:
            return view
        view = types.ModuleType(package.__name__)
        view.__dict__.update(package.__dict__)
        st.modules[id(package)] = view
        for child in self._children.get(package.__name__, ()):
            template = sys.modules.get(f"{package.__name__}.{child}")
            if template is None:
                continue
            per_run = st.modules.get(id(template))
            if per_run is None and id(template) in self.ancestor_ids:
                per_run = self.package_view(st, template)
            if per_run is not None:
                view.__dict__[child] = per_run
        return view

    def _is_own_class(self, cls: type) -> bool:
        mod = sys.modules.get(cls.__module__)
        return mod is not None and id(mod.__dict__) in self._own and _defined_in(mod, cls)

    # -- classification --

    def _remember(self, value: Any, slot: _Slot) -> _Slot:
        self._slots[id(value)] = slot
        self._keep.append(value)
        return slot

    def classify(self, value: Any, *, stand_in_classes: bool = False) -> _Slot:
        """How a run gets its version of ``value`` (recording what must be cloned)."""
        if self.shims:
            stand_in = stand_in_for(value, classes=stand_in_classes)
            if stand_in is not None:
                return _Slot(_SUBST, stand_in)
        t = type(value)
        if t in _ATOMIC:
            return _Slot(_SHARE, value)
        known = self._slots.get(id(value))
        if known is not None:
            return known
        if t is types.ModuleType:
            if id(value.__dict__) in self._own:
                return self._remember(value, _Slot(_MEMO, value))
            if self._is_ancestor(value.__name__):
                return self._remember(value, _Slot(_VIEW, value, eager=False))
            return _Slot(_SHARE, value)
        if t is types.FunctionType:
            return self._classify_function(value)
        if isinstance(value, type):
            return self._classify_class(value)
        if t is tuple or t is frozenset:
            parts = tuple(self.classify(v, stand_in_classes=stand_in_classes) for v in value)
            if all(p.shared for p in parts):
                return self._remember(value, _Slot(_SHARE, value))
            if t is frozenset:
                return self._remember(value, self._try_copy(value))
            return self._remember(value, self._container(_TUPLE, value, parts))
        if t is list or t is dict or t is set:
            kind = _LIST if t is list else _DICT if t is dict else _SET
            slot = self._remember(value, _Slot(kind, value))  # first: containers may be cyclic
            if t is dict:
                slot.parts = tuple((self.classify(k), self.classify(v)) for k, v in value.items())
                flat: list[_Slot] = [p for pair in slot.parts for p in pair]
            else:
                slot.parts = tuple(self.classify(v) for v in value)
                flat = list(slot.parts)
            slot.eager = all(p.eager for p in flat if p is not slot)
            return slot
        if t is staticmethod or t is classmethod:
            return self._wrapper(value, t, (value.__func__,))
        if t is property:
            return self._wrapper(value, property, (value.fget, value.fset, value.fdel), value.__doc__)
        if t is functools.partial:
            return self._wrapper(value, functools.partial, (value.func, value.args, value.keywords))
        if t is functools.cached_property:
            return self._wrapper(value, functools.cached_property, (value.func,))
        if _is_typing_construct(value):
            args = (*typing.get_args(value), typing.get_origin(value))
            own = any(not self.classify(a).shared for a in args if a is not None)
            return self._remember(value, self._try_copy(value) if own else _Slot(_SHARE, value))
        if isinstance(value, (list, dict, set, bytearray, collections.deque)):
            # Containers of other kinds (OrderedDict, defaultdict, Counter, deque, ...).
            return self._remember(value, self._try_copy(value))
        own_type = self._is_own_class(t)
        if own_type or dataclasses.is_dataclass(t) or hasattr(t, "model_fields"):
            if _plain_instance(value):
                # Rebuilt from its __dict__, by a slot per attribute: much cheaper than deepcopy,
                # and shared outright when nothing in it is ours or mutable.
                slot = self._remember(value, _Slot(_OBJECT, value, eager=False))
                state = self.classify(dict(value.__dict__))
                frozen = dataclasses.is_dataclass(t) and t.__dataclass_params__.frozen  # type: ignore[attr-defined]
                if frozen and not own_type and all(
                    k.shared and v.shared for k, v in state.parts
                ):
                    slot = self._remember(value, _Slot(_SHARE, value))
                else:
                    slot.parts = (self.classify(t), state)
                return slot
            return self._remember(value, self._try_copy(value))
        # An instance of a third-party class (a client, a tracer, a compiled pattern, ...):
        # shared between runs, as module-level service objects are meant to be.
        return self._remember(value, _Slot(_SHARE, value))

    @staticmethod
    def _container(kind: int, value: Any, parts: tuple[_Slot, ...]) -> _Slot:
        return _Slot(kind, value, parts, eager=all(p.eager for p in parts))

    def _wrapper(self, value: Any, wrapper: Any, inner: tuple[Any, ...], doc: Any = None) -> _Slot:
        parts = tuple(self.classify(v) for v in inner)
        if all(p.shared for p in parts):
            return self._remember(value, _Slot(_SHARE, value))
        if wrapper is property:
            parts = (*parts, _Slot(_SHARE, doc))
        slot = _Slot(_WRAP, value, parts, wrapper, eager=all(p.eager for p in parts))
        return self._remember(value, slot)

    def _try_copy(self, value: Any) -> _Slot:
        # Identity for everything this plan clones: the trial checks copyability only.
        memo: dict[int, Any] = dict(self._identity_memo())
        try:
            copy.deepcopy(value, memo)
        except Exception as err:
            self._copy_failures.append(f"{type(value).__qualname__} ({err})")
            return _Slot(_SHARE, value)
        return _Slot(_COPY, value, eager=False)

    def _identity_memo(self) -> Iterable[tuple[int, Any]]:
        for ns_id, module in self._own.items():
            yield ns_id, module.__dict__
            yield id(module), module
        for key, slot in self._slots.items():
            if slot.kind == _MEMO:
                yield key, slot.value

    def _classify_function(self, fn: types.FunctionType) -> _Slot:
        if id(fn.__globals__) in self._own:
            return self._plan_function(fn)
        # A foreign function (a third-party decorator's wrapper) is copied only when it closes
        # over, or wraps, something of ours.
        self._remember(fn, _Slot(_SHARE, fn))  # provisional, breaks cycles
        refs = [c.cell_contents for c in fn.__closure__ or () if _cell_filled(c)]
        wrapped = fn.__dict__.get("__wrapped__")
        if wrapped is not None:
            refs.append(wrapped)
        if any(not self.classify(r).shared for r in refs):
            del self._slots[id(fn)]
            return self._plan_function(fn)
        return self._slots[id(fn)]

    def _plan_function(self, fn: types.FunctionType) -> _Slot:
        slot = self._remember(fn, _Slot(_MEMO, fn))
        globals_id = id(fn.__globals__) if id(fn.__globals__) in self._own else None
        for cell in fn.__closure__ or ():
            self._cells.setdefault(id(cell), cell)
        cells = tuple(id(c) for c in fn.__closure__ or ())
        self._functions[id(fn)] = _FunctionPlan(fn, globals_id, cells)
        self._pending_functions.append(fn)
        return slot

    def _drain_functions(self) -> None:
        # Function internals are classified after the namespaces have been walked, iteratively.
        while self._pending_functions:
            fn = self._pending_functions.pop()
            plan = self._functions[id(fn)]
            plan.defaults = self.classify(fn.__defaults__, stand_in_classes=True)
            plan.kwdefaults = self.classify(fn.__kwdefaults__, stand_in_classes=True)
            plan.attrs = self.classify(dict(fn.__dict__)) if fn.__dict__ else None
            plan.annotations = self._annotations_slot(fn)
            for cell in fn.__closure__ or ():
                if id(cell) not in self._cell_slots:
                    self._cell_slots[id(cell)] = (
                        self.classify(cell.cell_contents, stand_in_classes=True)
                        if _cell_filled(cell)
                        else _Slot(_SHARE, _EMPTY_CELL)
                    )

    def _classify_class(self, cls: type) -> _Slot:
        if not self._is_own_class(cls) or type(cls) not in _CLONEABLE_METACLASSES:
            # Third-party classes, and own classes built by a custom metaclass (Enum, pydantic
            # models, TypedDict, Protocol, ...), are shared: re-running a metaclass per run is
            # neither cheap nor always free of side effects.
            return self._remember(cls, _Slot(_SHARE, cls))
        if self._pure_data_class(cls, set()):
            # No code of its own, no mutable class attribute: nothing to isolate, and sharing it
            # keeps payload types identical for converters (and their ABC caches small).
            return self._remember(cls, _Slot(_SHARE, cls))
        slot = self._remember(cls, _Slot(_MEMO, cls, eager=False))
        bases = tuple(self.classify(b) for b in cls.__bases__)
        items: list[tuple[str, _Slot]] = []
        for key, value in cls.__dict__.items():
            if key in _CLASS_SKIP:
                continue
            if isinstance(value, types.MemberDescriptorType) and value.__objclass__ is cls:
                continue  # __slots__ members: type() makes the run's own
            if key in _CLASS_SHARE:
                items.append((key, _Slot(_SHARE, value)))
            elif key == "__annotations__":
                items.append((key, self._annotations_slot(cls)))
            else:
                items.append((key, self.classify(value, stand_in_classes=True)))
        self._classes[id(cls)] = _ClassPlan(cls, bases, items)
        return slot

    def _pure_data_class(self, cls: type, visiting: set[int]) -> bool:
        """A dataclass or attrs class whose methods are all generated, whose class attributes
        are immutable, and whose field types are shared too."""
        known = self._data_classes.get(id(cls))
        if known is not None:
            return known
        if id(cls) in visiting:
            return True
        visiting.add(id(cls))
        result = self._is_data_shaped(cls) and all(
            not self._is_own_class(base) or self._pure_data_class(base, visiting)
            for base in cls.__bases__
        )
        if result:
            try:
                hints = typing.get_type_hints(cls, include_extras=True)
            except Exception:
                hints = {}
            for referenced in _classes_in(hints.values()):
                if (
                    self._is_own_class(referenced)
                    and type(referenced) in _CLONEABLE_METACLASSES
                    and not self._pure_data_class(referenced, visiting)
                ):
                    result = False
                    break
        self._data_classes[id(cls)] = result
        return result

    def _foreign_function(self, fn: types.FunctionType) -> bool:
        """A function of a library (attrs' __getstate__, ...) that closes over nothing of ours."""
        if id(fn.__globals__) in self._own:
            return False
        for cell in fn.__closure__ or ():
            if _cell_filled(cell):
                content = cell.cell_contents
                if isinstance(content, types.FunctionType) and id(content.__globals__) in self._own:
                    return False
                if isinstance(content, type) and self._is_own_class(content):
                    return False
        return True

    def _is_data_shaped(self, cls: type) -> bool:
        own = cls.__dict__
        if "__dataclass_fields__" not in own and "__attrs_attrs__" not in own:
            return False
        for key, value in own.items():
            if key in _CLASS_SKIP or key in _CLASS_SHARE or key == "__annotations__":
                continue
            if key.startswith("__attrs_") or isinstance(value, types.MemberDescriptorType):
                continue
            if isinstance(value, types.FunctionType):
                if not _generated(value) and not self._foreign_function(value):
                    return False
            elif type(value) in _ATOMIC or (isinstance(value, tuple) and all(type(v) in _ATOMIC for v in value)):
                continue
            else:
                return False
        return True

    def _annotations_slot(self, obj: Any) -> _Slot:
        """Annotations resolved now, against the real modules (a string ``"datetime"`` means the
        real class, never the stand-in), remapped to the run's own classes per run."""
        # The object's own annotations only (a class's, not its bases'), unevaluated.
        raw = inspect.get_annotations(obj)
        if not raw:
            return _Slot(_SHARE, raw)
        try:
            hints = typing.get_type_hints(obj, include_extras=True)
            resolved = {k: hints.get(k, v) for k, v in raw.items()}
        except Exception:
            resolved = dict(raw)
        self._keep.append(resolved)
        if all(self.classify(v).shared for v in resolved.values()):
            return _Slot(_SUBST, resolved)
        return _Slot(_COPY, resolved, eager=False)

    def _plan_namespace(self, module: types.ModuleType) -> _ModulePlanEntry:
        base: dict[str, Any] = {}
        dirty: list[tuple[str, _Slot]] = []
        imported_from = self._facts[id(module)].imported_from
        for key, value in module.__dict__.items():
            if key == "__builtins__":
                continue
            if key in _NS_SHARE:
                base[key] = value
                continue
            origin = imported_from.get(key)
            if origin is not None and self._owned_by_shared_module(value, *origin):
                # `from shared_module import STATE`: the shared module's object, as under the
                # SDK's sandbox for a passed-through module (shims still apply).
                stand_in = stand_in_for(value, classes=True) if self.shims else None
                base[key] = value if stand_in is None else stand_in
                continue
            slot = self.classify(value, stand_in_classes=True)
            if slot.kind in (_SHARE, _SUBST):
                base[key] = slot.value
            else:
                dirty.append((key, slot))
        base["__builtins__"] = WORKFLOW_BUILTINS
        return _ModulePlanEntry(module, base, dirty)

    def _owned_by_shared_module(self, value: Any, module_name: str, attr: str) -> bool:
        module = sys.modules.get(module_name)
        if module is None or id(module.__dict__) in self._own:
            return False
        if getattr(module, attr, _MISSING) is not value:
            return False
        # A class or function defined in one of our modules and re-exported by a shared one is
        # still ours.
        home = self._module_of(value)
        return home is None or id(home.__dict__) not in self._own

    def _order_classes(self) -> list[_ClassPlan]:
        ordered: list[_ClassPlan] = []
        done: set[int] = set()

        def visit(plan: _ClassPlan) -> None:
            if id(plan.cls) in done:
                return
            done.add(id(plan.cls))
            for base in plan.cls.__bases__:
                base_plan = self._classes.get(id(base))
                if base_plan is not None:
                    visit(base_plan)
            ordered.append(plan)

        for plan in list(self._classes.values()):
            visit(plan)
        return ordered

    # -- per run --

    def instantiate(
        self, state: RunState, failure_types: Sequence[type[BaseException]] = ()
    ) -> Instantiation:
        """Make one run's copy: modules, functions, classes, then everything that refers to them."""
        memo: dict[int, Any] = {_STATE: state}
        modules: dict[int, types.ModuleType] = {}
        namespaces: list[tuple[_ModulePlanEntry, dict[str, Any]]] = []
        for entry in self._modules:
            template = entry.module
            module = types.ModuleType(template.__name__)
            ns = module.__dict__
            ns.update(entry.base)
            memo[id(template)] = module
            memo[id(template.__dict__)] = ns
            modules[id(template)] = module
            namespaces.append((entry, ns))
        state.modules = modules
        state.plan = self
        for key in self._cells:
            memo[key] = types.CellType()
        for key, plan in self._functions.items():
            fn = plan.fn
            clone = types.FunctionType(
                fn.__code__,
                memo[plan.globals_id] if plan.globals_id is not None else fn.__globals__,
                fn.__name__,
                None,
                tuple(memo[c] for c in plan.cells) or None,
            )
            clone.__qualname__ = fn.__qualname__
            clone.__module__ = fn.__module__
            clone.__doc__ = fn.__doc__
            memo[key] = clone
        later: list[tuple[Any, str, _Slot]] = []  # (target, attribute, slot) once classes exist
        resolve = self._resolve
        for key, plan in self._functions.items():
            clone = memo[key]
            for attr, fslot in (
                ("__defaults__", plan.defaults),
                ("__kwdefaults__", plan.kwdefaults),
                ("__annotations__", plan.annotations),
            ):
                if fslot is None or (fslot.kind == _SHARE and attr == "__annotations__"):
                    continue
                if fslot.eager:
                    setattr(clone, attr, resolve(fslot, memo))
                else:
                    later.append((clone, attr, fslot))
            if plan.attrs is not None:
                if plan.attrs.eager:
                    clone.__dict__.update(resolve(plan.attrs, memo))
                else:
                    later.append((clone, "__dict__", plan.attrs))
        for key, cslot in self._cell_slots.items():
            if cslot.kind == _SHARE and cslot.value is _EMPTY_CELL:
                continue
            if cslot.eager:
                memo[key].cell_contents = resolve(cslot, memo)
            else:
                later.append((memo[key], "cell_contents", cslot))
        for cplan in self._class_order:
            cls = cplan.cls
            bases = tuple(resolve(b, memo) for b in cplan.bases)
            class_ns: dict[str, Any] = {}
            clone_items: list[tuple[str, _Slot]] = []
            for name, islot in cplan.items:
                if islot.eager:
                    class_ns[name] = resolve(islot, memo)
                else:
                    clone_items.append((name, islot))
            made: type = type(cls)(cls.__name__, bases, class_ns)
            memo[id(cls)] = made
            later.extend((made, name, islot) for name, islot in clone_items)
        for target, attr, lslot in later:
            value = resolve(lslot, memo)
            if attr == "__dict__":
                target.__dict__.update(value)
                continue
            setattr(target, attr, value)
            if isinstance(target, type):
                set_name = getattr(type(value), "__set_name__", None)
                if set_name is not None:
                    set_name(value, target, attr)  # what type() does for the eager ones
        for entry, ns in namespaces:
            for name, dslot in entry.dirty:
                ns[name] = resolve(dslot, memo)
        cls = memo.get(id(self.workflow_class), self.workflow_class)
        defn = temporalio.workflow._Definition.must_from_class(cls)
        remapped = list(failure_types)
        remapped.extend(memo[id(t)] for t in failure_types if id(t) in memo)
        return Instantiation(defn, modules, remapped)

    def _resolve(self, slot: _Slot, memo: dict[int, Any]) -> Any:
        kind = slot.kind
        if kind <= _SUBST:
            return slot.value
        if kind == _MEMO:
            return memo[id(slot.value)]
        key = id(slot.value)
        if kind == _VIEW:
            return self.package_view(memo[_STATE], slot.value)
        made = memo.get(key, _MISSING)
        if made is not _MISSING:
            return made
        resolve = self._resolve
        if kind == _COPY:
            return copy.deepcopy(slot.value, memo)
        if kind == _LIST:
            new_list: list[Any] = []
            memo[key] = new_list
            new_list.extend(resolve(p, memo) for p in slot.parts)
            return new_list
        if kind == _DICT:
            new_dict: dict[Any, Any] = {}
            memo[key] = new_dict
            for k, v in slot.parts:
                new_dict[resolve(k, memo)] = resolve(v, memo)
            return new_dict
        if kind == _SET:
            made = memo[key] = {resolve(p, memo) for p in slot.parts}
            return made
        if kind == _TUPLE:
            made = memo[key] = tuple(resolve(p, memo) for p in slot.parts)
            return made
        if kind == _OBJECT:
            cls_slot, state_slot = slot.parts
            made = object.__new__(resolve(cls_slot, memo))
            memo[key] = made
            made.__dict__.update(resolve(state_slot, memo))
            return made
        if kind == _WRAP:
            args = [resolve(p, memo) for p in slot.parts]
            wrapper = slot.wrapper
            if wrapper is functools.partial:
                func, pargs, keywords = args
                made = functools.partial(func, *pargs, **keywords)
            else:
                made = wrapper(*args)
            memo[key] = made
            return made
        raise AssertionError(f"unknown slot kind {kind}")


_EMPTY_CELL = object()


def _generated(fn: types.FunctionType) -> bool:
    """A method written by dataclasses/attrs (or dataclasses' recursive-repr wrapper of one)."""
    filename = fn.__code__.co_filename
    if filename == "<string>" or filename.startswith("<attrs generated"):
        return True
    if filename == dataclasses.__file__ and fn.__closure__:
        return all(
            isinstance(c.cell_contents, types.FunctionType) and _generated(c.cell_contents)
            for c in fn.__closure__
            if _cell_filled(c) and callable(c.cell_contents)
        )
    return False


def _classes_in(hints: Iterable[Any]) -> Iterable[type]:
    """Classes mentioned by type hints (through generics, unions, Annotated)."""
    stack = list(hints)
    seen: set[int] = set()
    while stack:
        hint = stack.pop()
        if id(hint) in seen:
            continue
        seen.add(id(hint))
        if isinstance(hint, type) and typing.get_origin(hint) is None:
            yield hint
        stack.extend(typing.get_args(hint))
        origin = typing.get_origin(hint)
        if origin is not None:
            stack.append(origin)


def _plain_instance(value: Any) -> bool:
    """An instance that object.__new__ plus its __dict__ recreates (no custom copy protocol)."""
    t = type(value)
    return (
        t.__new__ is object.__new__
        and t.__reduce_ex__ is object.__reduce_ex__
        and t.__reduce__ is object.__reduce__
        and getattr(t, "__getstate__", object.__getstate__) is object.__getstate__  # type: ignore[attr-defined]
        and not hasattr(t, "__deepcopy__")
        and not hasattr(t, "__setstate__")
        and "__slots__" not in t.__dict__
        and hasattr(value, "__dict__")
    )


def _cell_filled(cell: types.CellType) -> bool:
    try:
        cell.cell_contents  # noqa: B018
    except ValueError:
        return False
    return True


def _defined_in(module: types.ModuleType, cls: type) -> bool:
    """Whether ``cls`` is the class its module defines under its qualified name."""
    target: Any = module
    for part in cls.__qualname__.split("."):
        if part == "<locals>":
            return True  # a class made in a function of the module: still the module's own
        target = getattr(target, part, None)
        if target is None:
            return False
    return target is cls


# --- the runner ---------------------------------------------------------------------------------


class IsolatedWorkflowRunner(WorkflowRunner):
    """Wraps any engine (a ``WorkflowRunner``) with per-run module state, shims and restrictions.

    For each run it makes the run's copy of the workflow's modules, re-derives the ``_Definition``
    and the failure exception types from the run's classes, creates the engine's instance with
    them, and scopes the run's ContextVar around every activation of that instance.

    Args:
        engine: The runner that executes workflow code (the SDK's ``UnsandboxedWorkflowRunner``,
            temporay's own engine, ...).
        isolation: Per-run module state.
        shims: Deterministic ``time``/``datetime``/``random``/``uuid``/``os``/``secrets`` in workflow
            modules (needs ``isolation``).
        strict: The shimmed calls raise ``RestrictedWorkflowAccessError`` instead, like the SDK.
        options: What is shared between runs, and whether I/O is restricted.
    """

    def __init__(
        self,
        engine: WorkflowRunner,
        *,
        isolation: bool = True,
        shims: bool = True,
        strict: bool = False,
        options: IsolationOptions | None = None,
    ) -> None:
        if (shims or strict) and not isolation:
            raise ValueError(
                "shims and strict mode reach workflow code through its per-run module namespace: "
                "they need isolation=True"
            )
        self.engine = engine
        self.isolation = isolation
        self.shims = shims or strict
        self.strict = strict
        self.options = options or IsolationOptions()
        self._plans: dict[type, ModulePlan] = {}
        self._plans_lock = threading.Lock()
        self._worker_failure_types: Sequence[type[BaseException]] = ()
        if self.options.restrict_io:
            install_restrictions()

    def plan(self, cls: type) -> ModulePlan:
        """The (cached) plan for a workflow class; built on first use."""
        plan = self._plans.get(cls)
        if plan is None:
            with self._plans_lock:
                plan = self._plans.get(cls)
                if plan is None:
                    plan = self._plans[cls] = ModulePlan(cls, self.options, shims=self.shims)
        return plan

    def prepare_workflow(self, defn: temporalio.workflow._Definition) -> None:
        self.engine.prepare_workflow(defn)
        if self.isolation and defn.sandboxed:
            self.plan(defn.cls)

    def set_worker_level_failure_exception_types(
        self, types: Sequence[type[BaseException]]
    ) -> None:
        self._worker_failure_types = types
        self.engine.set_worker_level_failure_exception_types(types)

    def create_instance(self, det: WorkflowInstanceDetails) -> WorkflowInstance:
        if not det.defn.sandboxed:
            # @workflow.defn(sandboxed=False): the author asked for no sandbox at all.
            return self.engine.create_instance(det)
        state = RunState(
            det.randomness_seed,
            run_id=det.info.run_id,
            shims=self.shims,
            strict=self.strict,
            restrict_io=self.options.restrict_io,
        )
        if self.isolation:
            plan = self.plan(det.defn.cls)
            made = plan.instantiate(state, det.worker_level_failure_exception_types)
            det = dataclasses.replace(
                det,
                defn=made.defn,
                worker_level_failure_exception_types=made.failure_exception_types,
            )
        else:
            module = sys.modules.get(det.defn.cls.__module__)
            if module is not None:
                state.code_globals = frozenset({id(module.__dict__)})
        token = CURRENT_RUN.set(state)
        try:
            instance = self.engine.create_instance(det)
        finally:
            CURRENT_RUN.reset(token)
        return IsolatedInstance(instance, state)


class IsolatedInstance(WorkflowInstance):
    """An engine's instance with the run's ContextVar set around every activation."""

    def __init__(self, inner: WorkflowInstance, state: RunState) -> None:
        self.inner = inner
        self.state = state

    def activate(self, act: wfact.WorkflowActivation) -> wfcomp.WorkflowActivationCompletion:
        state = self.state
        state.time_ns = act.timestamp.ToNanoseconds()
        for job in act.jobs:
            if job.HasField("update_random_seed"):
                state.reseed(job.update_random_seed.randomness_seed)
        token = CURRENT_RUN.set(state)
        try:
            return self.inner.activate(act)
        finally:
            CURRENT_RUN.reset(token)

    def get_info(self) -> temporalio.workflow.Info:
        return self.inner.get_info()

    def get_thread_id(self) -> int | None:
        return self.inner.get_thread_id()

    def get_serialization_context(
        self, command_info: CommandInfo | None
    ) -> temporalio.converter.SerializationContext | None:
        return self.inner.get_serialization_context(command_info)

    def get_external_store_context(
        self, command_info: CommandInfo | None
    ) -> temporalio.converter.StorageDriverStoreContext:
        return self.inner.get_external_store_context(command_info)

    def __getattr__(self, name: str) -> Any:
        # Engine-specific extras (the hosting layer's context snapshots, ...) pass through.
        return getattr(self.inner, name)
