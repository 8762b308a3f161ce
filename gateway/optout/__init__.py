"""Opt-outs: the unsubscribe token, and the one place an opt-out is recorded."""
