"""The gateway CLI as an operator runs it: a real process, a real database."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from gateway.errors import ConfigError, Conflict, InvalidValue, NotFound, StoreError
from tests.conftest import Database, Pki, write_config


def test_directory_lifecycle_with_audited_changes(gw):
    assert gw("tenant", "list").returncode == StoreError.exit_code  # not migrated yet
    assert gw("db", "upgrade").returncode == 0
    assert gw("tenant", "add", "acme").returncode == 0
    assert gw("domain", "add", "acme", "ACME.Example").stdout.strip() == (
        "domain acme.example added to acme")
    added = gw("login", "add", "acme", "tool", "--password-stdin",
               stdin="a long enough password\n")
    assert added.returncode == 0, added.stderr
    assert gw("mailbox", "add", "acme", "Sales@acme.example", "--upstream", "sink").returncode == 0
    assert gw("mailbox", "pause", "sales@acme.example", "--reason", "warm-up").returncode == 0
    listed = gw("mailbox", "list").stdout
    assert "acme\tsales@acme.example\tsink\tpaused  (warm-up)" in listed
    assert gw("tenant", "suspend", "acme", "--reason", "billing").returncode == 0
    assert "acme\tsuspended  (billing)" in gw("tenant", "list").stdout
    assert gw("tenant", "resume", "acme").returncode == 0
    assert gw("login", "list").stdout.strip() == "acme\ttool"
    assert gw("login", "remove", "tool").returncode == 0
    assert gw("mailbox", "remove", "sales@acme.example").returncode == 0


ERRORS = [
    (("tenant", "add", "Bad Name"), InvalidValue.exit_code, "must be 1-100 characters"),
    (("tenant", "add", "acme"), Conflict.exit_code, "Tenant 'acme' exists already."),
    (("domain", "add", "nobody", "x.example"), NotFound.exit_code, "Tenant 'nobody' does not"),
    (("domain", "add", "acme", "not a domain"), InvalidValue.exit_code, "is not a valid"),
    (("mailbox", "add", "acme", "a@elsewhere.example", "--upstream", "sink"),
     InvalidValue.exit_code, "is not on one of tenant 'acme''s domains"),
    (("mailbox", "add", "acme", "a@acme.example", "--upstream", "nope"),
     InvalidValue.exit_code, "Upstream 'nope' is not configured"),
    (("tenant", "set", "acme", "max_recipients", "1000"), InvalidValue.exit_code,
     "The operator allows at most 20 recipients per message."),
    (("tenant", "set", "acme", "colour", "blue"), InvalidValue.exit_code,
     "Tenant setting 'colour' does not exist"),
    (("login", "remove", "ghost"), NotFound.exit_code, "Login 'ghost' does not exist."),
]


def test_errors_are_one_line_with_distinct_exit_codes(gw):
    """Each mistake on one prepared database (none of them changes it)."""
    gw("db", "upgrade")
    gw("tenant", "add", "acme")
    gw("domain", "add", "acme", "acme.example")
    wrong = []
    for args, code, message in ERRORS:
        result = gw(*args)
        if not (result.returncode == code and result.stderr.count("\n") == 1
                and "Traceback" not in result.stderr and message in result.stderr):
            wrong.append((args, code, message, result.returncode, result.stderr[-500:]))
    assert wrong == []


def test_password_is_never_taken_from_argv_and_short_ones_are_refused(gw):
    gw("db", "upgrade")
    gw("tenant", "add", "acme")
    result = gw("login", "add", "acme", "tool", "--password", "secret")
    assert result.returncode == 2 and "No such option" in result.stderr
    short = gw("login", "add", "acme", "tool", "--password-stdin", stdin="short\n")
    assert short.returncode == InvalidValue.exit_code
    assert "short" not in short.stderr.replace("at least", "")


def test_login_add_offers_a_generated_password(gw):
    gw("db", "upgrade")
    gw("tenant", "add", "acme")
    made = gw("login", "add", "acme", "tool", "--generate")
    assert made.returncode == 0, made.stderr
    password = made.stdout.split("password: ", 1)[1].split()[0]
    assert len(password) >= 32
    again = gw("login", "add", "acme", "tool2", "--generate")
    assert again.stdout.split("password: ", 1)[1].split()[0] != password
    both = gw("login", "add", "acme", "tool3", "--generate", "--password-stdin", stdin="x\n")
    assert both.returncode == InvalidValue.exit_code and both.stderr.count("\n") == 1


def test_bad_configuration_stops_with_the_key_named(tmp_path: Path):
    path = tmp_path / "bad.toml"
    path.write_text("[smtp]\nmax_recipients = 'many'\n")
    result = subprocess.run([sys.executable, "-m", "gateway", "--config", str(path),
                             "check-config"], capture_output=True, text=True, timeout=30)
    assert result.returncode == ConfigError.exit_code
    assert result.stderr == ("gateway: error: Config 'smtp.max_recipients' has value 'many'. "
                             "Not a valid int.\n")


def test_check_config_reports_a_missing_master_key(gw, tmp_path: Path):
    (tmp_path / "master.key").unlink()
    result = gw("check-config")
    assert result.returncode == 6 and "does not exist" in result.stderr


def test_check_config_warns_of_a_mailto_address_nothing_receives(tmp_path: Path, pki: Pki,
                                                                 database: Database):
    path = write_config(tmp_path, pki, database, sink_port=2525)
    text = path.read_text().replace('mailto_listen = "127.0.0.1"',
                                    'mailto_domain = "links.gw.test"')
    path.write_text(text)
    result = subprocess.run([sys.executable, "-m", "gateway", "--config", str(path),
                             "check-config"], capture_output=True, text=True, timeout=30)
    assert result.returncode == 0, result.stderr
    assert result.stderr.startswith("gateway: warning: unsubscribe.mailto_domain is ")
    assert "unsubscribe.mailto_listen is empty" in result.stderr
    (tmp_path / "fine").mkdir()
    fine = write_config(tmp_path / "fine", pki, database, sink_port=2525)
    ok = subprocess.run([sys.executable, "-m", "gateway", "--config", str(fine),
                         "check-config"], capture_output=True, text=True, timeout=30)
    assert ok.returncode == 0 and ok.stderr == ""


def test_every_command_and_option_has_help_text():
    """`gateway COMMAND --help` explains every command and each of its options; the CLI
    reference (docs/cli.md) is generated from the same text."""
    import click

    from gateway.cli.main import cli

    missing = []

    def walk(command: click.Command, path: str) -> None:
        if not (command.help or command.short_help):
            missing.append(path)
        for param in command.params:
            if isinstance(param, click.Option) and not param.hidden and not param.help:
                missing.append(f"{path} {param.opts[0]}")
        if isinstance(command, click.Group):
            for name, sub in command.commands.items():
                walk(sub, f"{path} {name}")

    walk(cli, "gateway")
    assert missing == []


def test_the_cli_reference_is_generated_from_the_help_text():
    """docs/cli.md is `make docs`'s output for the commands as they are now."""
    from gateway.cli.reference import markdown

    reference = Path(__file__).parents[2] / "docs/cli.md"
    assert reference.read_text() == markdown(), "docs/cli.md is stale: run 'make docs'"
