"""The record-of-processing table in docs/retention.md is the schedule the code enforces."""

from pathlib import Path

from gateway.retention import SCHEDULE, schedule_markdown
from tests.test_config import load


def test_the_documented_table_is_the_schedule_with_default_values():
    doc = (Path(__file__).parents[1] / "docs/retention.md").read_text()
    assert schedule_markdown(load()) in doc


def test_every_store_the_issue_names_has_a_row():
    names = " ".join(s.name.lower() + " " + s.where.lower() for s in SCHEDULE)
    for store in ("held", "refused", "queued", "opens", "events", "webhook outbox",
                  "unsubscribe", "message-ids", "expired suppression", "audit", "logs"):
        assert store in names, store
