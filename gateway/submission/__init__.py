"""Hand-off: the one place a message goes decide → keep → fix → deliver → record, at DATA
(`handoff.py`) and when a reviewer releases it (`releases.py`)."""
