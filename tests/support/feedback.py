"""Where the real bounce, complaint and reply samples are (tests/fixtures/feedback)."""

from __future__ import annotations

from pathlib import Path

FEEDBACK = Path(__file__).resolve().parents[1] / "fixtures" / "feedback"
