"""Bounces and complaints read from real-format reports: RFC 3464 DSNs (Postfix, Gmail,
Exchange Online), plain-text bounces (Exim, qmail), ARF complaints (with and without the
recipient), each tied to the Message-ID of the message it is about."""

from __future__ import annotations

from email.message import EmailMessage
from pathlib import Path

import pytest

from gateway.feedback.reports import BounceKind, Complaint, kind_of, parse

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "feedback"


@pytest.mark.parametrize("name, recipient, status, kind, source, message_id", [
    ("postfix-user-unknown", "lukas.weber@nordlicht.example", "5.1.1", BounceKind.HARD, "dsn",
     "<OCG.7F3A2B9C1D.0@acme.example>"),
    ("gmail-no-such-user", "sophie.dubois@gmail.example", "5.1.1", BounceKind.HARD, "dsn",
     "<OCG.11AA22BB33.0@acme.example>"),
    ("exchange-online-policy", "pablo.lopez@datosclaros.example", "5.7.1", BounceKind.POLICY,
     "dsn", "<OCG.44CC55DD66.0@acme.example>"),
    ("postfix-delayed", "giulia.rossi@fratelliconti.example", "4.2.2", BounceKind.SOFT, "dsn",
     "<OCG.77EE88FF99.0@acme.example>"),
    ("exim-text", "joana.santos@lusotec.example", "5.1.1", BounceKind.HARD, "text",
     "<OCG.AB12CD34EF.0@acme.example>"),
    ("qmail-text", "femke.jansen@vandijk.example", "5.1.1", BounceKind.HARD, "text",
     "<OCG.CD56EF78AB.0@acme.example>"),
])
def test_bounces(name, recipient, status, kind, source, message_id):
    feedback = parse((FIXTURES / f"{name}.eml").read_bytes())
    assert [(b.recipient, b.status, b.kind, b.source) for b in feedback.bounces] == [
        (recipient, status, kind, source)]
    assert feedback.complaint is None
    assert feedback.message_ids == [message_id]


def test_complaints_with_and_without_the_recipient():
    named = parse((FIXTURES / "arf-abuse.eml").read_bytes())
    assert named.complaint == Complaint("oliver.taylor@brightpath.example", "abuse")
    assert named.message_ids == ["<OCG.EF90AB12CD.0@acme.example>"] and not named.bounces
    redacted = parse((FIXTURES / "arf-redacted.eml").read_bytes())
    assert redacted.complaint == Complaint(None, "abuse")  # only the Message-ID tells whom
    assert redacted.message_ids == ["<OCG.0A1B2C3D4E.0@acme.example>"]


@pytest.mark.parametrize("status, kind", [
    ("5.1.1", BounceKind.HARD), ("5.1.10", BounceKind.HARD), ("4.4.1", BounceKind.SOFT),
    ("5.2.2", BounceKind.SOFT), ("5.7.26", BounceKind.POLICY), ("5.4.4", BounceKind.OTHER),
])
def test_what_a_status_code_means(status, kind):
    assert kind_of(status) is kind


def test_a_delivered_or_relayed_report_bounces_nobody():
    raw = (FIXTURES / "postfix-user-unknown.eml").read_bytes().replace(
        b"Action: failed", b"Action: relayed")
    assert parse(raw).empty


def message(sender: str, subject: str, text: str) -> bytes:
    msg = EmailMessage()
    msg["From"], msg["To"], msg["Subject"] = sender, "sales@acme.example", subject
    msg.set_content(text)
    return msg.as_bytes()


def test_a_person_quoting_an_error_is_no_bounce():
    text = "Your last mail got this: 550 5.1.1 <bob@nordlicht.example> user unknown?"
    assert parse(message("Anna <anna@nordlicht.example>", "Re: Undeliverable", text)).empty
    assert parse(message("Anna <anna@nordlicht.example>", "Re: hello", "Thanks!")).empty


def test_a_text_bounce_names_only_the_failed_address_not_the_returned_copy():
    text = ("The following address(es) failed:\n\n  bob@nordlicht.example\n"
            "    550 5.1.1 User unknown\n\n"
            "------ This is a copy of the message, including all the headers. ------\n\n"
            "To: carol@nordlicht.example\nMessage-ID: <OCG.1.0@acme.example>\n\n"
            "carol@nordlicht.example\n550 5.1.1 looks like a code too\n")
    feedback = parse(message("Mailer-Daemon@mx.example", "Mail delivery failed", text))
    assert [b.recipient for b in feedback.bounces] == ["bob@nordlicht.example"]
    assert feedback.message_ids == ["<OCG.1.0@acme.example>"]
