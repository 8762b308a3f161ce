"""Which configuration file a `gateway` command reads when none is named.

In order: `--config` or `$GATEWAY_CONFIG`; the system file `/etc/ocg/gateway.toml`; and, only
in a checkout where `make run` has left its marker in `var/`, that checkout's
`deploy/development.toml`, so the README's commands work as printed after `make run`. The
development file is never chosen when its `environment` is not explicitly `development`:
a fallback must not quietly point a command at production data.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from pathlib import Path

SYSTEM_CONFIG = Path("/etc/ocg/gateway.toml")
DEVELOPMENT_CONFIG = Path("deploy/development.toml")
# Written by `make run` (the Makefile) in the checkout's data directory.
MAKE_RUN_MARKER = Path("var/.make-run")


@dataclass(frozen=True, slots=True)
class Located:
    path: str | None
    development_fallback: bool = False  # the checkout's development file, chosen by default


def locate(named: str | None, cwd: Path, system: Path = SYSTEM_CONFIG) -> Located:
    """The file to load; `Located(None)` when there is none (settings from the environment
    only)."""
    if named:
        return Located(named)
    if system.exists():
        return Located(str(system))
    if (cwd / MAKE_RUN_MARKER).exists() and _is_development(cwd / DEVELOPMENT_CONFIG):
        return Located(str(DEVELOPMENT_CONFIG), development_fallback=True)
    return Located(None)


def _is_development(path: Path) -> bool:
    try:
        with open(path, "rb") as fh:
            return tomllib.load(fh).get("environment") == "development"
    except (OSError, tomllib.TOMLDecodeError):
        return False


NO_FILE_HINT = ("no configuration file was named: pass --config FILE or set GATEWAY_CONFIG "
                "(in a checkout, 'make run' once makes deploy/development.toml the default)")
