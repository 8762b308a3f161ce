"""`gateway suppress` as an operator runs it: a real process, a real database."""

from __future__ import annotations

from pathlib import Path

from gateway.errors import InvalidValue


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


def test_a_large_file_is_parsed_by_a_second_process_with_the_same_outcome(
        gw, tmp_path: Path):  # noqa: F811
    """Over 8 MB the CLI hands parsing to `python -m suppression.parser`: the entries, the
    bad lines and the counts are what a small file's in-process import gives."""
    assert gw("db", "upgrade").returncode == 0
    assert gw("tenant", "add", "acme").returncode == 0
    listing = tmp_path / "big.txt"
    with listing.open("w") as out:
        for i in range(300_000):
            out.write(f"bad address {i}\n" if i % 50_000 == 7 else
                      f"person.{i}+tag@d{i % 997}.example.com\n")
    assert listing.stat().st_size > 8 << 20
    done = gw("suppress", "import", str(listing), "--tenant", "acme")
    assert done.returncode == 0, done.stderr
    assert "imported 300000 rows" in done.stdout and "299994 entries written, 6 bad" in done.stdout
    assert [line.split(":")[0] for line in done.stderr.splitlines()[:6]] == [
        f"line {i + 1}" for i in range(7, 300_000, 50_000)]
    for address, suppressed in ((f"Person.299999@D{299_999 % 997}.example.com", True),
                                ("person.7@d7.example.com", False)):
        checked = gw("suppress", "check", address, "--tenant", "acme")
        assert checked.returncode == (1 if suppressed else 0), checked.stdout


def test_vendor_files_import_and_a_file_of_only_bad_rows_fails(gw, tmp_path: Path):  # noqa: F811
    from tests.support.formats import AWS_CLI_JSON

    assert gw("db", "upgrade").returncode == 0
    assert gw("tenant", "add", "acme").returncode == 0
    aws = tmp_path / "suppressed.json"  # aws sesv2 list-suppressed-destinations > ...
    aws.write_bytes(AWS_CLI_JSON)
    done = gw("suppress", "import", str(aws), "--tenant", "acme")
    assert done.returncode == 0, done.stderr
    assert "2 entries written, 1 bad" in done.stdout and "line 14:" in done.stderr
    assert gw("suppress", "check", "complained@example.com", "--tenant", "acme").returncode == 1
    plain = tmp_path / "plain.txt"
    plain.write_bytes(b'"john doe"@example.com\n')
    assert gw("suppress", "import", str(plain), "--tenant", "acme").returncode == 0
    assert gw("suppress", "check", '"john doe"@example.com', "--tenant", "acme").returncode == 1
    wrong = tmp_path / "wrong.csv"
    wrong.write_bytes(b"email,created\nnobody,1\nstill nobody,2\n")
    failed = gw("suppress", "import", str(wrong), "--tenant", "acme")
    assert failed.returncode == InvalidValue.exit_code
    assert "0 entries written, 2 bad" in failed.stdout
    assert failed.stderr.splitlines()[-1].startswith("gateway: error: No entry written")
