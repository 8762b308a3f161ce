"""One IMAP session against a provider's mailbox, logged in with XOAUTH2 (Gmail's and
Microsoft 365's SASL form of an OAuth access token). Blocking (the standard library's
imaplib); the inbox reader runs it in a thread.

Reading never changes the mailbox: the folder is opened with EXAMINE (read-only, RFC 3501
s 6.3.2) and messages are fetched with BODY.PEEK[], which does not set \\Seen. Labelling, a
tenant's choice, is a separate session that SELECTs the folder and only adds a keyword.
"""

from __future__ import annotations

import contextlib
import imaplib
import re
from dataclasses import dataclass
from datetime import date

from gateway.config import UpstreamConfig
from gateway.net.tls import client_tls_context

PROVIDER_HOSTS = {"gmail": "imap.gmail.com", "microsoft": "outlook.office365.com"}
KEYWORD = "OCG-OptOut"  # the keyword a labelling tenant's acted-on messages get
MAX_MESSAGE = 5 * 1024 * 1024  # bigger messages are skipped (no bounce or reply is this big)
_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
_UID = re.compile(rb"UID (\d+)")
_SIZE = re.compile(rb"RFC822\.SIZE (\d+)")


class LoginRefused(Exception):
    """The server refused the access token (revoked or expired early)."""


class ImapFailed(Exception):
    """The server could not be reached or answered something unusable."""


@dataclass(frozen=True, slots=True)
class ImapTarget:
    host: str
    port: int
    tls: bool
    ca_file: str
    timeout: float
    verify: bool = True  # false only for a loopback host (gateway.config)

    @classmethod
    def of(cls, upstream: UpstreamConfig) -> ImapTarget:
        return cls(upstream.imap_host or PROVIDER_HOSTS.get(upstream.kind, ""),
                   upstream.imap_port, upstream.imap_tls != "none", upstream.ca_file,
                   upstream.timeout, upstream.tls_verify)


@dataclass(frozen=True, slots=True)
class Position:
    """Where reading got to: the folder's UIDVALIDITY and the first UID not read yet."""

    uidvalidity: int
    next_uid: int


@dataclass(slots=True)
class Batch:
    uidvalidity: int
    uidnext: int
    messages: list[tuple[int, bytes]]  # (uid, message), oldest first
    skipped: list[int]  # too big to read
    more: bool  # more unread messages than one batch


def xoauth2(user: str, token: str) -> bytes:
    return f"user={user}\x01auth=Bearer {token}\x01\x01".encode()


def _imap_date(day: date) -> str:
    return f"{day.day:02d}-{_MONTHS[day.month - 1]}-{day.year}"


def _quoted(folder: str) -> str:
    return '"' + folder.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _open(target: ImapTarget, user: str, token: str) -> imaplib.IMAP4:
    try:
        if target.tls:
            context = client_tls_context(target.ca_file, target.verify)
            imap: imaplib.IMAP4 = imaplib.IMAP4_SSL(target.host, target.port,
                                                    ssl_context=context,
                                                    timeout=target.timeout)
        else:
            imap = imaplib.IMAP4(target.host, target.port, timeout=target.timeout)
    except (OSError, imaplib.IMAP4.error) as exc:
        raise ImapFailed(type(exc).__name__) from None
    try:
        imap.authenticate("XOAUTH2", lambda _: xoauth2(user, token))
    except imaplib.IMAP4.abort as exc:
        _close(imap)
        raise ImapFailed(type(exc).__name__) from None
    except imaplib.IMAP4.error:
        _close(imap)
        raise LoginRefused() from None
    except OSError as exc:
        _close(imap)
        raise ImapFailed(type(exc).__name__) from None
    return imap


def _close(imap: imaplib.IMAP4) -> None:
    """LOGOUT, and the socket closed whatever the server says."""
    try:
        imap.logout()  # closes the socket itself once LOGOUT is answered
    except (OSError, imaplib.IMAP4.error):
        with contextlib.suppress(OSError):
            imap.shutdown()


def _number(imap: imaplib.IMAP4, code: str) -> int:
    _, data = imap.response(code)
    try:
        return int(data[-1]) if data and data[-1] is not None else 0
    except (TypeError, ValueError):
        return 0


def read(target: ImapTarget, user: str, token: str, folder: str, position: Position,
         since: date | None, batch: int) -> Batch:
    """The next messages of `folder` after `position`. When the folder's UIDVALIDITY is not
    the one `position` knows (first reading, or the folder was rebuilt), messages from
    `since` on are read instead, or none if `since` is None."""
    imap = _open(target, user, token)
    try:
        typ, data = imap.select(_quoted(folder), readonly=True)  # EXAMINE
        if typ != "OK":
            raise ImapFailed(f"EXAMINE {typ}")
        uidvalidity, uidnext = _number(imap, "UIDVALIDITY"), _number(imap, "UIDNEXT")
        if uidvalidity == position.uidvalidity and position.next_uid > 0:
            typ, data = imap.uid("SEARCH", f"UID {position.next_uid}:*")
            first = position.next_uid
        elif since is not None:
            typ, data = imap.uid("SEARCH", "SINCE", _imap_date(since))
            first = 1
        else:
            return Batch(uidvalidity, uidnext, [], [], False)
        if typ != "OK":
            raise ImapFailed(f"SEARCH {typ}")
        # "n:*" always matches the newest message, even below n (RFC 3501 s 6.4.8)
        uids = sorted(u for u in (int(x) for x in b" ".join(
            d for d in data if d).split()) if u >= first)
        chosen, more = uids[:batch], len(uids) > batch
        if not chosen:
            return Batch(uidvalidity, uidnext, [], [], False)
        sizes = _sizes(imap, chosen)
        small = [u for u in chosen if sizes.get(u, 0) <= MAX_MESSAGE]
        messages = _bodies(imap, small) if small else {}
        return Batch(uidvalidity, uidnext, sorted(messages.items()),
                     [u for u in chosen if u not in messages], more)
    except imaplib.IMAP4.error as exc:
        raise ImapFailed(type(exc).__name__) from None
    except OSError as exc:
        raise ImapFailed(type(exc).__name__) from None
    finally:
        _close(imap)


def _sizes(imap: imaplib.IMAP4, uids: list[int]) -> dict[int, int]:
    typ, data = imap.uid("FETCH", ",".join(map(str, uids)), "(RFC822.SIZE)")
    if typ != "OK":
        raise ImapFailed(f"FETCH {typ}")
    sizes = {}
    for item in data:
        line = item[0] if isinstance(item, tuple) else item
        if not isinstance(line, bytes):
            continue
        uid, size = _UID.search(line), _SIZE.search(line)
        if uid and size:
            sizes[int(uid.group(1))] = int(size.group(1))
    return sizes


def _bodies(imap: imaplib.IMAP4, uids: list[int]) -> dict[int, bytes]:
    typ, data = imap.uid("FETCH", ",".join(map(str, uids)), "(UID BODY.PEEK[])")
    if typ != "OK":
        raise ImapFailed(f"FETCH {typ}")
    found = {}
    for item in data:
        if isinstance(item, tuple) and len(item) == 2:
            uid = _UID.search(item[0])
            if uid:
                found[int(uid.group(1))] = item[1]
    return found


def label(target: ImapTarget, user: str, token: str, folder: str, uidvalidity: int,
          uids: list[int]) -> bool:
    """Add KEYWORD to messages the gateway acted on (a labelling tenant only). False if the
    folder changed under us (another UIDVALIDITY): then nothing is touched."""
    imap = _open(target, user, token)
    try:
        typ, _ = imap.select(_quoted(folder))
        if typ != "OK" or _number(imap, "UIDVALIDITY") != uidvalidity:
            return False
        typ, _ = imap.uid("STORE", ",".join(map(str, uids)), "+FLAGS.SILENT", f"({KEYWORD})")
        return typ == "OK"
    except (imaplib.IMAP4.error, OSError) as exc:
        raise ImapFailed(type(exc).__name__) from None
    finally:
        _close(imap)
