"""SMTP replies with RFC 3463 enhanced status codes; the only place reply text is written.

Leaf module: imports nothing from `gateway`, so `policy` may depend on it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Reply:
    code: int  # RFC 5321 basic code
    status: str  # RFC 3463 enhanced code; its class digit must match `code`
    text: str  # one ASCII line; never a secret, a body excerpt or an exception text

    def __post_init__(self) -> None:
        if str(self.code)[0] != self.status[0]:
            raise ValueError(f"{self.code} does not match enhanced status {self.status}")
        if "\r" in self.text or "\n" in self.text:
            raise ValueError("reply text must be one line")

    def __str__(self) -> str:
        return f"{self.code} {self.status} {self.text}"

    @property
    def is_permanent(self) -> bool:
        return self.code >= 500

    @property
    def is_temporary(self) -> bool:
        return 400 <= self.code < 500

    def with_text(self, text: str) -> Reply:
        return Reply(self.code, self.status, text)


# --- Session -------------------------------------------------------------------------------
OK = Reply(250, "2.0.0", "Ok")
BYE = Reply(221, "2.0.0", "Bye")
READY_FOR_TLS = Reply(220, "2.0.0", "Ready to start TLS")
SHUTTING_DOWN = Reply(421, "4.3.2", "Service shutting down, please try again later")
TOO_MANY_COMMANDS = Reply(421, "4.7.0", "Too many commands, closing connection")
TOO_MANY_CONNECTIONS = Reply(421, "4.7.0", "Too many connections from your address, "
                             "try again later")
TOO_MANY_AUTH_FAILURES = Reply(421, "4.7.0", "Too many authentication failures, try later")
TOO_MANY_UNKNOWN_COMMANDS = Reply(421, "4.7.0", "Too many unrecognized commands, goodbye")
TLS_NOT_AVAILABLE = Reply(454, "4.7.0", "TLS not available")
ALREADY_TLS = Reply(503, "5.5.1", "TLS already active")
TLS_REFUSED = Reply(554, "5.7.0", "Command refused due to lack of security")

# --- Syntax --------------------------------------------------------------------------------
SYNTAX_ERROR = Reply(500, "5.5.2", "Syntax error")
COMMAND_UNRECOGNIZED = Reply(500, "5.5.1", "Command not recognized")
LINE_TOO_LONG = Reply(500, "5.5.6", "Command line too long")
DATA_LINE_TOO_LONG = Reply(500, "5.5.6", "Line too long (RFC 5321 section 4.5.3.1.6)")
NON_ASCII_COMMAND = Reply(500, "5.5.6", "Non-ASCII command without SMTPUTF8")
PARAMETER_SYNTAX = Reply(501, "5.5.4", "Syntax error in parameters or arguments")
NUL_IN_COMMAND = Reply(501, "5.5.2", "NUL character in command is not allowed")
HELO_SYNTAX = Reply(501, "5.5.4", "Syntax: HELO hostname")
EHLO_SYNTAX = Reply(501, "5.5.4", "Syntax: EHLO hostname")
MAIL_SYNTAX = Reply(501, "5.5.4", "Syntax: MAIL FROM:<address> [parameters]")
RCPT_SYNTAX = Reply(501, "5.5.4", "Syntax: RCPT TO:<address> [parameters]")
BODY_PARAMETER = Reply(501, "5.5.4", "BODY must be 7BIT or 8BITMIME")
SMTPUTF8_PARAMETER = Reply(501, "5.5.4", "SMTPUTF8 takes no value")
PARAMETER_NOT_IMPLEMENTED = Reply(555, "5.5.4", "Parameter not recognized or not implemented")
BAD_SEQUENCE = Reply(503, "5.5.1", "Bad sequence of commands")
HELO_FIRST = Reply(503, "5.5.1", "Send EHLO first")
NESTED_MAIL = Reply(503, "5.5.1", "Nested MAIL command")
NEED_MAIL = Reply(503, "5.5.1", "Need MAIL command")
NEED_RCPT = Reply(503, "5.5.1", "Need RCPT command")
NOT_IMPLEMENTED = Reply(502, "5.5.1", "Command not implemented")
VRFY_DISABLED = Reply(252, "2.5.0", "VRFY is disabled; send some mail and I will try my best")
HELP = Reply(214, "2.0.0", "See RFC 5321")

# --- Authentication (RFC 4954) -------------------------------------------------------------
AUTH_OK = Reply(235, "2.7.0", "Authentication successful")
AUTH_REQUIRED = Reply(530, "5.7.0", "Authentication required")
STARTTLS_FIRST = Reply(530, "5.7.0", "Must issue a STARTTLS command first")
AUTH_INVALID = Reply(535, "5.7.8", "Authentication credentials invalid")
AUTH_ENCRYPTION_REQUIRED = Reply(538, "5.7.11", "Encryption required for AUTH")
AUTH_ALREADY = Reply(503, "5.5.1", "Already authenticated")
AUTH_MECHANISM_UNKNOWN = Reply(504, "5.5.4", "Unrecognized authentication type")
AUTH_ABORTED = Reply(501, "5.7.0", "Authentication aborted")
AUTH_BAD_BASE64 = Reply(501, "5.5.2", "Cannot decode base64")
AUTH_MALFORMED = Reply(501, "5.5.2", "Malformed authentication data")
AUTH_TEMPORARY = Reply(454, "4.7.0", "Temporary authentication failure")

# --- Envelope ------------------------------------------------------------------------------
SENDER_OK = Reply(250, "2.1.0", "Sender ok")
RECIPIENT_OK = Reply(250, "2.1.5", "Recipient ok")
SENDER_MALFORMED = Reply(553, "5.1.7", "Malformed sender address")
RECIPIENT_MALFORMED = Reply(553, "5.1.3", "Malformed recipient address")
# RFC 5321 s 4.1.1.3 lets a server decline source routes; the percent hack, bang paths and
# quoted specials are declined with them (no next hop may read a second address out of one).
RECIPIENT_RELAY_FORM = Reply(553, "5.1.3", "Address form not accepted (no %, !, source "
                             "routes or quoted specials)")
SENDER_RELAY_FORM = Reply(553, "5.1.7", "Address form not accepted (no %, !, source "
                          "routes or quoted specials)")
# Suppressed recipients: the reply says which kind of list, never whose list or which entry.
SUPPRESSED = {
    "unsubscribe": Reply(550, "5.7.1", "Recipient has unsubscribed; not sent"),
    "complaint": Reply(550, "5.7.1", "Recipient reported earlier mail as spam; not sent"),
    "bounce": Reply(550, "5.7.1", "Recipient address bounced earlier; not sent"),
    "manual": Reply(550, "5.7.1", "Recipient is on this account's suppression list; not sent"),
    "erasure": Reply(550, "5.7.1", "Recipient asked not to be contacted; not sent"),
}
SUPPRESSED_GLOBAL = Reply(550, "5.7.1", "Recipient is on the operator's suppression list; "
                                        "not sent")
NULL_SENDER_REFUSED = Reply(553, "5.1.7", "A null sender is not accepted for submission")
SENDER_NOT_ALLOWED = Reply(553, "5.7.1", "Sender address not allowed for this login")
TENANT_SUSPENDED = Reply(451, "4.7.1", "Sending suspended for this account")
MAILBOX_PAUSED = Reply(451, "4.7.1", "Sending paused for this mailbox")
# the text names the breaker and its scope: "Sending paused: the complaint-rate breaker of
# domain acme.example tripped (0.42 % over 24h); a compliance reviewer must resume it
# (breaker 7)" (limits/breakers.py; docs/breakers.md)
BREAKER_OPEN = Reply(451, "4.7.1", "Sending paused: a reputation breaker tripped; a "
                     "compliance reviewer must resume it")
# the text names the policy and version and the decision, never the person's data: "Not
# sent: no lawful basis for this recipient under ocg-default v3 (require-consent)"
# (lawful/decider.py; docs/lawful-basis.md)
NO_LAWFUL_BASIS = Reply(550, "5.7.1", "Not sent: no lawful basis for this recipient under "
                                      "the lawful-basis policy")
BAD_RECIPIENT_STATEMENT = Reply(550, "5.6.0", "An X-Gateway-Recipient field cannot be read")
NOTICE_NOT_CONFIGURED = Reply(451, "4.3.5", "The notice this recipient must be sent is not "
                              "configured at the gateway, try again later")
NOTICE_UNPLACEABLE = Reply(550, "5.7.1", "Not sent: this recipient is owed a notice, and a "
                           "signed or encrypted message, or one without text, cannot carry it")
TOO_MANY_RECIPIENTS = Reply(452, "4.5.3", "Too many recipients")
STORE_UNAVAILABLE = Reply(452, "4.3.1", "Insufficient system storage, please try again later")
RATE_LIMITED = Reply(450, "4.7.1", "Rate limit reached, please try again later")
MESSAGE_TOO_BIG = Reply(552, "5.3.4", "Message size exceeds fixed maximum message size")
NEEDS_SMTPUTF8 = Reply(553, "5.6.7", "Non-ASCII address without SMTPUTF8")
SMTPUTF8_UNSUPPORTED = Reply(
    553, "5.6.7", "Internationalized address not supported on this route (SMTPUTF8)"
)

# --- Data ----------------------------------------------------------------------------------
BARE_LINE_ENDING = Reply(550, "5.5.2", "Bare CR or LF in message data is not allowed")
NUL_IN_DATA = Reply(550, "5.6.0", "NUL characters in message data are not allowed")
MESSAGE_UNPARSABLE = Reply(554, "5.6.0", "Message could not be parsed")
HEADERS_TOO_LARGE = Reply(552, "5.3.4", "Message headers exceed the limit")
EIGHTBIT_UNSUPPORTED = Reply(
    554, "5.6.3", "8-bit message cannot be relayed on this route without conversion"
)
POLICY_REFUSED = Reply(550, "5.7.1", "Message refused by policy")
HEADER_FROM_NOT_ALLOWED = Reply(
    550, "5.7.1", "Header From must be one address on one of this account's domains"
)
NO_POSTAL_ADDRESS = Reply(451, "4.3.5", "Sender's postal address is not configured at the "
                          "gateway, try again later")
NO_UNSUBSCRIBE_IN_BODY = Reply(550, "5.7.1", "Message body needs a visible unsubscribe link "
                               "and the sender's postal address")
SENSITIVE_DATA = Reply(550, "5.7.1", "Message appears to contain sensitive data "
                       "(a card number, SSN, IBAN or secret); not sent")
MISLEADING_SUBJECT = Reply(550, "5.7.1", "Subject is misleading (a reply or forward marker "
                           "without a thread, or an unfilled merge tag); not sent")
IDENTITY_MISALIGNED = Reply(550, "5.7.1", "Sender identity is not aligned (unverified From "
                            "domain, misleading display name, Reply-To or envelope sender "
                            "outside the From domain); not sent")
HELD_UNAVAILABLE = Reply(451, "4.3.0", "Message needs review but cannot be held now, try later")

# --- Upstream ------------------------------------------------------------------------------
UPSTREAM_UNREACHABLE = Reply(451, "4.4.1", "Upstream server unreachable, try again later")
UPSTREAM_DROPPED = Reply(451, "4.4.2", "Upstream connection dropped, try again later")
# RFC 3463 X.7.5 "cryptographic failure": the upstream's certificate did not verify, so it got
# nothing, no credential and no message.
UPSTREAM_TLS_UNTRUSTED = Reply(451, "4.7.5", "Upstream TLS certificate not trusted, "
                               "try again later")
UPSTREAM_AUTH_FAILED = Reply(451, "4.7.0", "Upstream authentication failed, try again later")
UPSTREAM_LOGIN_MISSING = Reply(451, "4.7.0", "Upstream login has no password in the vault, "
                                             "try again later")
# XOAUTH2 mailboxes: the reply names the mailbox's state, never a token.
MAILBOX_DISCONNECTED = Reply(451, "4.7.0", "Mailbox is disconnected from its provider; "
                                           "reconnect it")
MAILBOX_NEEDS_RECONSENT = Reply(451, "4.7.0", "Mailbox needs new consent at its provider")
MAILBOX_NOT_CONNECTED = Reply(451, "4.7.0", "Mailbox is not connected to its provider yet")
TOKEN_REFRESH_FAILED = Reply(451, "4.7.0", "Upstream token refresh failed, try again later")

# --- Failure defaults ----------------------------------------------------------------------
TEMPORARY_FAILURE = Reply(451, "4.3.0", "Temporary failure, please try again later")
VAULT_UNAVAILABLE = Reply(451, "4.3.5", "Temporary configuration problem, try again later")


def held(queue_id: str) -> Reply:
    """Accepted and kept for review: the client must not send it again."""
    return Reply(250, "2.0.0", f"Ok: held for review as {queue_id}")


def accepted(queue_id: str) -> Reply:
    return Reply(250, "2.0.0", f"Ok: queued as {queue_id}")


def upstream_said(code: int, status: str | None, text: str) -> Reply:
    """Pass on an upstream refusal, prefixed so the client can tell who refused.

    Upstream text is untrusted: it is cut to one printable ASCII line.
    """
    if status is None or status[0] != str(code)[0]:
        status = f"{str(code)[0]}.0.0"
    clean = "".join(ch if 32 <= ord(ch) < 127 else "?" for ch in text)[:200]
    return Reply(code, status, f"Upstream refused: {clean}".rstrip())


_ENHANCED = re.compile(r"^([245])\.(\d{1,3})\.(\d{1,3})$")


def split_enhanced(text: str) -> tuple[str | None, str]:
    """`'5.1.1 No such user'` -> `('5.1.1', 'No such user')`."""
    head, _, rest = text.partition(" ")
    if _ENHANCED.match(head):
        return head, rest
    return None, text


# --- aiosmtpd's own replies ----------------------------------------------------------------
# aiosmtpd writes many replies itself, most without an enhanced status code. The server
# routes every line it sends through `translate()`, which maps them onto this catalogue.
# Keys are (verb, prefix of aiosmtpd's text); verb "*" matches any command.
AIOSMTPD_REPLIES: tuple[tuple[str, str, Reply], ...] = (
    ("*", "500 Error: bad syntax", SYNTAX_ERROR),
    ("*", "500 Command line too long", LINE_TOO_LONG),
    ("*", "500 Error: strict ASCII mode", NON_ASCII_COMMAND),
    ("*", "500 Error: command", COMMAND_UNRECOGNIZED),
    ("*", "500 Line too long", DATA_LINE_TOO_LONG),
    ("*", "500 Error: (", TEMPORARY_FAILURE),  # an exception text: never on the wire
    ("*", "500 Error: Cannot describe error", TEMPORARY_FAILURE),
    ("*", "502 5.5.1 Too many unrecognized", TOO_MANY_UNKNOWN_COMMANDS),
    ("*", "502 EXPN not implemented", NOT_IMPLEMENTED),
    ("*", "502 Could not VRFY", VRFY_DISABLED),
    ("*", "252 Cannot VRFY", VRFY_DISABLED),
    ("*", "501 Syntax: VRFY", PARAMETER_SYNTAX),
    ("*", "501 Syntax: HELO", HELO_SYNTAX),
    ("*", "501 Syntax: EHLO", EHLO_SYNTAX),
    ("*", "501 Syntax: MAIL", MAIL_SYNTAX),
    ("*", "501 Syntax: RCPT", RCPT_SYNTAX),
    ("*", "501 Syntax:", PARAMETER_SYNTAX),
    ("*", "501 Error: BODY", BODY_PARAMETER),
    ("*", "501 Error: SMTPUTF8 takes", SMTPUTF8_PARAMETER),
    ("*", "501 Error: SMTPUTF8 disabled", PARAMETER_NOT_IMPLEMENTED),
    ("*", "501 Not enough value", PARAMETER_SYNTAX),
    ("*", "501 Too many values", PARAMETER_SYNTAX),
    ("*", "501 5.7.0 Auth aborted", AUTH_ABORTED),
    ("*", "501 5.5.2 Can't decode base64", AUTH_BAD_BASE64),
    ("*", "501 5.5.2 Can't split auth value", AUTH_MALFORMED),
    ("*", "503 Error: send", HELO_FIRST),
    ("*", "503 Error: nested MAIL", NESTED_MAIL),
    ("*", "503 Error: need MAIL", NEED_MAIL),
    ("*", "503 Error: need RCPT", NEED_RCPT),
    ("*", "503 Already authenticated", AUTH_ALREADY),
    ("*", "504 5.5.4 Unrecognized authentication", AUTH_MECHANISM_UNKNOWN),
    ("*", "530 5.7.0 Authentication required", AUTH_REQUIRED),
    ("*", "530 Must issue a STARTTLS", STARTTLS_FIRST),
    ("*", "538 5.7.11", AUTH_ENCRYPTION_REQUIRED),
    ("*", "535 5.7.8", AUTH_INVALID),
    ("*", "235 2.7.0", AUTH_OK),
    ("*", "454 TLS not available", TLS_NOT_AVAILABLE),
    ("*", "554 Command refused due to lack of security", TLS_REFUSED),
    ("*", "220 Ready to start TLS", READY_FOR_TLS),
    ("*", "552 Error: message size exceeds", MESSAGE_TOO_BIG),
    ("*", "552 Error: Too much mail data", MESSAGE_TOO_BIG),
    ("*", "555 MAIL FROM parameters", PARAMETER_NOT_IMPLEMENTED),
    ("*", "555 RCPT TO parameters", PARAMETER_NOT_IMPLEMENTED),
    ("MAIL", "553 5.1.3", SENDER_MALFORMED),  # aiosmtpd says 5.1.3 for both; RFC 3463: 5.1.7
    ("RCPT", "553 5.1.3", RECIPIENT_MALFORMED),
    ("*", "421 4.7.0", TOO_MANY_COMMANDS),
    ("*", "250 OK", OK),
    ("*", "221 Bye", BYE),
    ("*", "250 Syntax:", HELP),
    ("*", "250 Supported commands:", HELP),
    ("*", "501 Supported commands:", PARAMETER_SYNTAX),
)

# Replies that RFC 2034 s 3 exempts from enhanced codes (greeting, HELO/EHLO lines) and the
# intermediate replies of DATA and AUTH, which Postfix sends bare too.
_EXEMPT_PREFIXES = ("220 ", "250-", "334 ", "354 ")
_HAS_ENHANCED = re.compile(r"^\d{3}[ -][245]\.\d{1,3}\.\d{1,3} ")


_CODED_BY_AIOSMTPD = tuple(p for _, p, _ in AIOSMTPD_REPLIES if _HAS_ENHANCED.match(p + " "))


def translate(verb: str, line: str) -> str:
    """Map one reply line aiosmtpd wants to send onto the catalogue."""
    if verb in ("EHLO", "HELO") and line.startswith("250"):
        return line
    if _HAS_ENHANCED.match(line) and not line.startswith(_CODED_BY_AIOSMTPD):
        return line  # the gateway's own replies: already from this catalogue
    if line.startswith(("334 ", "354 ")):
        return line
    for match_verb, prefix, reply in AIOSMTPD_REPLIES:
        if (match_verb == "*" or match_verb == verb) and line.startswith(prefix):
            return str(reply)
    if line.startswith(_EXEMPT_PREFIXES):  # the 220 greeting
        return line
    if _HAS_ENHANCED.match(line):
        return line
    # Unknown line without an enhanced code: never guess a permanent code for it.
    return str(TEMPORARY_FAILURE)
