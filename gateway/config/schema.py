"""How a setting is described: once, where it is declared.

Each setting of a section (a frozen dataclass) is declared with `setting(default, doc,
rule)`: its type is the annotation, its default the value, its description the text the
reference page (`docs/configuration.md`) and the example file print, and its rule the
check every value must pass. Rules that compare settings with one another are the section's
own check (`Section.checks`). The environment override of `smtp.max_recipients` is
`GATEWAY__SMTP__MAX_RECIPIENTS`, derived from the key.

Why dataclasses and not pydantic-settings (already installed with FastAPI): the loader is
small and ours (`loading.py`), it keeps the error form `Config '<key>' has value <v>.
<rule>` and reports every broken rule at once, values stay frozen and slotted on the hot
path, and the ground floor of the house imports no third-party package.
"""

from __future__ import annotations

import dataclasses
import typing
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

ENV_PREFIX = "GATEWAY__"


@dataclass(frozen=True, slots=True)
class Rule:
    """What every value of a setting must satisfy, and how the error says it."""

    holds: Callable[[Any], bool]
    text: str  # e.g. "Must be greater than 0."


POSITIVE = Rule(lambda v: v > 0, "Must be greater than 0.")
PORT = Rule(lambda v: 0 <= v <= 65535, "Must be a port between 0 and 65535.")
REMOTE_PORT = Rule(lambda v: 0 < v <= 65535, "Must be a port between 1 and 65535.")
NO_LIMIT_OR_MORE = Rule(lambda v: v >= 0, "Must be 0 (no limit) or more.")
ZERO_OR_MORE = Rule(lambda v: v >= 0, "Must be 0 or more.")
NOT_NEGATIVE = Rule(lambda v: v >= 0, "Must not be negative.")
UP_TO_A_MINUTE = Rule(lambda v: 0 < v <= 60, "Must be between 0 and 60 seconds.")
NOT_EMPTY = Rule(bool, "Name at least one.")


def setting(default: Any, doc: str, rule: Rule | None = None) -> Any:
    """A setting with its default, its one description and its rule."""
    return field(default=default, metadata={"doc": doc, "rule": rule})


def required(doc: str, rule: Rule | None = None) -> Any:
    """A setting without a default (an upstream's kind, an IP credential's networks)."""
    return field(metadata={"doc": doc, "rule": rule})


def secret(doc: str) -> Any:
    """A string never shown: not in a repr, a log line or an error message."""
    return field(default="", repr=False, metadata={"doc": doc, "rule": None, "secret": True})


def section(cls: type[Any]) -> Any:
    """A table of settings; its docstring describes it."""
    return field(default_factory=cls)


@dataclass(frozen=True, slots=True)
class ConfigSetting:
    key: str  # dotted, with <name> for a table's entries: upstreams.<name>.host
    hint: Any
    default: Any  # dataclasses.MISSING for a required one
    doc: str
    rule: Rule | None
    secret: bool

    @property
    def env(self) -> str:
        return ENV_PREFIX + self.key.replace(".", "__").replace("<name>", "<NAME>").upper()


def is_section(hint: Any) -> bool:
    return dataclasses.is_dataclass(hint)


def entry_type(hint: Any) -> Any | None:
    """The section type of a `Mapping[str, Section]` table (upstreams, oauth, policy)."""
    if typing.get_origin(hint) in (Mapping, dict) or typing.get_origin(hint) is typing.Mapping:
        item = typing.get_args(hint)[1]
        return item if is_section(item) else None
    return None


def entries_type(hint: Any) -> Any | None:
    """The section type of a `tuple[Section, ...]` list ([[smtp.ip_credentials]])."""
    if typing.get_origin(hint) is tuple:
        item = typing.get_args(hint)[0]
        return item if is_section(item) else None
    return None


def _declared(f: dataclasses.Field[Any], hint: Any, key: str) -> ConfigSetting:
    default = f.default if f.default is not dataclasses.MISSING else (
        f.default_factory() if f.default_factory is not dataclasses.MISSING
        else dataclasses.MISSING)
    return ConfigSetting(key, hint, default, f.metadata.get("doc", ""), f.metadata.get("rule"),
                         bool(f.metadata.get("secret")))


def own_settings(cls: type[Any], prefix: str = "") -> list[ConfigSetting]:
    """The settings of one table, without the tables under it."""
    hints = typing.get_type_hints(cls)
    return [_declared(f, hints[f.name], f"{prefix}{f.name}") for f in dataclasses.fields(cls)
            if not (is_section(hints[f.name]) or entry_type(hints[f.name])
                    or entries_type(hints[f.name]))]


def settings(cls: type[Any], prefix: str = "") -> Iterator[ConfigSetting]:
    """Every setting of `cls` and its sections, in declaration order."""
    hints = typing.get_type_hints(cls)
    for f in dataclasses.fields(cls):
        hint = hints[f.name]
        key = f"{prefix}{f.name}"
        if is_section(hint):
            yield from settings(hint, key + ".")
        elif (item := entry_type(hint)) is not None:
            yield from settings(item, key + ".<name>.")
        elif (item := entries_type(hint)) is not None:
            yield from settings(item, key + "[].")
        else:
            yield _declared(f, hint, key)


def sections(cls: type[Any], prefix: str = "") -> Iterator[tuple[str, type[Any]]]:
    """(key, section type) of every table under `cls`, in declaration order."""
    hints = typing.get_type_hints(cls)
    for f in dataclasses.fields(cls):
        hint = hints[f.name]
        key = f"{prefix}{f.name}"
        item = hint if is_section(hint) else entry_type(hint)
        if item is not None:
            name = key if is_section(hint) else key + ".<name>"
            yield name, item
            yield from sections(item, name + ".")
        elif (item := entries_type(hint)) is not None:
            yield key + "[]", item
