"""Every differential scenario, live under both engines, replayed through both engines.

``pytest tests/differential -k <scenario>`` runs one (add ``-m slow`` for its variants, or
``-m ''`` for everything); see ``harness.py`` for what is compared.
"""

from __future__ import annotations

import pytest
from temporalio.client import Client

from .harness import Scenario, check_scenario
from .scenarios import ALL_SCENARIOS, BASE_SCENARIOS

# The base corpus runs by default; its variants (flag 2, no cache, debug mode) triple the time and
# run in the slow pass.
_PARAMS = [
    pytest.param(s, id=s.name, marks=() if s in BASE_SCENARIOS else (pytest.mark.slow,))
    for s in ALL_SCENARIOS
]


@pytest.mark.parametrize("scenario", _PARAMS)
async def test_differential(client: Client, scenario: Scenario) -> None:
    await check_scenario(client, scenario)
