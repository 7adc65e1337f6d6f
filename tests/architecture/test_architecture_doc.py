"""docs/architecture.md names real code: every ``module:QualifiedName`` it writes resolves.

The page writes each code name on the activation path and in the glossary as
`` `temporay.some.module:QualName` `` (or ``QualName.attribute``); names of the SDK it relies on
are written the same way (``temporalio.worker._workflow:_RunningWorkflow.activate``). This test
imports each module and follows the attribute path, so a rename the page does not follow fails
here with the list of names that no longer resolve. Importing a module imports Ray where the
module does; no cluster is started.

It also checks the glossary has the terms the rest of the docs rely on, that the repository
paths the user-facing docs mention exist, and that the ``temporay`` façade lists its names.
"""

from __future__ import annotations

import importlib
import re
from typing import Any

from tests.architecture.import_graph import ROOT

DOC = ROOT / "docs" / "architecture.md"

# `temporay.cluster.runner:RayWorkflowRunner.place`, `temporay:RayPlugin`, also bare inside the
# diagram's fenced block.
REFERENCE = re.compile(
    r"(?<![\w.])((?:temporay|temporalio)(?:\.\w+)*):([A-Za-z_]\w*(?:\.[A-Za-z_]\w*)*)"
)

MIN_REFERENCES = 40
"""The page names well over this many; fewer means the pattern stopped matching it."""

GLOSSARY_TERMS = [
    "activation",
    "completion",
    "run",
    "run key",
    "router",
    "shard",
    "hop",
    "template",
    "prepared run",
    "engine",
    "isolation",
    "shim",
    "registry",
    "dedicated run",
    "Worker actor",
]


def references(text: str) -> list[tuple[str, str]]:
    """Every (module, attribute path) the text names, once each, in order."""
    seen: dict[tuple[str, str], None] = {}
    for match in REFERENCE.finditer(text):
        seen.setdefault((match.group(1), match.group(2).rstrip(".")), None)
    return list(seen)


def resolve(module_name: str, path: str) -> Any:
    obj: Any = importlib.import_module(module_name)
    for part in path.split("."):
        # A Ray actor class answers for the class it wraps.
        obj = getattr(obj, "__ray_actor_class__", obj)
        obj = getattr(obj, part)
    return obj


def test_every_code_name_in_the_architecture_doc_resolves() -> None:
    found = references(DOC.read_text())
    assert len(found) >= MIN_REFERENCES, (
        f"only {len(found)} `module:Name` references found in {DOC.relative_to(ROOT)}"
    )
    broken = []
    for module_name, path in found:
        try:
            resolve(module_name, path)
        except Exception as err:
            broken.append(f"{module_name}:{path} ({type(err).__name__}: {err})")
    assert not broken, (
        f"names in {DOC.relative_to(ROOT)} that do not resolve (rename them there too):\n"
        + "\n".join(broken)
    )


def test_the_reference_pattern_can_fail() -> None:
    text = "`temporay.cluster.runner:RayWorkflowRunner.no_such_method` and `temporay.nope:X`"
    found = references(text)
    assert found == [
        ("temporay.cluster.runner", "RayWorkflowRunner.no_such_method"),
        ("temporay.nope", "X"),
    ]
    for module_name, path in found:
        try:
            resolve(module_name, path)
        except (AttributeError, ImportError):
            continue
        raise AssertionError(f"{module_name}:{path} resolved")


def test_the_glossary_defines_its_terms() -> None:
    text = DOC.read_text()
    assert "\n## 5. Glossary\n" in text
    glossary = text.split("\n## 5. Glossary\n", 1)[1].split("\n## ", 1)[0]
    defined = set(re.findall(r"^- \*\*(.+?)\*\*", glossary, flags=re.MULTILINE))
    missing = [term for term in GLOSSARY_TERMS if term not in defined]
    assert not missing, f"terms missing from the glossary: {missing}"


# Backticked repository paths: `docs/design-notes.md`, `runtime/local_runner.py`, `deploy/`.
REPO_PATH = re.compile(r"`((?:[\w.-]+/)+[\w.*-]*)`")
TOP_LEVEL = {p.name for p in ROOT.iterdir()}


def test_paths_in_the_user_docs_exist() -> None:
    missing = []
    # docs/benchmarks.md is a record of past runs, kept as written, so it is left out.
    for doc in (ROOT / "README.md", DOC):
        for number, line in enumerate(doc.read_text().splitlines(), 1):
            for path in REPO_PATH.findall(line):
                if path.split("/", 1)[0] not in TOP_LEVEL:
                    continue  # not a path in this repository (a site-packages path, say)
                if not list(ROOT.glob(path.rstrip("/"))):
                    missing.append(f"{doc.relative_to(ROOT)}:{number}: {path}")
    assert not missing, "paths that do not exist:\n" + "\n".join(missing)


def test_the_facade_lists_every_public_name() -> None:
    import temporay

    public = set(temporay.__all__)
    assert set(dir(temporay)) >= public
    for name in public:
        assert getattr(temporay, name) is not None, name
    source = (ROOT / "temporay" / "__init__.py").read_text()
    type_checked = set(re.findall(r"^\s+from temporay\S* import (\w+)", source, flags=re.MULTILINE))
    assert type_checked == public - {"__version__"}, "keep the TYPE_CHECKING block in sync"
