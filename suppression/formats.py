"""Reading suppression files as other services export them, and writing our own.

Layouts read (detected from the header row, or named with `format=`):

- `ocg`: this library's export (`target,kind,reason,source,created_at,expires_at,note,
  created_by,digest,key_id`); digest-only rows (erasures) go back only into an installation
  holding the same digest key.
- `plain`: one address per line, no header (or a lone `email` / `address` header).
- `ses`: Amazon SES suppressed destinations, `EmailAddress,Reason,LastUpdateTime`
  (`Reason` BOUNCE or COMPLAINT), as the console's table download names them too (`Email
  address`, `Suppression reason`, `Last update time`: header names are compared without
  case, spaces, hyphens and underscores); SES's header-less bulk-import rows
  `address,REASON`; and the JSON the AWS CLI prints for `aws sesv2
  list-suppressed-destinations` (`{"SuppressedDestinationSummaries": [...]}`) or
  `get-suppressed-destination`.
- `mailgun`: bounces `address,code,error,created_at`, unsubscribes
  `address,tags,created_at`, complaints `address,created_at`.
- `sendgrid`: `email,created` with `reason,status` (bounces, blocks, invalid emails),
  `ip` (spam reports) or nothing else (global unsubscribes).
- `listmonk`: the subscriber export `uuid,email,name,attributes,status,created_at,
  updated_at`; only `blocklisted` subscribers are opt-outs, other rows are skipped.

A row is either an entry, a bad row (line number and why), or a skipped row. Lines are
decoded one at a time, so a non-UTF-8 line is one bad row, not a failed file; a bad byte in
a column the layout does not read does not make the row bad.
"""

from __future__ import annotations

import csv
import enum
import io
import json
import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from itertools import chain

from suppression.canonical import InvalidAddress, canonical, canonical_domain
from suppression.entries import Entry, Kind, NewEntry, Reason, Target

OCG_HEADER = ("target", "kind", "reason", "source", "created_at", "expires_at", "note",
              "created_by", "digest", "key_id")
MAX_FIELD = 1000  # longer than any address or note: refused, never echoed in full


class Format(enum.StrEnum):
    OCG = "ocg"
    PLAIN = "plain"
    SES = "ses"
    MAILGUN = "mailgun"
    SENDGRID = "sendgrid"
    LISTMONK = "listmonk"


@dataclass(frozen=True, slots=True)
class Bad:
    line: int
    message: str


@dataclass(frozen=True, slots=True)
class Skipped:
    line: int
    why: str


@dataclass(frozen=True, slots=True)
class DigestOnly:
    """An exported erasure entry: no address, only its digest under `key_id`."""

    line: int
    scope: int
    kind: Kind
    digest: bytes
    key_id: str
    reason: Reason
    source: str
    created_at: int
    expires_at: int | None
    note: str
    created_by: str


@dataclass(frozen=True, slots=True)
class Good:
    line: int
    entry: NewEntry


Item = Good | DigestOnly | Bad | Skipped
_Parser = Callable[[int, list[str], dict[str, int], "Defaults"], Item]


class FileError(ValueError):
    """The file as a whole cannot be read (unknown layout, no address column)."""


def decoded_lines(chunks: Iterable[bytes]) -> Iterator[str]:
    """Lines of a byte stream (split at LF, kept), decoded; a BOM at the start is dropped.
    Bytes that are not UTF-8 come out as surrogate escapes, which `read` reports per row.

    Whole blocks are decoded at once: a newline byte is never inside a multi-byte
    sequence, so this is the same as decoding line by line, for a fraction of the cost."""
    pending = b""
    first = True
    for chunk in chunks:
        pending += chunk
        cut = pending.rfind(b"\n") + 1
        if not cut:
            continue  # one long line so far
        block, pending = pending[:cut], pending[cut:]
        if first:
            block, first = block.removeprefix(_BOM), False
        yield from io.StringIO(block.decode("utf-8", "surrogateescape"), newline="\n")
    if pending:
        if first:
            pending = pending.removeprefix(_BOM)
        yield pending.decode("utf-8", "surrogateescape")


_BOM = b"\xef\xbb\xbf"


def _not_utf8(text: str) -> bool:
    """Whether the text holds the surrogate escapes of bytes that were not UTF-8."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


def parse_time(text: str) -> int | None:
    """Unix seconds from the date forms these services write, or None."""
    text = text.strip()
    if not text:
        return None
    if text.replace(".", "", 1).isdigit():  # Unix time, maybe with a fraction (AWS CLI v1)
        value = int(float(text))
        return value // 1000 if value > 10**11 else value  # milliseconds
    try:
        parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        try:
            parsed = parsedate_to_datetime(text)
        except (TypeError, ValueError, IndexError):
            return None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return int(parsed.timestamp())


def _name(header: str) -> str:
    """A header name as compared: `Email address`, `email_address` and `EmailAddress` match."""
    return "".join(c for c in header.strip().lower() if c not in " _-")


# the same column under the names the services' exports give it
_ALIASES = {"suppressionreason": "reason", "lastupdated": "lastupdatetime",
            "lastupdate": "lastupdatetime", "lastupdatedtime": "lastupdatetime"}


def _names(header: list[str]) -> list[str]:
    return [_ALIASES.get(_name(h), _name(h)) for h in header]


def detect(header: list[str]) -> Format:
    names = set(_names(header))
    if {_name(h) for h in OCG_HEADER} <= names:
        return Format.OCG
    if {"emailaddress", "reason"} <= names:
        return Format.SES
    if {"uuid", "email", "status"} <= names:
        return Format.LISTMONK
    if "address" in names and ("createdat" in names or "code" in names or "tags" in names):
        return Format.MAILGUN
    if {"email", "created"} <= names:
        return Format.SENDGRID
    if len(header) == 2 and header[1].strip().upper() in ("BOUNCE", "COMPLAINT") \
            and "@" in header[0]:
        return Format.SES  # SES's bulk-import rows: no header
    if len(header) == 1:
        return Format.PLAIN
    raise FileError("Unknown layout: the header names none of the formats read "
                    f"({', '.join(f.value for f in Format)}); give one with --format.")


def _short(text: str) -> str:
    return text if len(text) <= 60 else text[:57] + "..."


def parse_target(text: str) -> Target:
    """An address, a domain, or `*.domain` (the domain and its subdomains)."""
    text = text.strip()
    if len(text) > MAX_FIELD:
        raise InvalidAddress(f"{len(text)} characters; an address has at most 254.")
    if "@" in text:
        return Target(Kind.ADDRESS, canonical(text))
    if text.startswith("*."):
        return Target(Kind.SUBDOMAINS, canonical_domain(text[2:]))
    return Target(Kind.DOMAIN, canonical_domain(text))


@dataclass(frozen=True, slots=True)
class Defaults:
    """What a row does not say: the scope it goes to and the reason, source and time."""

    scope: int
    reason: Reason
    source: str
    now: int
    created_by: str = ""
    expires_at: int | None = None


_SES_REASONS = {"BOUNCE": Reason.BOUNCE, "COMPLAINT": Reason.COMPLAINT}


def read(lines: Iterable[str], defaults: Defaults, fmt: Format | None = None) -> Iterator[Item]:
    """Parse a file (as lines, see `decoded_lines`) into items, one per data row."""
    lines = iter(lines)
    head = next(lines, None)
    if head is None:
        return
    if head.lstrip().startswith("{") and fmt in (None, Format.SES):
        yield from _aws_json(chain([head], lines), defaults)
        return
    lines = chain([head], lines)
    if fmt is Format.PLAIN or (fmt is None and _plain_line(head)):
        yield from _plain_lines(lines, defaults)
        return
    reader = csv.reader(lines)
    try:
        first = next(reader)
    except StopIteration:
        return
    except csv.Error as exc:
        yield Bad(1, f"not CSV: {exc}")
        return
    fmt = fmt or detect(first)
    names = _names(first)
    headerless = fmt is Format.SES and "emailaddress" not in names
    columns = {} if headerless else {name: i for i, name in enumerate(names)}
    parse = _PARSERS[fmt]
    if headerless:
        yield _item(parse, reader.line_num, first, columns, defaults)
    while True:
        try:
            row = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            yield Bad(reader.line_num, f"not CSV: {_short(str(exc))}")
            continue
        yield _item(parse, reader.line_num, row, columns, defaults)


def _item(parse: _Parser, line: int, row: list[str], columns: dict[str, int],
          defaults: Defaults) -> Item:
    joined = "".join(row)
    if not joined.strip():
        return Skipped(line, "blank line")
    try:
        return parse(line, row, columns, defaults)
    except InvalidAddress as exc:
        return Bad(line, _short(str(exc)))
    except (IndexError, KeyError):
        return Bad(line, "missing a column")
    except ValueError as exc:
        return Bad(line, _short(str(exc)))


def _field(row: list[str], columns: dict[str, int], name: str) -> str:
    return _cell(row, columns[name]) if name in columns and columns[name] < len(row) else ""


def _cell(row: list[str], index: int) -> str:
    """A column the layout reads: bytes that were not UTF-8 make the row bad (in a column
    it does not read they do not matter)."""
    value = row[index]
    if not value.isascii() and _not_utf8(value):
        raise ValueError("not UTF-8")
    return value


# --- plain lists and the AWS CLI's JSON: not CSV -------------------------------------------


_QUOTED_LOCAL = re.compile(r'"(?:[^"\\]|\\.)*"@[^,]+$')  # "doe, john"@example.com


def _plain_line(line: str) -> bool:
    """A first line that is an address or a lone address-column header (no comma)."""
    text = line.strip()
    return "," not in text or _QUOTED_LOCAL.match(text) is not None


def _plain_lines(lines: Iterable[str], d: Defaults) -> Iterator[Item]:
    """One address, domain or `*.domain` per line, exactly as `suppress add` takes it: a
    quoted local part (`"john doe"@example.com`) stays quoted; a line that is one quoted
    CSV field (`"alice@example.com"`, from a spreadsheet) is unquoted."""
    for number, raw in enumerate(lines, 1):
        text = raw.strip()
        if number == 1 and _name(text.strip('"')) in ("email", "address", "emailaddress"):
            continue  # a lone header
        if not text:
            yield Skipped(number, "blank line")
            continue
        if not text.isascii() and _not_utf8(text):
            yield Bad(number, "not UTF-8")
            continue
        if len(text) > 1 and text[0] == text[-1] == '"' and '"' not in text[1:-1]:
            text = text[1:-1]
        try:
            yield _good(number, parse_target(text), d.reason, d)
        except (InvalidAddress, ValueError) as exc:
            yield Bad(number, _short(str(exc)))


def _aws_json(lines: Iterable[str], d: Defaults) -> Iterator[Item]:
    """`aws sesv2 list-suppressed-destinations` (every page merged, as the CLI prints it)
    or `get-suppressed-destination`. Each entry's line is the line of its address."""
    text = "".join(lines)
    if _not_utf8(text):
        yield Bad(1, "not UTF-8")
        return
    try:
        document = json.loads(text)
    except ValueError as exc:
        yield Bad(1, f"not JSON: {_short(str(exc))}")
        return
    summaries = document.get("SuppressedDestinationSummaries") if isinstance(
        document, dict) else None
    if summaries is None and isinstance(document, dict) and "SuppressedDestination" in document:
        summaries = [document["SuppressedDestination"]]
    if not isinstance(summaries, list):
        raise FileError("JSON without SuppressedDestinationSummaries: not the AWS CLI's "
                        "output of 'aws sesv2 list-suppressed-destinations'.")
    at = [i for i, line in enumerate(text.split("\n"), 1) if '"EmailAddress"' in line]
    for index, summary in enumerate(summaries):
        line = at[index] if index < len(at) else index + 1
        if not isinstance(summary, dict):
            yield Bad(line, "not an object")
            continue
        try:
            yield _ses(line, [str(summary.get("EmailAddress", "")),
                              str(summary.get("Reason", "")),
                              str(summary.get("LastUpdateTime", ""))],
                       {"emailaddress": 0, "reason": 1, "lastupdatetime": 2}, d)
        except (InvalidAddress, ValueError) as exc:
            yield Bad(line, _short(str(exc)))


def _good(line: int, target: Target, reason: Reason, d: Defaults, created: int | None = None,
          source: str | None = None, note: str = "", expires_at: int | None = None,
          created_by: str | None = None) -> Good:
    return Good(line, NewEntry(d.scope, target, reason, source or d.source,
                               created if created is not None else d.now,
                               expires_at if expires_at is not None else d.expires_at,
                               note, created_by if created_by is not None else d.created_by))


def _ses(line: int, row: list[str], columns: dict[str, int], d: Defaults) -> Item:
    if columns:
        address, reason = _field(row, columns, "emailaddress"), _field(row, columns, "reason")
        created = parse_time(_field(row, columns, "lastupdatetime"))
    else:
        address, reason, created = _cell(row, 0), _cell(row, 1), None
    mapped = _SES_REASONS.get(reason.strip().upper())
    if mapped is None:
        raise ValueError("Reason must be BOUNCE or COMPLAINT")
    return _good(line, parse_target(address), mapped, d, created)


def _mailgun(line: int, row: list[str], columns: dict[str, int], d: Defaults) -> Item:
    if "code" in columns or "error" in columns:
        reason = Reason.BOUNCE
    elif "tags" in columns:
        reason = Reason.UNSUBSCRIBE
    else:
        reason = Reason.COMPLAINT
    note = _field(row, columns, "error")[:200]
    return _good(line, parse_target(_field(row, columns, "address")), reason, d,
                 parse_time(_field(row, columns, "createdat")), note=note)


def _sendgrid(line: int, row: list[str], columns: dict[str, int], d: Defaults) -> Item:
    if "ip" in columns:
        reason = Reason.COMPLAINT
    elif "status" in columns or "reason" in columns:
        reason = Reason.BOUNCE
    else:
        reason = Reason.UNSUBSCRIBE
    return _good(line, parse_target(_field(row, columns, "email")), reason, d,
                 parse_time(_field(row, columns, "created")),
                 note=_field(row, columns, "reason")[:200])


def _listmonk(line: int, row: list[str], columns: dict[str, int], d: Defaults) -> Item:
    status = _field(row, columns, "status").strip().lower()
    if status != "blocklisted":
        return Skipped(line, f"status {status or 'empty'} is not an opt-out")
    return _good(line, parse_target(_field(row, columns, "email")), Reason.UNSUBSCRIBE, d,
                 parse_time(_field(row, columns, "updatedat")))


def _ocg(line: int, row: list[str], columns: dict[str, int], d: Defaults) -> Item:
    reason = Reason(_field(row, columns, "reason"))
    created = parse_time(_field(row, columns, "createdat"))
    expires_text = _field(row, columns, "expiresat")
    expires = parse_time(expires_text) if expires_text else None
    if expires_text and expires is None:
        raise ValueError("expires_at is not a time")
    source = _field(row, columns, "source") or d.source
    note, created_by = _field(row, columns, "note"), _field(row, columns, "createdby")
    target = _field(row, columns, "target")
    if target:
        return _good(line, parse_target(target), reason, d, created, source, note,
                     expires, created_by)
    digest_hex, key_id = _field(row, columns, "digest"), _field(row, columns, "keyid")
    if not digest_hex or not key_id:
        raise ValueError("no target, and no digest with its key id")
    return DigestOnly(line, d.scope, Kind(_field(row, columns, "kind")), bytes.fromhex(digest_hex),
                      key_id, reason, source, created or d.now, expires, note, created_by)


_PARSERS: dict[Format, _Parser] = {Format.SES: _ses, Format.MAILGUN: _mailgun,
                                   Format.SENDGRID: _sendgrid, Format.LISTMONK: _listmonk,
                                   Format.OCG: _ocg}


def export_row(entry: Entry, key_id: str) -> list[str]:
    """One `ocg` row; reading it back gives the same entry."""
    target = ""
    if entry.target is not None:
        target = f"*.{entry.target}" if entry.kind is Kind.SUBDOMAINS else entry.target
    return [target, entry.kind.value, entry.reason.value, entry.source,
            str(entry.created_at), "" if entry.expires_at is None else str(entry.expires_at),
            entry.note, entry.created_by, entry.digest.hex() if entry.target is None else "",
            key_id if entry.target is None else ""]
