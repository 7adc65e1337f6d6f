"""A workflow defined in the driver's script needs the script's other code under a guard.

Shards load such a workflow by running the script (as module ``__temporay_main__``); whatever it
does at its top level outside ``if __name__ == "__main__":`` runs again in every shard: starting
a Worker, connecting to Temporal, ``asyncio.run(main())``. Seen from the Worker that is a
"Potential deadlock" on every first task, so it is checked here, where the Worker validates its
workflows, and refused with the line at fault and the fix.
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import temporalio.workflow

HARMLESS_CALL_ROOTS = frozenset({"logging", "warnings", "sys", "load_dotenv", "print"})
"""Top-level calls a script may make unguarded: setting up logging or warnings, sys.path edits,
reading a .env file, printing. They run in shards too, and do no harm there."""


class MainScriptError(ValueError):
    """A workflow lives in a script whose top-level code would run again in every shard."""


def _is_main_guard(node: ast.stmt) -> bool:
    if not isinstance(node, ast.If):
        return False
    test = node.test
    if not isinstance(test, ast.Compare) or len(test.comparators) != 1:
        return False
    sides = [test.left, test.comparators[0]]
    has_name = any(isinstance(s, ast.Name) and s.id == "__name__" for s in sides)
    has_main = any(isinstance(s, ast.Constant) and s.value == "__main__" for s in sides)
    return has_name and has_main


def _call_root(node: ast.expr) -> str | None:
    while isinstance(node, ast.Attribute | ast.Call):
        node = node.value if isinstance(node, ast.Attribute) else node.func
    return node.id if isinstance(node, ast.Name) else None


def _offending(body: list[ast.stmt]) -> ast.stmt | None:
    """The first statement that does something when the module is loaded."""
    for node in body:
        if _is_main_guard(node):
            continue
        if isinstance(
            node,
            ast.Import
            | ast.ImportFrom
            | ast.FunctionDef
            | ast.AsyncFunctionDef
            | ast.ClassDef
            | ast.Assign
            | ast.AnnAssign
            | ast.AugAssign
            | ast.Pass,
        ):
            continue
        if isinstance(node, ast.Expr):
            if isinstance(node.value, ast.Constant):
                continue  # a docstring
            if isinstance(node.value, ast.Call) and _call_root(node.value) in HARMLESS_CALL_ROOTS:
                continue
            return node
        if isinstance(node, ast.If):
            found = _offending(node.body) or _offending(node.orelse)
            if found is not None:
                return found
            continue
        if isinstance(node, ast.Try):
            parts = [node.body, node.orelse, node.finalbody, *(h.body for h in node.handlers)]
            found = next((f for f in map(_offending, parts) if f is not None), None)
            if found is not None:
                return found
            continue
        return node
    return None


def check_main_guard(defn: temporalio.workflow._Definition) -> None:
    """Raise ``MainScriptError`` if ``defn``'s class lives in a script that does not guard its
    top-level code. Anything that cannot be read (no file, no source) passes: the shard's own
    loading then reports what it finds."""
    if getattr(defn.cls, "__module__", None) != "__main__":
        return
    path = getattr(sys.modules.get("__main__"), "__file__", None)
    if not path:
        return
    try:
        source = Path(path).read_text()
        tree = ast.parse(source, filename=path)
    except (OSError, SyntaxError, ValueError, RecursionError, SystemError):
        return
    found = _offending(tree.body)
    if found is None:
        return
    line = ast.get_source_segment(source, found) or ""
    line = line.strip().splitlines()[0] if line.strip() else type(found).__name__
    raise MainScriptError(
        f"workflow {defn.name} is defined in the script {path}, whose line {found.lineno} "
        f"({line[:60]}) runs at its top level: shards load the script to find the workflow and "
        'would run that line again. Put the script\'s own code under `if __name__ == "__main__":`, '
        "or move the workflow into a module of its own."
    )
