"""`gateway queue` and `gateway trace` against a running gateway's database."""

from __future__ import annotations

from gateway.errors import Conflict, NotFound
from tests.conftest import Harness
from tests.support import messages
from tests.support.cli import gw


async def test_operator_finds_retries_and_deletes_a_deferred_copy(harness: Harness):
    harness.sink.faults.rcpt["busy@example.org"] = "451 4.2.1 Mailbox busy"
    await harness.send(messages.simple(), ["ok@example.org", "busy@example.org"])
    (copy,) = await harness.gateway.queue.listing()
    await harness.gateway.audit.stop()  # nothing waits; rows are committed before each 250

    listed = await gw(harness, "queue", "list")
    assert listed.returncode == 0, listed.stderr
    assert f"{copy.id}\t{copy.queue_id}\tcopy\tdeferred\t0\t" in listed.stdout
    assert "sales@acme.example -> busy@example.org\t451 4.2.1 Upstream refused: Mailbox busy" \
        in listed.stdout

    by_queue_id = await gw(harness, "trace", copy.queue_id, "--recipient", "ok@example.org")
    assert by_queue_id.returncode == 0, by_queue_id.stderr
    out = by_queue_id.stdout
    assert f"queue id {copy.queue_id}" in out
    assert "message.received" in out and "checks sender-allowed" not in out  # DATA checks
    assert ("checks parsed=pass, recipient-statement=pass, header-from=pass, "
            "reputation-breaker-message=pass, "
            "identity-alignment=pass, "
            "submission-headers=pass, unsubscribe-footer=pass, sensitive-data=pass, "
            "misleading-subject=pass") in out
    assert "copy.delivered ok@example.org" in out
    assert "copy.deferred busy@example.org" in out

    by_message_id = await gw(harness, "trace", "<m1@acme.example>")
    assert f"queue id {copy.queue_id}" in by_message_id.stdout
    unknown = await gw(harness, "trace", "nothing-like-this")
    assert unknown.returncode == NotFound.exit_code

    deleted = await gw(harness, "queue", "delete", str(copy.id), "--reason", "asked by customer")
    assert deleted.returncode == 0, deleted.stderr
    after = (await gw(harness, "queue", "list")).stdout
    assert "\tdsn\tdeferred\t" in after and "-> sales@acme.example" in after
    again = await gw(harness, "queue", "retry", str(copy.id))
    assert again.returncode == Conflict.exit_code
    assert "not waiting for a retry" in again.stderr
