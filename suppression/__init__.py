"""Suppression lists: canonical addresses, keyed digests, entries and their store.

A library with no dependency on `gateway`. Its contents arrive with issue 5; the package is
declared now so the distribution's layout is final.
"""

__all__: list[str] = []
