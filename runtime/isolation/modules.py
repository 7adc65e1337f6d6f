"""Which modules are the workflow's own (a copy per run) and which are shared.

Only the workflow's own code may keep per-run state: the standard library, ``temporalio``,
``temporay`` and installed packages are shared, as the SDK's sandbox passes them through (a
per-run copy of a library is what makes the SDK's sandbox expensive per run). What a module's
source says also counts: modules imported inside ``workflow.unsafe.imports_passed_through()``
are shared, and ``from shared import NAME`` keeps the shared module's object.

:class:`OwnModules` discovers them once per plan; :class:`OwnModuleTree` is the summary of them
that the import hook (:mod:`.imports`) and every run's state keep. It lives here, with what
builds it, so that the run's state needs nothing above it.
"""

from __future__ import annotations

import ast
import functools
import inspect
import logging
import os
import site
import sys
import sysconfig
import threading
import types
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from temporay.runtime.isolation.options import IsolationOptions

logger = logging.getLogger(__name__)

__all__ = [
    "OwnModuleTree",
    "OwnModules",
    "SourceFacts",
    "defined_in",
    "home_module",
    "resolve_import",
]

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


def defined_in(module: types.ModuleType, cls: type) -> bool:
    """Whether ``cls`` is the class its module defines under its qualified name."""
    target: Any = module
    for part in cls.__qualname__.split("."):
        if part == "<locals>":
            return True  # a class made in a function of the module: still the module's own
        target = getattr(target, part, None)
        if target is None:
            return False
    return target is cls


# --- what the source says ----------------------------------------------------------------------


@dataclass
class SourceFacts:
    """What a module's source says about its imports (the imports themselves are long done)."""

    passed_through: set[str] = field(default_factory=set)
    # name bound in the module -> (module imported from, attribute), for `from M import a as b`
    imported_from: dict[str, tuple[str, str]] = field(default_factory=dict)


def _is_passthrough_block(node: ast.With | ast.AsyncWith) -> bool:
    for item in node.items:
        call = item.context_expr
        if isinstance(call, ast.Call):
            func = call.func
            name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", None)
            if name == "imports_passed_through":
                return True
    return False


def resolve_import(package: str, level: int, module: str | None) -> str:
    """The absolute name ``from <level dots><module> import ...`` means in ``package``."""
    if not level:
        return module or ""
    parts = package.split(".") if package else []
    parent = ".".join(parts[: len(parts) - level + 1])
    return f"{parent}.{module}" if module and parent else (module or parent)


def _parse_in_fresh_thread(source: str) -> ast.Module:
    """``ast.parse`` on a thread of its own: CPython 3.11 raises ``SystemError`` ("AST
    constructor recursion depth mismatch") or ``RecursionError`` parsing a large module under a
    deep stack (a Worker built deep inside a test runner), which a fresh stack does not."""
    result: list[ast.Module | BaseException] = []

    def parse() -> None:
        try:
            result.append(ast.parse(source))
        except BaseException as err:
            result.append(err)

    thread = threading.Thread(target=parse, name="temporay-parse")
    thread.start()
    thread.join()
    if isinstance(result[0], BaseException):
        raise result[0]
    return result[0]


_unreadable_logged: set[str] = set()


def _parse_source(module: types.ModuleType) -> ast.Module | None:
    """The module's syntax tree, or ``None`` (logged once per module) when its source cannot be
    had or parsed: isolation then knows less about its imports, and never fails because of it."""
    try:
        source = inspect.getsource(module)
    except (OSError, TypeError):
        return None  # no source (C extension, frozen, REPL): nothing to read, nothing to say
    try:
        try:
            return ast.parse(source)
        except (RecursionError, SystemError, MemoryError):
            return _parse_in_fresh_thread(source)
    except Exception as err:
        if module.__name__ not in _unreadable_logged:
            _unreadable_logged.add(module.__name__)
            logger.warning(
                "temporay isolation could not parse the source of module %s (%s: %s); its "
                "imports are treated as the run's own",
                module.__name__,
                type(err).__name__,
                err,
            )
        return None


def _source_facts(module: types.ModuleType) -> SourceFacts:
    """Read once from the module's source: modules imported inside ``with
    workflow.unsafe.imports_passed_through():`` blocks, and where ``from M import name`` names
    come from."""
    facts = SourceFacts()
    tree = _parse_source(module)
    if tree is None:
        return facts
    package = module.__package__ or ""
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            base = resolve_import(package, node.level, node.module)
            for alias in node.names:
                if alias.name != "*":
                    facts.imported_from[alias.asname or alias.name] = (base, alias.name)
        if not isinstance(node, (ast.With, ast.AsyncWith)) or not _is_passthrough_block(node):
            continue
        for sub in ast.walk(node):
            if isinstance(sub, ast.Import):
                facts.passed_through.update(alias.name for alias in sub.names)
            elif isinstance(sub, ast.ImportFrom):
                base = resolve_import(package, sub.level, sub.module)
                if base:
                    facts.passed_through.add(base)
                    facts.passed_through.update(f"{base}.{alias.name}" for alias in sub.names)
    return facts


# --- discovery ---------------------------------------------------------------------------------


def home_module(value: Any) -> types.ModuleType | None:
    """The module a module, function or class belongs to (where its state lives), if any."""
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


@dataclass(frozen=True)
class OwnModuleTree:
    """The workflow's own modules as the import hook needs them (one per plan, shared by runs)."""

    module_ids: frozenset[int]
    """``id()`` of every own template module (given a per-run copy when the run reaches it)."""
    ancestor_ids: frozenset[int]
    """``id()`` of the shared packages above own modules (``tests`` for ``tests.wf``)."""
    children: Mapping[str, tuple[str, ...]]
    """Package name -> the names of its children on the way to own modules."""


class OwnModules:
    """The workflow's own modules: its module and the user modules it imports, transitively.

    Discovery follows module-level bindings (``import m``, ``from m import f``, classes and
    functions defined elsewhere); what is shared stops the walk. Modules that workflow code
    imports inside a function are added as the plan finds those imports (:meth:`adopt`).
    """

    def __init__(self, root: types.ModuleType, options: IsolationOptions) -> None:
        self.root_name = root.__name__
        self._options = options
        self._passed_through: set[str] = set()
        self._seen: set[int] = set()
        self.by_namespace: dict[int, types.ModuleType] = {}
        """id(template namespace) -> template module."""
        self.facts: dict[int, SourceFacts] = {}
        """id(template module) -> what its source says."""
        self._discover(root)

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(m.__name__ for m in self.by_namespace.values())

    def adopt(self, module: types.ModuleType) -> bool:
        """Whether a module imported by workflow code is own (discovering it, and what it
        imports, if it is a user module not seen yet)."""
        if id(module.__dict__) not in self.by_namespace and id(module) not in self._seen:
            self._discover(module)
        return id(module.__dict__) in self.by_namespace

    def _shared(self, name: str, module: types.ModuleType) -> bool:
        if name == self.root_name:
            return False
        options = self._options
        if _covered(name, self._passed_through) or _covered(name, options.shared_modules):
            return True
        if _covered(name, options.isolated_modules):
            return False
        top = name.partition(".")[0]
        if top in sys.stdlib_module_names or _covered(name, _ALWAYS_SHARED):
            return True
        return _is_installed(module)

    def _discover(self, start: types.ModuleType) -> None:
        queue = [start]
        found: list[int] = []
        while queue:
            module = queue.pop()
            if id(module) in self._seen:
                continue
            self._seen.add(id(module))
            if self._shared(module.__name__, module):
                continue
            self.by_namespace[id(module.__dict__)] = module
            found.append(id(module.__dict__))
            facts = self.facts[id(module)] = _source_facts(module)
            self._passed_through.update(facts.passed_through)
            for value in list(module.__dict__.values()):
                other = home_module(value)
                if other is not None and id(other) not in self._seen:
                    queue.append(other)
        # A module found before another declared it passed through is shared after all.
        for ns_id in found:
            name = self.by_namespace[ns_id].__name__
            if name != self.root_name and _covered(name, self._passed_through):
                del self.by_namespace[ns_id]

    def tree(self) -> OwnModuleTree:
        """What the import hook needs to know of these modules (once discovery is complete)."""
        names = self.names
        children: dict[str, list[str]] = {}
        for name in names:
            parent, _, child = name.rpartition(".")
            while parent:
                siblings = children.setdefault(parent, [])
                if child not in siblings:
                    siblings.append(child)
                parent, _, child = parent.rpartition(".")
        own = set(names)
        return OwnModuleTree(
            module_ids=frozenset(id(m) for m in self.by_namespace.values()),
            ancestor_ids=frozenset(
                id(sys.modules[p]) for p in children if p in sys.modules and p not in own
            ),
            children={k: tuple(v) for k, v in children.items()},
        )

    def owns_namespace(self, namespace: Any) -> bool:
        return id(namespace) in self.by_namespace

    def owns_class(self, cls: type) -> bool:
        mod = sys.modules.get(cls.__module__)
        return mod is not None and id(mod.__dict__) in self.by_namespace and defined_in(mod, cls)

    def is_ancestor(self, name: str) -> bool:
        """A shared package above one of the own modules."""
        prefix = name + "."
        return any(n.startswith(prefix) for n in self.names)

    def descendants(self, name: str) -> list[types.ModuleType]:
        """The own modules at or below ``name``."""
        prefix = name + "."
        return [
            m
            for m in self.by_namespace.values()
            if m.__name__ == name or m.__name__.startswith(prefix)
        ]

    def by_name(self, name: str) -> types.ModuleType | None:
        module = sys.modules.get(name)
        if module is not None and id(module.__dict__) in self.by_namespace:
            return module
        return None
