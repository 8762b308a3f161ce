"""Compliance review: held and refused messages, kept sealed, decided by people."""
