"""Issue 30's run, small: two real nodes on PostgreSQL, recipients across the table's
countries, kinds and signals (records imported through the CLI, statements in the message,
CASL consents in and past their period), a stricter table published half way. Nothing goes
contrary to the issue's table (written out in the bench, not taken from the gateway), both
nodes take the new version, and the notice is in each first copy owed it and in no later
one. The full-size figures come from `python bench/lawful_run.py` (10,000 messages)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("database", ["postgres"], indirect=True)
def test_a_run_over_two_nodes_sends_nothing_contrary_to_the_table(database):
    done = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "lawful_run.py"), "--messages", "240",
         "--people", "100", "--sessions", "4", "--schema", database.schema],
        capture_output=True, text=True, timeout=300, cwd=ROOT)
    out = done.stdout
    assert done.returncode == 0, out[-3000:] + done.stderr[-3000:]
    assert "sends contrary to the table: 0" in out
    assert "node-a refused under v2" in out and "node-b refused under v2" in out
    assert "before one with it was answered: 0" in out and "begun after that: 0" in out
    for source in ("record", "header", "cctld", "tenant-default"):
        assert f" {source} " in out  # every signal source decided some sends
