"""Lawful basis per recipient: the versioned table, the signals that place a recipient, and
the decision at send time (docs/lawful-basis.md). Not legal advice."""
