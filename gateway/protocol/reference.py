"""docs/smtp-replies.md, generated from the reply catalogue (`protocol/replies.py`):
`make docs` writes it, and a test keeps the file equal to what this prints."""

from __future__ import annotations

import re
from pathlib import Path

from gateway.protocol import replies
from gateway.protocol.replies import Reply

INTRO = """\
# SMTP replies

Generated from `gateway/protocol/replies.py`, the one catalogue of what the gateway says,
by `make docs`; do not edit by hand. Which situation gives which reply, and what happens to
a message with several recipients, is in [smtp.md](smtp.md).
"""


def _sections() -> list[tuple[str, list[tuple[str, Reply]]]]:
    """(section, [(name, reply)]) in the catalogue's own order and sections."""
    source = Path(replies.__file__).read_text()
    sections: list[tuple[str, list[tuple[str, Reply]]]] = []
    for line in source.splitlines():
        heading = re.match(r"# --- (.+?) -+$", line)
        if heading:
            sections.append((heading.group(1), []))
            continue
        assigned = re.match(r"([A-Z][A-Z0-9_]*) = ", line)
        if assigned and sections:
            value = getattr(replies, assigned.group(1))
            if isinstance(value, Reply):
                sections[-1][1].append((assigned.group(1), value))
            elif isinstance(value, dict):
                sections[-1][1].extend((f"{assigned.group(1)}[{key!r}]", reply)
                                       for key, reply in value.items()
                                       if isinstance(reply, Reply))
    return [(title, rows) for title, rows in sections if rows]


def _cell(text: str) -> str:
    return text.replace("|", "\\|")


def markdown() -> str:
    out = [INTRO]
    for title, rows in _sections():
        out.append(f"\n## {title}\n\n| name | code | status | text |\n|---|---|---|---|\n")
        out.extend(f"| `{name}` | {r.code} | {r.status} | {_cell(r.text)} |\n"
                   for name, r in rows)
    return "".join(out)


if __name__ == "__main__":
    print(markdown(), end="")
