"""The gateway's exceptions. Each maps once to an SMTP reply, an HTTP status and a CLI exit code.

    GatewayError
    ├── ConfigError          bad operator configuration; start-up stops (exit 2)
    ├── NotFound             a named tenant, login, domain or mailbox does not exist (exit 3)
    ├── Conflict             it exists already, or the change contradicts another row (exit 4)
    ├── InvalidValue         a value given by a person fails its rule (exit 5)
    ├── VaultError           the master key is missing or cannot open a secret (451 4.3.5, exit 6)
    ├── StoreError           the database is unreachable or at the wrong schema (451 4.3.0, exit 7)
    └── NetworkError         a remote service (DNS, a token endpoint, an SMTP or IMAP server)
                             did not answer in time or refused us (HTTP 504, exit 8)

Messages never carry a secret, a message body or an exception text from a library.
"""

from __future__ import annotations

import errno


class GatewayError(Exception):
    exit_code = 1

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class ConfigError(GatewayError):
    """A configuration key or value is wrong (the message names it)."""

    exit_code = 2


class NotFound(GatewayError):
    """Not found: the named tenant, login, mailbox, entry or copy does not exist."""

    exit_code = 3


class Conflict(GatewayError):
    """Conflict: it exists already, or its state does not allow this now."""

    exit_code = 4


class InvalidValue(GatewayError):
    """Invalid value: an argument or a file's content was refused (the message says why)."""

    exit_code = 5


class VaultError(GatewayError):
    """Vault: a master, purpose or tenant key is missing or does not open."""

    exit_code = 6


class StoreError(GatewayError):
    """Database: it did not answer, has no schema yet, or refused the write."""

    exit_code = 7


class NetworkError(GatewayError):
    """Network: a DNS server, token endpoint or mail server did not answer or refused."""

    exit_code = 8


class PortUnavailable(GatewayError):
    """Port: a listener's address cannot be bound (in use, or privileged for this user)."""

    exit_code = 9


# The setting that moves each listener, named in the error.
_PORT_SETTINGS = {"submission": "smtp.submission_port", "implicit TLS": "smtp.implicit_tls_port",
                  "mailto": "unsubscribe.mailto_port", "public HTTP": "http.public_port",
                  "admin HTTP": "http.admin_port"}


def port_unavailable(listener: str, host: str, port: int, error: OSError) -> PortUnavailable:
    """One line an operator can act on, instead of an OSError from deep in asyncio."""
    if error.errno == errno.EADDRINUSE:
        why = "the address is already in use (another process listens there)"
    elif error.errno in (errno.EACCES, errno.EPERM):
        why = "this user may not bind it (ports below 1024 need CAP_NET_BIND_SERVICE)"
    elif error.errno == errno.EADDRNOTAVAIL:
        why = "no interface of this machine has that address"
    else:
        why = error.strerror or type(error).__name__
    setting = _PORT_SETTINGS.get(listener)
    hint = f"; choose another with {setting}" if setting else ""
    return PortUnavailable(f"The {listener} listener cannot listen on {host}:{port}: "
                           f"{why}{hint}.")
