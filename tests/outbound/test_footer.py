"""The footer matrix: transfer encodings x charsets x MIME structures. The footer lands in
every text alternative (inside <body> for HTML), decodes in the part's charset, and every
byte of every other part stays as it was."""

from __future__ import annotations

import base64
import binascii
import email
import email.policy
import itertools

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from gateway.outbound import footer
from gateway.outbound.footer import DEFAULT_HTML, DEFAULT_TEXT, PLACEHOLDER, FooterPlan, render
from gateway.outbound.mime import body_parts

URL = "https://links.example/u/abcdefghijklmnopqrstuvwxyz234567"
POSTAL = "Acmé GmbH, Königstraße 1, 70173 Stuttgart"
TEXTS = {
    "utf-8": "Grüße aus Tokyo, 東京 €\r\nSecond line.\r\n",
    "iso-8859-1": "Grüße, café crème\r\nSecond line.\r\n",
    "shift_jis": "東京からこんにちは\r\n二行目です。\r\n",
}
ASCII_TEXT = "Hello there\r\nSecond line.\r\n"
ATTACHMENT = (b"Content-Type: application/pdf; name=\"a.pdf\"\r\n"
              b"Content-Disposition: attachment; filename=\"a.pdf\"\r\n"
              b"Content-Transfer-Encoding: base64\r\n\r\n"
              + base64.encodebytes(bytes(range(256)) * 4).replace(b"\n", b"\r\n").rstrip())
TEXT_ATTACHMENT = (b"Content-Type: text/plain; charset=us-ascii\r\n"
                   b"Content-Disposition: attachment; filename=\"notes.txt\"\r\n\r\n"
                   b"Not the body: no footer here.")
IMAGE = (b"Content-Type: image/png\r\nContent-ID: <logo@x>\r\n"
         b"Content-Transfer-Encoding: base64\r\n\r\niVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAf")


def encode(text: str, charset: str, cte: str) -> tuple[bytes, str]:
    raw = text.encode(charset)
    if cte == "base64":
        return base64.encodebytes(raw).replace(b"\n", b"\r\n").rstrip(), text
    if cte == "quoted-printable":
        return binascii.b2a_qp(raw, istext=True).replace(b"\n", b"\r\n").replace(
            b"\r\r\n", b"\r\n"), text
    return raw.rstrip(b"\r\n"), text.rstrip("\r\n")


def text_part(subtype: str, charset: str, cte: str) -> tuple[bytes, str]:
    text = ASCII_TEXT if cte == "7bit" else TEXTS[charset]
    if subtype == "html":
        text = f"<html><body><p>{text}</p></body></html>\r\n"
    body, shown = encode(text, charset, cte)
    head = (f"Content-Type: text/{subtype}; charset=\"{charset}\"\r\n"
            f"Content-Transfer-Encoding: {cte}\r\n\r\n").encode()
    return head + body, shown


def multipart(subtype: str, boundary: str, parts: list[bytes]) -> bytes:
    out = f"Content-Type: multipart/{subtype}; boundary=\"{boundary}\"\r\n\r\n".encode()
    out += b"This is a multi-part message in MIME format.\r\n"
    for p in parts:
        out += f"--{boundary}\r\n".encode() + p + b"\r\n"
    return out + f"--{boundary}--\r\n".encode()


def build(structure: str, charset: str, cte: str) -> tuple[bytes, list[str], list[bytes]]:
    """(message, texts that must survive, raw parts that must stay byte-identical)."""
    plain, plain_text = text_part("plain", charset, cte)
    html, html_text = text_part("html", charset, cte)
    alternative = multipart("alternative", "alt-1", [plain, html])
    untouched: list[bytes] = []
    if structure == "text-only":
        entity = plain
    elif structure == "alternative":
        entity = alternative
    elif structure == "mixed":
        entity = multipart("mixed", "mix-1", [alternative, ATTACHMENT, TEXT_ATTACHMENT])
        untouched = [ATTACHMENT, TEXT_ATTACHMENT]
    else:
        entity = multipart("related", "rel-1", [html, IMAGE])
        untouched = [IMAGE]
    head = b"From: Sales <sales@acme.example>\r\nTo: a@example.org\r\nSubject: Hi\r\n" \
           b"MIME-Version: 1.0\r\n"
    texts = [plain_text] if structure != "related" else []
    texts += [html_text.split("<p>")[1].split("</p>")[0]] if structure != "text-only" else []
    return head + entity, texts, untouched


def apply_footer(message: bytes) -> bytes:
    head_end = message.index(b"\r\n\r\n") + 2
    values = {"unsubscribe_url": PLACEHOLDER, "postal_address": POSTAL, "sender_name": "Acmé"}
    plan = FooterPlan(message, head_end, body_parts(message, head_end),
                      render(DEFAULT_TEXT, values, html=False),
                      render(DEFAULT_HTML, values, html=True))
    return plan.render(URL)


MATRIX = list(itertools.product(
    ["7bit", "8bit", "quoted-printable", "base64"], ["utf-8", "iso-8859-1", "shift_jis"],
    ["text-only", "alternative", "mixed", "related"]))


@pytest.mark.parametrize("cte, charset, structure", MATRIX,
                         ids=["-".join(m) for m in MATRIX])
def test_footer_matrix(cte: str, charset: str, structure: str):
    original, texts, untouched = build(structure, charset, cte)
    out = apply_footer(original)
    assert all(len(line) <= 998 for line in out.split(b"\r\n"))
    for raw in untouched:
        assert raw in out  # byte for byte, header fields included
    parsed = email.message_from_bytes(out, policy=email.policy.default)
    bodies = [p for p in parsed.walk()
              if p.get_content_type() in ("text/plain", "text/html") and not p.is_attachment()]
    assert bodies
    seen = ""
    for part in bodies:
        content = part.get_content()
        assert URL in content, part.get_content_type()
        assert POSTAL in content or "K&#246;nigstra&#223;e" in content \
            or "Königstraße" in content.replace("&#246;", "ö").replace("&#223;", "ß")
        if part.get_content_type() == "text/html":
            assert content.index(URL) < content.lower().rindex("</body>")
            assert f'<a href="{URL}">' in content
        seen += content
        cte_out = part.get("content-transfer-encoding", "7bit").lower()
        if cte_out == "7bit":
            assert part.get_payload(decode=True).isascii()
    for text in texts:
        assert text.replace("\r\n", "\n") in seen.replace("\r\n", "\n")
    for part in parsed.walk():
        if part.is_attachment() and part.get_content_type() == "text/plain":
            assert URL not in part.get_content()


def test_signed_and_encrypted_messages_keep_their_body():
    signed = (b"From: a@acme.example\r\nMIME-Version: 1.0\r\nContent-Type: multipart/signed; "
              b"protocol=\"application/pkcs7-signature\"; micalg=sha-256; boundary=s1\r\n\r\n"
              b"--s1\r\nContent-Type: text/plain\r\n\r\nSigned text.\r\n--s1\r\n"
              b"Content-Type: application/pkcs7-signature\r\n\r\nMIAGCSqG\r\n--s1--\r\n")
    encrypted = (b"From: a@acme.example\r\nMIME-Version: 1.0\r\nContent-Type: "
                 b"application/pkcs7-mime; smime-type=enveloped-data\r\n"
                 b"Content-Transfer-Encoding: base64\r\n\r\nMIAGCSqGSIb3DQEHA6CAMIACAQA=\r\n")
    nested = (b"From: a@acme.example\r\nMIME-Version: 1.0\r\n"
              b"Content-Type: multipart/mixed; boundary=m\r\n\r\n--m\r\n"
              + signed.split(b"\r\n", 2)[2] + b"\r\n--m--\r\n")
    for message in (signed, encrypted, nested):
        assert apply_footer(message) == message


def test_a_top_level_7bit_part_that_gains_8bit_text_becomes_quoted_printable():
    message = b"From: a@acme.example\r\nSubject: x\r\n\r\nPlain ASCII body.\r\n"
    out = apply_footer(message)
    parsed = email.message_from_bytes(out, policy=email.policy.default)
    assert parsed["Content-Transfer-Encoding"] == "quoted-printable"
    assert parsed.get_content_charset() == "utf-8" and parsed["MIME-Version"] == "1.0"
    assert POSTAL in parsed.get_content() and "Plain ASCII body." in parsed.get_content()


def test_a_footer_the_charset_cannot_hold_makes_plain_text_utf8_and_html_entities():
    message = (b"From: a@acme.example\r\nMIME-Version: 1.0\r\n"
               b"Content-Type: multipart/alternative; boundary=b\r\n\r\n--b\r\n"
               b"Content-Type: text/plain; charset=iso-8859-1\r\n"
               b"Content-Transfer-Encoding: 8bit\r\n\r\ncaf\xe9\r\n--b\r\n"
               b"Content-Type: text/html; charset=iso-8859-1\r\n\r\n"
               b"<html><body>caf\xe9</body></html>\r\n--b--\r\n")
    values = {"unsubscribe_url": PLACEHOLDER, "postal_address": "東京都千代田区1-1",
              "sender_name": "x"}
    head_end = message.index(b"\r\n\r\n") + 2
    out = FooterPlan(message, head_end, body_parts(message, head_end),
                     render(DEFAULT_TEXT, values, html=False),
                     render(DEFAULT_HTML, values, html=True)).render(URL)
    plain, html = [p for p in email.message_from_bytes(out, policy=email.policy.default).walk()
                   if p.get_content_maintype() == "text"]
    assert plain.get_content_charset() == "utf-8"
    assert "café" in plain.get_content() and "東京都千代田区1-1" in plain.get_content()
    assert html.get_content_charset() == "iso-8859-1"
    assert "&#26481;&#20140;" in html.get_content() and "café" in html.get_content()


def test_template_values_are_escaped_in_html():
    values = {"unsubscribe_url": PLACEHOLDER, "postal_address": "<script>x</script>",
              "sender_name": "A & B"}
    html = render(DEFAULT_HTML, values, html=True)
    assert "<script>" not in html and "&lt;script&gt;" in html and "A &amp; B" in html


def test_a_tenant_template_cannot_reach_python():
    from gateway.errors import InvalidValue
    from gateway.outbound.footer import check_template

    with pytest.raises(InvalidValue):
        check_template("{{ unsubscribe_url.__class__.__mro__[1].__subclasses__() }}", html=False)
    with pytest.raises(InvalidValue, match="must show"):
        check_template("no link here", html=True)


def test_the_content_checks_read_the_matrix_as_the_full_parse_did():
    """Issue 25's one parse: every message of the matrix, before and after its footer, is
    read by the content checks (gateway/policy/readable.py) as the modern full parse read
    it (tests/support/readable_reference.py)."""
    from gateway.policy.message import Message
    from gateway.policy.readable import decoded_text_parts
    from tests.support import readable_reference

    different = []
    for cte, charset, structure in MATRIX:
        message, _, _ = build(structure, charset, cte)
        for raw in (message, apply_footer(message)):
            if decoded_text_parts(Message(raw)) != list(
                    readable_reference.decoded_text_parts(raw)):
                different.append((cte, charset, structure))
    assert different == []


def test_the_header_block_is_what_every_rendered_copy_begins_with():
    """Prepared reads the header fields once, from `header_block()`, without rendering a
    body: over the matrix (a top-level part that changes its transfer encoding or charset
    included) it is the rendered copy's header block, byte for byte."""
    for cte, charset, structure in MATRIX:
        message, _, _ = build(structure, charset, cte)
        head_end = message.index(b"\r\n\r\n") + 2
        values = {"unsubscribe_url": PLACEHOLDER, "postal_address": POSTAL,
                  "sender_name": "Acmé"}
        plan = FooterPlan(message, head_end, body_parts(message, head_end),
                          render(DEFAULT_TEXT, values, html=False),
                          render(DEFAULT_HTML, values, html=True))
        rendered = plan.render(URL)
        assert plan.header_block() == rendered[:plan.head_end], (cte, charset, structure)
        assert rendered[plan.head_end:plan.head_end + 2] == b"\r\n"


_LINE = st.text(st.sampled_from(list("ab =.\t\r\u00e9\u00fc€")), max_size=120)


@settings(max_examples=2000, deadline=None)
@example(lines=["", "", "\r"], ending="\r\n", slot_line=1, slot_at=1, url="0",
         encoding="quoted-printable")  # b2a_qp reads a bare CR by the first line break's kind
@given(lines=st.lists(_LINE, min_size=0, max_size=12),
       ending=st.sampled_from(["\r\n", "\n"]),
       slot_line=st.integers(min_value=0, max_value=12), slot_at=st.integers(0, 130),
       url=st.text("abcxyz0189/:.?=-_~", min_size=1, max_size=90),
       encoding=st.sampled_from(["quoted-printable", "base64", "7bit", "8bit"]))
def test_the_fixed_start_and_the_rest_encode_to_the_whole(lines, ending, slot_line, slot_at,
                                                          url, encoding):
    """Each touched part's content before the first slot is encoded once per message and
    the rest per copy: together, byte for byte what encoding the whole content gives."""
    text = ending.join(lines).encode("utf-8")
    line_starts = [0] + [i + len(ending) for i in range(len(text))
                         if text.startswith(ending.encode(), i)]
    at = min(line_starts[min(slot_line, len(line_starts) - 1)] + slot_at, len(text))
    pieces = (text[:at], "unsubscribe", text[at:] + b"\r\n")
    fixed, rest = footer._split_fixed(pieces, encoding)
    values = {"unsubscribe": url.encode()}
    filled = b"".join(p if isinstance(p, bytes) else values[p] for p in rest)
    whole = b"".join(p if isinstance(p, bytes) else values[p] for p in pieces)
    assert fixed + footer._encode(filled, encoding) == footer._encode(whole, encoding)


@pytest.mark.parametrize("html", [False, True])
def test_no_line_passes_998_octets_once_the_links_are_filled_in(html):
    """A footer line just under the limit with its placeholder is over it with a real link
    (an upstream refused such a copy: "Line too long"): the part is re-encoded instead."""
    kind = b"text/html" if html else b"text/plain"
    message = (b"From: a@acme.example\r\nMIME-Version: 1.0\r\nContent-Type: " + kind +
               b"; charset=us-ascii\r\n\r\n" + b"x" * 60 + b"\r\n")
    long_footer = "y" * 850 + " " + PLACEHOLDER + "\n"  # 878 octets with the placeholder
    plan = FooterPlan(message, message.index(b"\r\n\r\n"),
                      body_parts(message, message.index(b"\r\n\r\n")), long_footer,
                      long_footer)
    out = plan.render("https://links.example/u/" + "t" * 400)
    assert max(len(line) for line in out.split(b"\r\n")) <= 998
    parsed = email.message_from_bytes(out, policy=email.policy.default)
    assert "t" * 400 in parsed.get_content()
