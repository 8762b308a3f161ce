"""`gateway send-test`: one message through this gateway's own submission port, the way a
campaign tool sends it (STARTTLS, AUTH, MAIL, RCPT, DATA), needing no other program.

In development the demo's login and sender are the defaults and the certificate checked is
the generated one; elsewhere name the login and sender, and the certificate is checked
against the system's trust store for `smtp.hostname`.
"""

from __future__ import annotations

import smtplib
import ssl
import sys
from email.message import EmailMessage
from email.policy import SMTP
from email.utils import formatdate, make_msgid
from pathlib import Path

import click

from gateway.cli import shared
from gateway.cli.demo import DEMO_LOGIN, DEMO_MAILBOX
from gateway.config import Config
from gateway.errors import InvalidValue, NetworkError

# An image a campaign tool would put in: the gateway takes such pixels over (docs/pixels.md).
TRACKER = '<img src="https://t.example/o.gif" width="1" height="1" alt="">'
REFUSED_EXIT = 1


@click.command("send-test")
@click.option("--to", "recipient", default="alice@example.org", show_default=True,
              help="The recipient.")
@click.option("--from", "sender", default=None,
              help=f"Envelope and header sender (development default: {DEMO_MAILBOX}).")
@click.option("--login", default=None,
              help=f"SMTP login (development default: {DEMO_LOGIN}, password from the demo).")
@click.option("--password-stdin", is_flag=True,
              help="Read the login's password from stdin (else prompted, or the demo's).")
@click.option("--html", is_flag=True,
              help="Send an HTML part with a tracking pixel too (shows the pixel takeover).")
@click.option("--subject", default="A test through the gateway", show_default=True,
              help="The Subject field.")
@click.option("--server", default=None, metavar="HOST:PORT",
              help="Where to submit (default: 127.0.0.1 in development, else smtp.hostname; "
              "port smtp.submission_port).")
@click.pass_context
def send_test(ctx: click.Context, recipient: str, sender: str | None, login: str | None,
              password_stdin: bool, html: bool, subject: str, server: str | None) -> None:
    """Send one message through this gateway and print its reply (exit 1 if refused)."""
    config = shared.load_config(ctx)
    login, sender, password = _identity(config, login, sender, password_stdin)
    host, port = _server(config, server)
    message = _message(sender, recipient, subject, html)
    try:
        with smtplib.SMTP(host, port, timeout=60) as smtp:
            smtp.starttls(context=_tls_context(config))
            smtp.login(login, password)
            code, reply = _submit(smtp, sender, recipient, message.as_bytes())
    except smtplib.SMTPResponseException as exc:
        error = exc.smtp_error
        text = error.decode(errors="replace") if isinstance(error, bytes) else error
        click.echo(f"gateway: refused: {exc.smtp_code} {text}", err=True)
        sys.exit(REFUSED_EXIT)
    except (OSError, smtplib.SMTPException) as exc:
        raise shared.CliError(f"Cannot submit to {host}:{port} ({type(exc).__name__}).",
                       NetworkError.exit_code) from None
    if code >= 400:
        click.echo(f"gateway: refused: {code} {reply}", err=True)
        sys.exit(REFUSED_EXIT)
    click.echo(f"{code} {reply}")
    for name, upstream in config.upstreams.items():
        if upstream.kind == "maildir":
            click.echo(f"copies of upstream '{name}' land in {Path(upstream.path) / 'new'}/")


def _submit(smtp: smtplib.SMTP, sender: str, recipient: str, data: bytes) -> tuple[int, str]:
    """MAIL, RCPT, DATA; the first refusal or the DATA reply."""
    code, reply = smtp.mail(sender)
    if code < 400:
        code, reply = smtp.rcpt(recipient)
    if code < 400:
        code, reply = smtp.data(data)
    return code, reply.decode(errors="replace")


def _identity(config: Config, login: str | None, sender: str | None,
              password_stdin: bool) -> tuple[str, str, str]:
    from gateway.app.service import demo_credentials_path

    if login is None and config.is_development:
        creds = demo_credentials_path(config)
        if not creds.exists():
            raise shared.CliError("No demo credentials yet: run 'make run' (or 'gateway "
                                  "demo') first.", InvalidValue.exit_code)
        # "demo login: demo  password: <p>  sender: <s>"
        words = creds.read_text().split("\n", 1)[0].split()
        return DEMO_LOGIN, sender or words[words.index("sender:") + 1], \
            words[words.index("password:") + 1]
    if login is None or sender is None:
        raise shared.CliError("Name the login and the sender: --login USER --from ADDRESS.",
                       InvalidValue.exit_code)
    if password_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
    else:
        password = click.prompt("Password", hide_input=True)
    if not password:
        raise shared.CliError("No password given.", InvalidValue.exit_code)
    return login, sender, password


def _server(config: Config, server: str | None) -> tuple[str, int]:
    if server:
        host, _, port = server.rpartition(":")
        if not host or not port.isdigit():
            raise shared.CliError(f"--server '{server}' is not HOST:PORT.", InvalidValue.exit_code)
        return host.strip("[]"), int(port)
    host = "127.0.0.1" if config.is_development else config.smtp.hostname
    return host, config.smtp.submission_port


def _tls_context(config: Config) -> ssl.SSLContext:
    if config.smtp.tls_self_signed:
        from gateway.smtp.tls import tls_files

        cert, _key = tls_files(config)
        return ssl.create_default_context(cafile=cert)
    return ssl.create_default_context()


def _message(sender: str, recipient: str, subject: str, html: bool) -> EmailMessage:
    message = EmailMessage(policy=SMTP)  # CRLF line ends, as on the wire
    message["From"] = sender
    message["To"] = recipient
    message["Subject"] = subject
    message["Date"] = formatdate(localtime=False)
    message["Message-ID"] = make_msgid(domain=sender.rpartition("@")[2] or None)
    text = ("Hello,\n\nthis message went through the Outreach Compliance Gateway. Its copy "
            "carries a one-click unsubscribe link, a footer and DKIM signatures.\n")
    message.set_content(text)
    if html:
        message.add_alternative(
            f"<html><body><p>Hello,</p><p>this message went through the Outreach Compliance "
            f"Gateway.</p>{TRACKER}</body></html>", subtype="html")
    return message
