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


class GatewayError(Exception):
    exit_code = 1

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class ConfigError(GatewayError):
    exit_code = 2


class NotFound(GatewayError):
    exit_code = 3


class Conflict(GatewayError):
    exit_code = 4


class InvalidValue(GatewayError):
    exit_code = 5


class VaultError(GatewayError):
    exit_code = 6


class StoreError(GatewayError):
    exit_code = 7


class NetworkError(GatewayError):
    exit_code = 8
