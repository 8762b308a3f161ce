"""Nothing outside moves while the code inside is remodelled (issue 24): the commands and
their options, the configuration keys, the metric names and labels and the HTTP routes are
the ones recorded in tests/fixtures/surface.json before the first move. A deliberate change
re-records it (`python -m tests.support.surface > tests/fixtures/surface.json`) in the
commit that makes it, where a reviewer sees the difference."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.conftest import Harness
from tests.support.surface import surface

RECORDED = Path(__file__).parent / "fixtures/surface.json"
pytestmark = pytest.mark.parametrize("database", ["sqlite"], indirect=True)


async def test_the_outside_surface_is_the_recorded_one(harness: Harness):
    now = json.loads(json.dumps(surface(harness.gateway.web), sort_keys=True))
    recorded = json.loads(RECORDED.read_text())
    for part in ("cli", "config", "metrics", "http"):
        assert now[part] == recorded[part], part
