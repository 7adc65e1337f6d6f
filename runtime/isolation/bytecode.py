"""What one code object can reach in its module, read from its bytecode (:func:`code_facts`).

A run copies only what its workflow class can reach, so that a module holding fifteen workflows
does not make every run pay for fifteen. Code reaches module globals by name (every name a
``LOAD_GLOBAL``/``STORE_GLOBAL`` may use is in ``co_names``, also for nested functions,
lambdas and comprehensions, whose code objects sit in ``co_consts``), and other modules through
``import`` statements (``IMPORT_NAME``, with its level and ``from`` list as constants).

Annotations of functions and classes defined at run time are string constants (always under
``from __future__ import annotations``), evaluated later against the run's namespace by
``typing.get_type_hints`` (the SDK does so for every handler): the names in string constants
that parse as expressions count as used too.

``co_names`` also holds attribute names: a superset, which only ever copies a little more.
What cannot be read this way (``globals()``, ``eval``/``exec``, ``__import__``, a function's
``__globals__``, a frame's ``f_globals``) is reported as an escape: the plan then copies every
own module whole, as if nothing were known. The walk that follows these facts from the workflow
class onwards is :mod:`.reachability`.
"""

from __future__ import annotations

import ast
import dis
import functools
import types
from dataclasses import dataclass

__all__ = ["ESCAPES", "CodeFacts", "ImportSite", "code_facts"]

ESCAPES = frozenset(
    {"globals", "eval", "exec", "__import__", "__globals__", "f_globals", "__builtins__"}
)
"""Names through which code can reach any global of its module, or import any module."""

_UNKNOWN = object()


@dataclass(frozen=True)
class ImportSite:
    """One ``import`` statement: ``__import__(name, fromlist=fromlist, level=level)``."""

    name: str
    level: int
    fromlist: tuple[str, ...]


@dataclass(frozen=True)
class CodeFacts:
    """What a code object (with its nested code) can reach."""

    names: tuple[str, ...]
    """Every name the code uses (globals, attributes, imported modules), in first-use order."""
    imports: tuple[ImportSite, ...]
    escapes: bool
    """Reaches globals or modules in ways bytecode does not tell (see :data:`ESCAPES`)."""


@functools.lru_cache(maxsize=4096)
def code_facts(code: types.CodeType) -> CodeFacts:
    names: dict[str, None] = {}  # ordered: plans come out the same in every process
    imports: list[ImportSite] = []
    escapes = False
    stack = [code]
    while stack:
        current = stack.pop()
        names.update(dict.fromkeys(current.co_names))
        for const in current.co_consts:
            if isinstance(const, types.CodeType):
                stack.append(const)
                continue
            for text in const if isinstance(const, tuple) else (const,):
                if isinstance(text, str):
                    if text in ESCAPES:
                        escapes = True  # getattr(fn, "__globals__") and the like
                    names.update(dict.fromkeys(_names_in_expression(text)))
        if current.co_names and _imports(current, imports):  # an import names a module
            escapes = True
    escapes = escapes or not ESCAPES.isdisjoint(names)
    return CodeFacts(tuple(names), tuple(imports), escapes)


_MAX_ANNOTATION = 300  # longer strings are text, not annotations


@functools.lru_cache(maxsize=8192)
def _names_in_expression(text: str) -> tuple[str, ...]:
    """The names a string would use if evaluated as an annotation (none if it is not one)."""
    if not text or len(text) > _MAX_ANNOTATION or text.isspace():
        return ()
    try:
        tree = ast.parse(text, mode="eval")
    except (SyntaxError, ValueError):
        return ()
    return tuple(node.id for node in ast.walk(tree) if isinstance(node, ast.Name))


def _imports(code: types.CodeType, into: list[ImportSite]) -> bool:
    """Collect the import statements of one code object; True when one cannot be read."""
    unreadable = False
    recent: list[object] = []
    for ins in dis.get_instructions(code):
        if ins.opname == "IMPORT_NAME":
            level, fromlist = recent[-2:] if len(recent) >= 2 else (_UNKNOWN, _UNKNOWN)
            if isinstance(level, int) and (fromlist is None or isinstance(fromlist, tuple)):
                into.append(ImportSite(str(ins.argval), level, tuple(fromlist or ())))
            else:
                unreadable = True
        recent.append(ins.argval if ins.opname == "LOAD_CONST" else _UNKNOWN)
        del recent[:-2]
    return unreadable
