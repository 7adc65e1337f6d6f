"""Getting workflow code into shard processes on any node.

Importable code travels by reference (cloudpickle's default) and must be importable where the shard
runs: installed there, or shipped with a Ray runtime environment (``py_modules``/``working_dir``,
see ``runtime_env_for``). A workflow defined in the driver's ``__main__`` cannot be imported by
that name elsewhere (it would re-run the script), so, as the SDK sandbox does, its file is shipped
and loaded under another module name, and references to ``__main__`` objects are pickled as
references into that module.
"""

from __future__ import annotations

import hashlib
import importlib.util
import io
import os
import sys
import sysconfig
import threading
import types
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cloudpickle

SHIPPED_MAIN_MODULE = "__temporay_main__"


class WorkflowCodeError(RuntimeError):
    """Workflow code could not be loaded in a shard (the task fails with this message)."""


@dataclass(frozen=True)
class MainModule:
    """The driver's ``__main__`` file, as shipped to shards."""

    digest: str
    source: bytes
    path: str

    @staticmethod
    def of_driver() -> MainModule | None:
        main = sys.modules.get("__main__")
        path = getattr(main, "__file__", None)
        if not path or not os.path.exists(path):
            return None
        source = Path(path).read_bytes()
        return MainModule(hashlib.sha256(source).hexdigest()[:32], source, str(path))


def _main_qualname(obj: Any) -> str | None:
    """The qualified name under which ``obj`` is reachable from ``__main__``, if it is."""
    if getattr(obj, "__module__", None) != "__main__":
        return None
    qualname = getattr(obj, "__qualname__", None)
    if not qualname or "<locals>" in qualname:
        return None
    target: Any = sys.modules.get("__main__")
    for part in qualname.split("."):
        target = getattr(target, part, None)
        if target is None:
            return None
    return qualname if target is obj else None


def _load_shipped_main(qualname: str) -> Any:
    module = sys.modules.get(SHIPPED_MAIN_MODULE)
    if module is None:
        raise WorkflowCodeError(
            f"{qualname} is defined in the driver's __main__, whose file was not shipped"
        )
    target: Any = module
    for part in qualname.split("."):
        target = getattr(target, part)
    return target


class _CodePickler(cloudpickle.Pickler):
    def __init__(self, file: io.BytesIO, ship_main: bool) -> None:
        super().__init__(file, protocol=5)
        self._ship_main = ship_main

    def reducer_override(self, obj: Any) -> Any:
        if self._ship_main and isinstance(obj, type | types.FunctionType):
            qualname = _main_qualname(obj)
            if qualname is not None:
                return _load_shipped_main, (qualname,)
        return super().reducer_override(obj)


def dumps_code(obj: Any, *, ship_main: bool) -> bytes:
    """Pickle workflow-side objects; ``__main__`` objects become references to the shipped file."""
    buffer = io.BytesIO()
    _CodePickler(buffer, ship_main).dump(obj)
    return buffer.getvalue()


def uses_main(classes: Iterable[Any]) -> bool:
    return any(getattr(c, "__module__", None) == "__main__" for c in classes)


_main_lock = threading.Lock()
_loaded_main_digest: str | None = None


def ensure_main_loaded(digest: str, source: bytes, path: str) -> None:
    """Load a shipped ``__main__`` once per process under ``SHIPPED_MAIN_MODULE``."""
    global _loaded_main_digest
    with _main_lock:
        if _loaded_main_digest == digest:
            return
        if _loaded_main_digest is not None:
            raise WorkflowCodeError(
                "a shard serves one driver's __main__ at a time; another driver's script was "
                "already loaded here (give each driver its own runner and shards)"
            )
        module = types.ModuleType(SHIPPED_MAIN_MODULE)
        module.__file__ = path
        sys.modules[SHIPPED_MAIN_MODULE] = module
        try:
            code = compile(source, path, "exec")
            exec(code, module.__dict__)
        except BaseException as err:
            del sys.modules[SHIPPED_MAIN_MODULE]
            raise WorkflowCodeError(
                f"loading the driver's script {path} in the shard failed: {err!r}"
            ) from err
        _loaded_main_digest = digest


# --- runtime environments ------------------------------------------------------------------------

_INSTALLED_ROOTS = {
    os.path.realpath(p)
    for p in {sysconfig.get_paths()["purelib"], sysconfig.get_paths()["platlib"], sys.prefix}
}


def _is_installed(path: str) -> bool:
    real = os.path.realpath(path)
    return any(real.startswith(root + os.sep) for root in _INSTALLED_ROOTS) or real.startswith(
        os.path.realpath(sys.base_prefix) + os.sep
    )


_NEVER_SHIPPED = {"temporay", "temporalio", "ray", "__main__", "builtins"}
"""Packages every node must have installed; shipping a copy could shadow the installed one."""


def _root_of(module_name: str) -> str | None:
    top = module_name.split(".", 1)[0]
    if top in _NEVER_SHIPPED or top in sys.stdlib_module_names:
        return None
    module = sys.modules.get(top)
    if module is not None:
        paths = list(getattr(module, "__path__", []) or [])
        location = paths[0] if paths else getattr(module, "__file__", None)
    else:
        spec = importlib.util.find_spec(top)
        if spec is None or spec.origin in (None, "built-in", "frozen"):
            return None
        paths = list(spec.submodule_search_locations or [])
        location = paths[0] if paths else spec.origin
    if not location or not os.path.exists(location) or _is_installed(location):
        return None
    return location


def source_roots_for(objects: Iterable[Any]) -> list[str]:
    """Top-level packages (or single-module files) holding these objects' code that are not
    installed in the environment: what a shard on another node would fail to import."""
    roots: dict[str, None] = {}
    for obj in objects:
        module_name = getattr(obj, "__module__", None)
        if module_name:
            root = _root_of(module_name)
            if root is not None:
                roots[root] = None
    return list(roots)


def loaded_source_roots() -> list[str]:
    """Roots of every user module imported in this process so far (not installed, not ours)."""
    roots: dict[str, None] = {}
    for name in list(sys.modules):
        if "." in name:
            continue
        root = _root_of(name)
        if root is not None:
            roots[root] = None
    return list(roots)


def runtime_env_for(objects: Iterable[Any], user_env: dict[str, Any] | None) -> dict[str, Any]:
    """The runtime environment for shards: the user's, plus ``py_modules`` for every
    non-installed package holding workflow code or already imported by this process (so that
    runners started before their Worker is built still ship it), unless the user set
    ``working_dir`` or ``py_modules`` (then they decide what ships)."""
    env = dict(user_env or {})
    if "py_modules" in env or "working_dir" in env:
        if not env.get("py_modules"):
            env.pop("py_modules", None)  # an explicit [] means "ship nothing"
        return env
    roots = dict.fromkeys([*source_roots_for(objects), *loaded_source_roots()])
    if roots:
        env["py_modules"] = list(roots)
    return env


def upload_local_paths(env: dict[str, Any]) -> dict[str, Any]:
    """Ray accepts local ``py_modules``/``working_dir`` paths only in ``ray.init``; for an
    actor's own runtime environment they must be uploaded first and named by URI. This does the
    upload (content-addressed in the GCS, so repeated calls are cheap) as ``ray.init`` would."""
    if not any(k in env for k in ("py_modules", "working_dir")):
        return env
    import ray
    from ray._private.runtime_env.py_modules import upload_py_modules_if_needed
    from ray._private.runtime_env.working_dir import upload_working_dir_if_needed

    node = getattr(ray._private.worker.global_worker, "node", None)
    scratch_dir = node.get_runtime_env_dir_path() if node is not None else None
    env = upload_py_modules_if_needed(dict(env), include_gitignore=True, scratch_dir=scratch_dir)
    env = upload_working_dir_if_needed(env, include_gitignore=True, scratch_dir=scratch_dir)
    env.pop("excludes", None)
    return env
