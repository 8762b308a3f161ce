"""Reading the suppression exports of Amazon SES, Mailgun, SendGrid and listmonk (header rows
as those services write them), plain lists, bad input, and our own export's round trip."""

from __future__ import annotations

import csv
import io
import secrets

from suppression.digest import Digester
from suppression.entries import Entry, Kind, Reason
from suppression.formats import (
    Bad,
    Defaults,
    DigestOnly,
    Format,
    Good,
    Skipped,
    decoded_lines,
    export_row,
    read,
)
from tests.support.formats import AWS_CLI_JSON

D = Defaults(scope=1, reason=Reason.MANUAL, source="import", now=1_700_000_000)


def items(data: bytes, fmt: Format | None = None) -> list:
    return list(read(decoded_lines([data[i:i + 7] for i in range(0, len(data), 7)]), D, fmt))


def good(found: list) -> list[tuple[str, Reason]]:
    return [(i.entry.target.value, i.entry.reason) for i in found if isinstance(i, Good)]


def test_amazon_ses_suppressed_destinations_and_bulk_rows():
    data = (b"EmailAddress,Reason,LastUpdateTime\n"
            b"b@example.com,BOUNCE,2024-03-01T10:00:00Z\nc@example.com,COMPLAINT,\n"
            b"d@example.com,OTHER,\n")
    found = items(data)
    assert good(found) == [("b@example.com", Reason.BOUNCE), ("c@example.com", Reason.COMPLAINT)]
    assert found[0].entry.created_at == 1709287200
    assert isinstance(found[2], Bad) and found[2].line == 4
    assert good(items(b"e@example.com,BOUNCE\nf@example.com,COMPLAINT\n")) == [
        ("e@example.com", Reason.BOUNCE), ("f@example.com", Reason.COMPLAINT)]


def test_mailgun_bounces_unsubscribes_and_complaints():
    assert good(items(b"address,code,error,created_at\n"
                      b'b@example.com,550,"No such user",Fri, 21 Oct 2011 11:02:55 GMT\n')) \
        == [("b@example.com", Reason.BOUNCE)]
    assert good(items(b"address,tags,created_at\nu@example.com,*,\n")) == [
        ("u@example.com", Reason.UNSUBSCRIBE)]
    assert good(items(b"address,created_at\nc@example.com,\n")) == [
        ("c@example.com", Reason.COMPLAINT)]


def test_sendgrid_suppression_exports():
    assert good(items(b"email,created\nu@example.com,1443651141\n")) == [
        ("u@example.com", Reason.UNSUBSCRIBE)]
    assert good(items(b"email,created,reason,status\nb@example.com,1443651125,"
                      b"550 bad,5.1.1\n")) == [("b@example.com", Reason.BOUNCE)]
    assert good(items(b"email,created,ip\ns@example.com,1443651141,10.0.0.1\n")) == [
        ("s@example.com", Reason.COMPLAINT)]


def test_listmonk_export_only_blocklisted_subscribers_are_opt_outs():
    data = (b"uuid,email,name,attributes,status,created_at,updated_at\n"
            b'1f0e,a@example.com,A,"{""x"": 1}",blocklisted,2024-01-01 10:00:00,'
            b"2024-02-01T10:00:00+00:00\n"
            b"2f0e,b@example.com,B,{},enabled,2024-01-01 10:00:00,2024-01-01 10:00:00\n")
    found = items(data)
    assert good(found) == [("a@example.com", Reason.UNSUBSCRIBE)]
    assert isinstance(found[1], Skipped)


def test_plain_list_with_bom_crlf_mixes_blank_lines_and_junk():
    data = (b"\xef\xbb\xbfA@Example.com\r\nb@example.com\n\n\r\nnot-an-address\n"
            b"\xff\xfe@example.com\n" + b"x" * 5000 + b"@example.com\n*.spam.example\n"
            b"exact.example\nA@example.com")
    found = items(data)
    assert good(found) == [("a@example.com", Reason.MANUAL), ("b@example.com", Reason.MANUAL),
                           ("spam.example", Reason.MANUAL), ("exact.example", Reason.MANUAL),
                           ("a@example.com", Reason.MANUAL)]
    kinds = [i.entry.target.kind for i in found if isinstance(i, Good)]
    assert kinds[2:4] == [Kind.SUBDOMAINS, Kind.DOMAIN]
    bad = {i.line: i.message for i in found if isinstance(i, Bad)}
    assert set(bad) == {5, 6, 7}
    assert bad[6] == "not UTF-8" and len(bad[7]) <= 60  # never the 5,000 characters back


def test_export_round_trips_and_digest_only_rows_carry_their_key():
    digester = Digester(secrets.token_bytes(32), "suppression-digest/v1/abc")
    entries = [
        Entry(1, 1, Kind.ADDRESS, b"\x01" * 16, "a@example.com", Reason.UNSUBSCRIBE, "link",
              1_700_000_000, None, "said, \"stop\"", "cli:ops"),
        Entry(2, 1, Kind.SUBDOMAINS, b"\x02" * 16, "spam.example", Reason.MANUAL, "api",
              1_700_000_001, 1_800_000_000, "", "apikey:k"),
        Entry(3, 1, Kind.ADDRESS, b"\x03" * 16, None, Reason.ERASURE, "cli", 1_700_000_002,
              None, "", "cli:dpo"),
    ]
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["target", "kind", "reason", "source", "created_at", "expires_at", "note",
                     "created_by", "digest", "key_id"])
    for e in entries:
        writer.writerow(export_row(e, digester.key_id))
    found = items(out.getvalue().encode())
    first, second, third = found
    assert (first.entry.target.value, first.entry.reason, first.entry.source,
            first.entry.created_at, first.entry.note, first.entry.created_by) == (
        "a@example.com", Reason.UNSUBSCRIBE, "link", 1_700_000_000, 'said, "stop"', "cli:ops")
    assert (second.entry.target.kind, second.entry.expires_at) == (Kind.SUBDOMAINS,
                                                                   1_800_000_000)
    assert isinstance(third, DigestOnly)
    assert (third.digest, third.key_id) == (b"\x03" * 16, digester.key_id)


def test_an_unknown_header_names_the_formats():
    try:
        items(b"foo,bar\n1,2\n")
    except ValueError as exc:
        assert "--format" in str(exc)
    else:
        raise AssertionError("an unknown layout was read")


def test_the_aws_cli_json_of_list_suppressed_destinations():
    found = items(AWS_CLI_JSON)
    assert good(found) == [("bounced@example.com", Reason.BOUNCE),
                           ("complained@example.com", Reason.COMPLAINT)]
    assert [i.entry.created_at for i in found if isinstance(i, Good)] == [1709287200] * 2
    (bad,) = [i for i in found if isinstance(i, Bad)]
    assert bad.line == 14  # the line of its address in the file
    single = (b'{"SuppressedDestination": {"EmailAddress": "one@example.com", '
              b'"Reason": "BOUNCE", "LastUpdateTime": "2024-03-01T10:00:00Z"}}')
    assert good(items(single)) == [("one@example.com", Reason.BOUNCE)]
    assert isinstance(items(b"{not json\n")[0], Bad)


def test_the_ses_console_download_names_its_columns_in_words():
    data = (b"Email address,Suppression reason,Last update time\n"
            b"b@example.com,Bounce,2024-03-01T10:00:00Z\n")
    assert good(items(data)) == [("b@example.com", Reason.BOUNCE)]


def test_a_plain_list_takes_what_suppress_add_takes():
    data = (b'"john doe"@example.com\n"alice@example.com"\nbob@example.com\n'
            b'"very.unusual.@.unusual.com"@example.com\n"doe, john"@example.com\n')
    assert good(items(data)) == [('"john doe"@example.com', Reason.MANUAL),
                                 ("alice@example.com", Reason.MANUAL),
                                 ("bob@example.com", Reason.MANUAL),
                                 ('"very.unusual.@.unusual.com"@example.com', Reason.MANUAL),
                                 ('"doe, john"@example.com', Reason.MANUAL)]
    assert good(items(b'"doe, john"@example.com\n')) == [('"doe, john"@example.com',
                                                           Reason.MANUAL)]


def test_a_bad_byte_in_a_column_that_is_not_read_keeps_the_row():
    data = (b"uuid,email,name,attributes,status,created_at,updated_at\n"
            b"1,a@example.com,M\xfcller,{},blocklisted,,\n"   # Latin-1 in the name: not read
            b"2,b\xfc@example.com,Bob,{},blocklisted,,\n")    # in the address: bad
    found = items(data)
    assert good(found) == [("a@example.com", Reason.UNSUBSCRIBE)]
    assert [(i.line, i.message) for i in found if isinstance(i, Bad)] == [(3, "not UTF-8")]
