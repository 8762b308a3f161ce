"""The `gateway` command: one module per command group, named after it (`tenant.py` is
`gateway tenant ...`), all added to the root group in `main.py`; `shared.py` holds what every
command shares; a command's parts come from the one wiring module, `gateway/app/parts.py`.
"""

from __future__ import annotations


def main() -> None:
    """Console entry point (`gateway` in pyproject.toml)."""
    from gateway.cli.main import main as run

    run()
