"""Suppression lists: canonical addresses, keyed digests, entries and their store.

A library with no dependency on `gateway`. Its public surface is importable from the package
(`from suppression import canonical, Reason, SuppressionStore`); each name is loaded from its
module on first use, so the parser process (`python -m suppression.parser`) does not pay for
the database modules it never touches.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "canonical": "canonical", "canonical_domain": "canonical", "InvalidAddress": "canonical",
    "Digester": "digest",
    "Entry": "entries", "NewEntry": "entries", "Kind": "entries", "Reason": "entries",
    "Target": "entries", "GLOBAL": "entries",
    "Format": "formats", "read": "formats", "decoded_lines": "formats",
    "export_row": "formats", "OCG_HEADER": "formats",
    "SuppressionStore": "store", "Filters": "store", "entry_from_row": "store",
    "Lookup": "lookup", "lookup_for": "lookup",
    "suppressions": "schema",
    "Report": "bulk",
    "batches_for": "parallel",
}
__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'suppression' has no attribute {name!r}")
    return getattr(importlib.import_module(f"suppression.{module}"), name)
