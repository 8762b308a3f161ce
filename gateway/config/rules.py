"""Checking values: each setting's own rule (from the schema), each section's checks, and
every broken rule reported at once, one line each: `Config '<key>' has value <v>. <rule>`."""

from __future__ import annotations

import dataclasses
import ipaddress
import typing
import urllib.parse
from collections.abc import Callable, Iterator
from contextvars import ContextVar
from typing import Any

from gateway.config.schema import entries_type, entry_type, is_section
from gateway.errors import ConfigError

_SECRET_KEYS = ("password", "secret", "token")


def shown(key: str, value: Any) -> str:
    """The value as an error message may show it: never a secret's value."""
    if key.rsplit(".", 1)[-1].endswith(_SECRET_KEYS):
        return "'***'"
    return repr(value)


# While `collected` runs, every broken rule is gathered here, so one start-up reports them all.
_PROBLEMS: ContextVar[list[str] | None] = ContextVar("config_problems", default=None)


def require(ok: bool, key: str, value: Any, rule: str) -> None:
    if ok:
        return
    message = f"Config '{key}' has value {shown(key, value)}. {rule}"
    problems = _PROBLEMS.get()
    if problems is None:
        raise ConfigError(message)
    problems.append(message)


def collected(run: Callable[[], None]) -> None:
    """Run the checks; raise one ConfigError naming every broken rule, in order."""
    problems: list[str] = []
    token = _PROBLEMS.set(problems)
    try:
        run()
    finally:
        _PROBLEMS.reset(token)
    if problems:
        raise ConfigError("\n".join(dict.fromkeys(problems)))


def field_rules(value: Any, prefix: str = "") -> None:
    """Every setting's own rule, for the values of a section and the sections under it."""
    hints = typing.get_type_hints(type(value))
    for f in dataclasses.fields(value):
        current, hint, key = getattr(value, f.name), hints[f.name], f"{prefix}{f.name}"
        rule = f.metadata.get("rule")
        if is_section(hint):
            field_rules(current, key + ".")
        elif entry_type(hint) is not None:
            for name, item in current.items():
                field_rules(item, f"{key}.{name}.")
        elif entries_type(hint) is not None:
            for i, item in enumerate(current):
                field_rules(item, f"{key}[{i}].")
        elif rule is not None:
            require(rule.holds(current), key, current, rule.text)


def networks(values: tuple[str, ...], key: str, what: str = "Not an IP address or network."
             ) -> Iterator[tuple[int, ipaddress.IPv4Network | ipaddress.IPv6Network]]:
    """(index, network) of the networks among `values`; each one that is not is reported
    under its index."""
    for i, raw in enumerate(values):
        try:
            yield i, ipaddress.ip_network(raw, strict=False)
        except ValueError:
            require(False, f"{key}[{i}]", raw, what)


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def is_private(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        ip = ipaddress.ip_address(host)
    except ValueError:
        return False
    # 0.0.0.0 and :: count as private to ipaddress, but listen on every interface
    return ip.is_private and not ip.is_unspecified


def secure_url(url: str) -> bool:
    """https://, or http:// to a loopback host."""
    parsed = urllib.parse.urlsplit(url)
    if not parsed.hostname:
        return False
    if parsed.scheme == "https":
        return True
    return parsed.scheme == "http" and is_loopback(parsed.hostname)
