"""The record-of-processing table in docs/retention.md is the schedule the code enforces."""

from pathlib import Path

from gateway.lifecycle.retention import SCHEDULE, schedule_markdown
from tests.support.config import load


def test_the_documented_table_is_the_schedule_with_default_values():
    doc = (Path(__file__).parents[2] / "docs/retention.md").read_text()
    assert schedule_markdown(load()) in doc


def test_every_store_the_issue_names_has_a_row():
    names = " ".join(s.name.lower() + " " + s.where.lower() for s in SCHEDULE)
    for store in ("held", "refused", "queued", "opens", "events", "webhook outbox",
                  "unsubscribe", "message-ids", "expired suppression", "audit", "logs"):
        assert store in names, store


def test_the_erasure_matrix_names_every_table_of_the_schema():
    import re

    from gateway.store.schema import metadata

    doc = (Path(__file__).parents[2] / "docs/retention.md").read_text()
    matrix = doc.split("## Erasure matrix", 1)[1].split("\n## ", 1)[0]
    named = {name for row in matrix.splitlines() if row.startswith("| `")
             for name in re.findall(r"`(\w+)`", row.split("|")[1])}
    missing = set(metadata.tables) - named
    assert not missing, f"add these tables to the erasure matrix: {sorted(missing)}"
    assert not named - set(metadata.tables), "the matrix names a table that does not exist"
