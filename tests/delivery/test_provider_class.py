"""The provider class each copy's audit row records at send time (directory/providers.py):
the consumer domains of each provider, their country variants, and nothing guessed."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from gateway.directory.providers import provider_class
from gateway.store.schema import audit_events
from tests.support import messages


@pytest.mark.parametrize("address, expected", [
    ("a@gmail.com", "google"), ("a@GoogleMail.com", "google"),
    ("a@outlook.com", "microsoft"), ("a@hotmail.co.uk", "microsoft"),
    ("a@live.fr", "microsoft"), ("a@yahoo.co.jp", "yahoo"), ("a@aol.de", "yahoo"),
    ("a@icloud.com", "apple"), ("a@company.com", "other"),
    ("a@hotmail.example.com", "other"), ("a@outlook.company.com", "other"),
    ("a@gmail.com.evil.example", "other"), ("a@yahoo.com.au", "yahoo"),
])
def test_the_class_comes_from_the_domain_alone(address, expected):
    assert provider_class(address) == expected


async def test_each_copy_row_records_its_provider_class(harness):
    h = harness
    people = ["ann@gmail.com", "bo@hotmail.co.uk", "cy@acme-client.example"]
    assert await h.send(messages.simple(), people) == {}
    async with h.gateway.engine.connect() as conn:
        rows = {r.recipient_digest: r.detail.get("provider") for r in await conn.execute(
            sa.select(audit_events).where(audit_events.c.event == "copy.delivered"))}
    assert rows == {h.gateway.digest(p): c for p, c in zip(
        people, ["google", "microsoft", "other"], strict=True)}
