"""The fast sensitive-data finder says exactly what the slow one (tests/support/
sensitive_reference.py, the implementation before issue 25) says: over generated text rich
in the shapes it looks for, and over real corpora (the HTML fixtures, the feedback and
reply corpora, CPython's email test messages)."""

from __future__ import annotations

import json
from pathlib import Path

from hypothesis import example, given, settings
from hypothesis import strategies as st

from gateway.policy import sensitive
from tests.support import sensitive_reference as reference

FIXTURES = Path(__file__).parents[1] / "fixtures"
CPYTHON_EMAIL = Path("/usr/lib/python3.11/test/test_email/data")

# Things the finder looks for, near misses, and what surrounds them in real mail.
FRAGMENTS = [
    "4111 1111 1111 1111", "4111-1111-1111-1111", "4111111111111111", "5500 0000 0000 0004",
    "378282246310005", "6011111111111117", "4111 1111 1111 1112", "4 1 1 1 1 1 1 1 1 1 1 1 1",
    "123-45-6789", "123 45 6789", "000-12-3456", "666-12-3456", "900-12-3456", "123-45-67890",
    "DE89 3704 0044 0532 0130 00", "GB82WEST12345698765432", "DE89370400440532013001",
    "NO9386011117947", "XDE89370400440532013000", "AKIAIOSFODNN7EXAMPLE", "ASIAABCDEFGHIJKLMNOP",
    "ghp_" + "a" * 36, "gho_" + "B1" * 18, "github_pat_" + "x_" * 31, "xoxb-1234567890-abc",
    "sk_live_" + "4eC39HqLyjWDarjtT1zdp7dc", "rk_live_" + "z" * 24,
    "AIza" + "SyA-1234567890abcdefghijklmnopqrstu", "-----BEGIN RSA PRIVATE KEY-----",
    "-----BEGIN PRIVATE KEY-----", "https://track.example.net/c/4111111111111111?u=1",
    "http://x.example/123-45-6789", "ftp://files.example/DE89370400440532013000",
    "www.example.com/4111111111111111", "WwW.Example.com/a", "HTTPS://X.EXAMPLE/ghp_" + "a" * 36,
    "httpſ://x/4111111111111111", " ", "  ", "-", "\n", "\u00a0", "—", "é", "_", ".", ":",
    "://", "www", "0", "12", "2024", "555 0100", "Order #12345678901", "call +1 415 555 0100",
]
TEXT = st.lists(st.one_of(st.sampled_from(FRAGMENTS),
                          st.text(alphabet=st.characters(codec="utf-8", exclude_categories=(
                              "Nd", "Cs")) | st.sampled_from("0123456789 -"), max_size=12)),
                max_size=30).map("".join)


@settings(max_examples=3000, deadline=None)
@given(TEXT)
@example("DE89 3704 0044 0532 0130 00 DE89 3704 0044 0532 0130 00")  # one greedy match
def test_generated_text_gets_the_same_findings(text: str):
    assert sensitive.find(text) == reference.find(text), ascii(text)


def corpus() -> list[tuple[str, str]]:
    texts = []
    for path in sorted((FIXTURES / "html").glob("*.html")):
        texts.append((path.name, path.read_text(errors="replace")))
    for path in sorted((FIXTURES / "feedback").rglob("*")):
        if path.is_file():
            texts.append((path.name, path.read_bytes().decode("utf-8", "replace")))
    for line in (FIXTURES / "replies" / "corpus.jsonl").read_text().splitlines()[:2000]:
        row = json.loads(line)
        texts.append((str(row.get("id")), json.dumps(row, ensure_ascii=False)))
    for path in sorted(CPYTHON_EMAIL.glob("*")):
        texts.append((path.name, path.read_bytes().decode("utf-8", "replace")))
    return texts


def test_real_corpora_get_the_same_findings():
    texts = corpus()
    assert len(list(CPYTHON_EMAIL.glob("*"))) > 50, (
        "CPython's email test corpus is missing: scripts/install-system-packages.sh")
    assert len(texts) > 200
    different = [name for name, text in texts if sensitive.find(text) != reference.find(text)]
    assert different == []


def test_every_kind_is_still_found():
    text = " ".join(FRAGMENTS)
    assert sorted(sensitive.find(text)) == sorted([
        "payment card number", "US social security number", "IBAN", "aws-access-key",
        "github-token", "slack-token", "stripe-live-key", "google-api-key", "private-key"])


def corpus_messages() -> list[tuple[str, bytes]]:
    """Whole messages, with CRLF line endings as DATA delivers them."""
    found = []
    for path in sorted(CPYTHON_EMAIL.glob("*")) + sorted((FIXTURES / "feedback").rglob("*.eml")):
        raw = path.read_bytes().replace(b"\r\n", b"\n").replace(b"\r", b"\n")
        found.append((path.name, raw.replace(b"\n", b"\r\n")))
    return found


def test_a_field_read_alone_is_the_field_the_full_parse_gives():
    import email.policy
    from email.parser import BytesParser

    from gateway.policy.message import Message

    modern = BytesParser(policy=email.policy.SMTP)

    different = []
    for name, raw in corpus_messages():
        message = Message(raw)
        for field in ("subject", "from", "to", "content-type", "x-nonexistent"):
            alone, parsed = message.header(field), modern.parsebytes(raw).get(field)
            if (alone is None) != (parsed is None) or str(alone or "") != str(parsed or ""):
                different.append((name, field))
    assert different == []


def test_the_text_read_once_is_the_text_a_fresh_parse_reads_after_edits():
    """Adding a Message-ID and a Date, removing a Bcc (what SubmissionHeaders does) keeps
    the cached text; a fresh parse of the edited bytes reads the same."""
    from gateway.policy.message import Message
    from gateway.policy.readable import text_parts

    different, tried = [], 0
    for name, raw in corpus_messages():
        message = Message(raw)
        if message.malformed_header:  # refused by the `parsed` check before any edit
            continue
        tried += 1
        before = text_parts(message)
        message.prepend("Message-ID", "<x@example.org>")
        message.append("Date", "Sat, 05 Dec 2026 10:00:00 +0000")
        message.remove("bcc")
        if text_parts(message) != text_parts(Message(message.as_bytes())) or \
                text_parts(message) != before:
            different.append(name)
    assert different == []


def test_the_text_the_checks_read_is_the_text_the_full_parse_gave():
    """One parse (compat32, shared with the `parsed` check) decodes each text part as the
    modern parse's `get_content()` did, over the HTML fixtures wrapped as messages and the
    corpora; the footer matrix's messages are tried in tests/outbound."""
    from gateway.policy.message import Message
    from gateway.policy.readable import decoded_text_parts
    from tests.support import readable_reference

    messages = corpus_messages()
    for path in sorted((FIXTURES / "html").glob("*.html")):
        html = path.read_bytes().replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")
        messages.append((path.name, b"From: a@acme.example\r\nMIME-Version: 1.0\r\n"
                         b"Content-Type: text/html; charset=utf-8\r\n\r\n" + html))
    # a malformed header block is refused by the `parsed` check before any content check
    messages = [(name, raw) for name, raw in messages if not Message(raw).malformed_header]
    different = [name for name, raw in messages
                 if decoded_text_parts(Message(raw)) != list(
                     readable_reference.decoded_text_parts(raw))]
    assert len(messages) > 60 and different == []


def test_the_structure_defects_are_the_full_parses():
    """The `parsed` check looks at the compat32 parse: the same parser defects, part by
    part, as the modern parse it read before."""
    import email.policy
    from email.parser import BytesParser

    from gateway.policy.message import Message

    modern = BytesParser(policy=email.policy.SMTP)

    def defects(root) -> list[list[str]]:
        return [sorted(type(d).__name__ for d in part.defects) for part in root.walk()]

    different = [name for name, raw in corpus_messages()
                 if defects(Message(raw).structure()) != defects(modern.parsebytes(raw))]
    assert different == []
