"""`gateway suppress` as an operator runs it: a real process, a real database."""

from __future__ import annotations

from pathlib import Path

from gateway.errors import InvalidValue
from tests.cli.test_cli import gw  # noqa: F401 - the fixture


def test_add_check_remove_import_export(gw, tmp_path: Path):  # noqa: F811
    assert gw("db", "upgrade").returncode == 0
    assert gw("tenant", "add", "acme").returncode == 0
    added = gw("suppress", "add", "Bob+x@Example.com", "--tenant", "acme",
               "--reason", "unsubscribe")
    assert added.returncode == 0 and "bob@example.com" in added.stdout
    assert gw("suppress", "check", "bob@example.com", "--tenant", "acme").returncode == 1
    assert gw("suppress", "check", "carol@example.com", "--tenant", "acme").returncode == 0
    assert gw("suppress", "add", "x@y.example").returncode == InvalidValue.exit_code
    refused = gw("suppress", "remove", "bob@example.com", "--tenant", "acme", "--reason", "r")
    assert refused.returncode == InvalidValue.exit_code and "evidence" in refused.stderr

    listing = tmp_path / "list.csv"
    listing.write_bytes(b"email,created\na@example.com,1443651141\nnot-an-address,1\n"
                        b"b@example.com,1443651142\n")
    strict = gw("suppress", "import", str(listing), "--tenant", "acme", "--strict")
    assert strict.returncode == InvalidValue.exit_code and "line 3" in strict.stderr
    assert gw("suppress", "check", "a@example.com", "--tenant", "acme").returncode == 0
    kept = gw("suppress", "import", str(listing), "--tenant", "acme")
    assert kept.returncode == 0 and "2 entries written, 1 bad" in kept.stdout
    assert "line 3:" in kept.stderr
    exported = gw("suppress", "export", "--tenant", "acme")
    assert exported.stdout.count("\n") == 4  # header + 3 entries
    out = tmp_path / "export.csv"
    out.write_text(exported.stdout)
    back = gw("suppress", "import", str(out), "--tenant", "acme")
    assert back.returncode == 0 and "3 entries written, 0 bad" in back.stdout
    assert gw("suppress", "export", "--tenant", "acme").stdout == exported.stdout
