"""Tenant settings: what a tenant may change, each within the floors the operator sets.

Stored as JSON on the tenant row; validated here with the same named errors as the operator
configuration. Later issues add their keys (policy modes, templates) to `SCHEMA`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from gateway.config import Config
from gateway.errors import InvalidValue


@dataclass(frozen=True, slots=True)
class Setting:
    kind: type
    describe: str
    ceiling: Callable[[Config], int] | None = None  # the operator's limit a tenant cannot pass
    default: Callable[[Config], Any] | None = None


SCHEMA: Mapping[str, Setting] = {
    "max_recipients": Setting(
        int, "recipients per message", ceiling=lambda c: c.smtp.max_recipients,
        default=lambda c: c.tenants.max_recipients,
    ),
    "max_message_size": Setting(
        int, "message size in bytes", ceiling=lambda c: c.smtp.max_message_size,
        default=lambda c: c.tenants.max_message_size,
    ),
}


def parse(key: str, raw: str, config: Config) -> Any:
    """Parse and validate one value given as text (CLI), raising InvalidValue with the rule."""
    setting = SCHEMA.get(key)
    if setting is None:
        known = ", ".join(sorted(SCHEMA))
        raise InvalidValue(f"Tenant setting '{key}' does not exist (known: {known}).")
    if setting.kind is int:
        try:
            value: Any = int(raw)
        except ValueError:
            message = f"Tenant setting '{key}' has value {raw!r}. Not a valid int."
            raise InvalidValue(message) from None
    else:
        value = raw
    validate(key, value, config)
    return value


def validate(key: str, value: Any, config: Config) -> None:
    setting = SCHEMA[key]
    if setting.kind is int:
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise InvalidValue(f"Tenant setting '{key}' has value {value!r}. Must be at least 1.")
        if setting.ceiling is not None and value > setting.ceiling(config):
            raise InvalidValue(
                f"Tenant setting '{key}' has value {value!r}. The operator allows at most "
                f"{setting.ceiling(config)} {setting.describe}."
            )


def effective(stored: Mapping[str, Any], config: Config) -> dict[str, Any]:
    """Every setting's value for one tenant: stored values clamped to today's ceilings."""
    values: dict[str, Any] = {}
    for key, setting in SCHEMA.items():
        value = stored.get(key)
        if value is None and setting.default is not None:
            value = setting.default(config)
        if setting.ceiling is not None and isinstance(value, int):
            value = min(value, setting.ceiling(config))  # the operator lowered a ceiling
        values[key] = value
    return values
