"""Every package of the source tree is installed: pyproject lists packages one by one (the
top-level folders map onto ``temporay.*``), so a new subpackage left out of the list would be
missing from a user's install while the repository's own runs still find it."""

from __future__ import annotations

import tomllib

from tests.architecture.import_graph import ROOT, source_modules


def test_every_source_package_is_in_pyproject() -> None:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    listed = set(config["packages"])
    packages = {m.name for m in source_modules().values() if m.is_package}
    assert packages - listed == set(), "add these to [tool.setuptools] packages in pyproject.toml"
    assert listed - packages == set(), "pyproject lists packages that do not exist"
