"""docs/smtp-replies.md is `make docs`'s output for the reply catalogue as it is now, and
lists every reply the catalogue defines."""

from __future__ import annotations

from pathlib import Path

from gateway.protocol import replies
from gateway.protocol.reference import markdown

REFERENCE = Path(__file__).parents[2] / "docs/smtp-replies.md"


def test_the_reply_reference_is_generated_from_the_catalogue():
    assert REFERENCE.read_text() == markdown(), "docs/smtp-replies.md is stale: run 'make docs'"


def test_every_reply_of_the_catalogue_is_listed():
    text = markdown()
    names = [n for n, v in vars(replies).items() if isinstance(v, replies.Reply)]
    assert len(names) > 60
    assert all(f"| `{name}` |" in text for name in names)
