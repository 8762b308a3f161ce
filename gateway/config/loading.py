"""Reading the file and the environment into frozen sections, each value of its declared
type (a wrong type is one line naming the key, the value and the type)."""

from __future__ import annotations

import dataclasses
import tomllib
import types
import typing
from collections.abc import Mapping
from typing import Any, Literal

from gateway.config.rules import shown
from gateway.config.schema import ENV_PREFIX
from gateway.errors import ConfigError


def read_file(path: str) -> dict[str, Any]:
    try:
        with open(path, "rb") as fh:
            return tomllib.load(fh)
    except FileNotFoundError:
        raise ConfigError(f"Config file '{path}' does not exist.") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"Config file '{path}' is not valid TOML: {exc}.") from None


def apply_environment(table: dict[str, Any], environ: Mapping[str, str]) -> None:
    for name, raw in environ.items():
        if not name.startswith(ENV_PREFIX):
            continue
        keys = [part.lower() for part in name[len(ENV_PREFIX) :].split("__")]
        if not all(keys):
            raise ConfigError(f"Environment variable '{name}' does not name a config key.")
        node = table
        for key in keys[:-1]:
            child = node.setdefault(key, {})
            if not isinstance(child, dict):
                raise ConfigError(f"Environment variable '{name}' overrides a non-table key.")
            node = child
        node[keys[-1]] = _env_value(raw)


def _env_value(raw: str) -> Any:
    """Environment values are TOML literals when they parse as one, else plain strings."""
    try:
        return tomllib.loads(f"v = {raw}")["v"]
    except tomllib.TOMLDecodeError:
        return raw


def build(cls: type[Any], table: Any, prefix: str) -> Any:
    if not isinstance(table, dict):
        raise ConfigError(f"Config '{prefix}' has value {shown(prefix, table)}. Not a table.")
    hints = typing.get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls)}
    for key in table:
        if key not in names:
            raise ConfigError(f"Config '{prefix}{key}' is not a known setting.")
    values = {}
    for f in dataclasses.fields(cls):
        if f.name in table:
            values[f.name] = _coerce(hints[f.name], table[f.name], f"{prefix}{f.name}")
    return cls(**values)


def _coerce(hint: Any, value: Any, key: str) -> Any:
    origin = typing.get_origin(hint)
    if dataclasses.is_dataclass(hint):
        return build(typing.cast(type, hint), value, f"{key}.")
    if origin is Literal:
        allowed = typing.get_args(hint)
        if value not in allowed:
            choices = ", ".join(repr(a) for a in allowed)
            raise ConfigError(
                f"Config '{key}' has value {shown(key, value)}. Must be one of {choices}.")
        return value
    if origin in (Mapping, dict) or origin is typing.Mapping:
        _, item = typing.get_args(hint)
        if not isinstance(value, dict):
            raise ConfigError(f"Config '{key}' has value {shown(key, value)}. Not a table.")
        return types.MappingProxyType({k: _coerce(item, v, f"{key}.{k}") for k, v in value.items()})
    if origin is tuple:
        (item, _ellipsis) = typing.get_args(hint)
        if not isinstance(value, list):
            raise ConfigError(f"Config '{key}' has value {shown(key, value)}. Not a list.")
        return tuple(_coerce(item, v, f"{key}[{i}]") for i, v in enumerate(value))
    if hint is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"Config '{key}' has value {shown(key, value)}. Not a valid bool.")
        return value
    if hint is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"Config '{key}' has value {shown(key, value)}. Not a valid int.")
        return value
    if hint is float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ConfigError(f"Config '{key}' has value {shown(key, value)}. Not a valid number.")
        return float(value)
    if hint is str:
        if not isinstance(value, str):
            raise ConfigError(f"Config '{key}' has value {shown(key, value)}. Not a valid string.")
        return value
    raise TypeError(f"unsupported config type {hint!r} for {key}")  # a bug in this module
