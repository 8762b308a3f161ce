"""docs/cli.md, generated from the commands' own help text: `make docs` (or
`python -m gateway.cli.reference > docs/cli.md`) writes it, and a test keeps the file equal
to what this prints, so the reference never drifts from `gateway COMMAND --help`."""

from __future__ import annotations

import click

from gateway.cli.main import cli
from gateway.errors import GatewayError

INTRO = """\
# CLI reference

Generated from `gateway COMMAND --help` by `make docs`; do not edit by hand.

The configuration file is `--config FILE`, else `$GATEWAY_CONFIG`, else
`/etc/ocg/gateway.toml`, else, in a checkout where `make run` has run, its
`deploy/development.toml` (the command then says `using deploy/development.toml
(development)` on stderr; a file whose `environment` is not `development` is never taken
that way).

Passwords are prompted for, or read from stdin with `--password-stdin`; they are never taken
from the command line. Errors are one line on stderr with a distinct exit code:

| exit | meaning |
|---|---|
"""


def _exit_codes() -> str:
    rows = {}
    for kind in GatewayError.__subclasses__():
        doc = (kind.__doc__ or kind.__name__).strip().split("\n")[0].rstrip(".")
        rows[kind.exit_code] = doc[0].lower() + doc[1:]
    rows[1] = ("the answer is no: `suppress check` found an entry, `send-test` was refused, "
               "`audit verify` found tampering")
    rows[70] = "internal error (a bug: please report it)"
    return "".join(f"| {code} | {text} |\n" for code, text in sorted(rows.items()))


def _command(command: click.Command, ctx: click.Context, out: list[str]) -> None:
    if isinstance(command, click.Group):
        if command.invoke_without_command and ctx.parent is not None:
            _usage(command, ctx, out)  # `gateway report --tenant ...` runs on its own too
        for name, sub in command.commands.items():
            if not sub.hidden:
                _command(sub, click.Context(sub, info_name=name, parent=ctx), out)
        return
    _usage(command, ctx, out)


def _usage(command: click.Command, ctx: click.Context, out: list[str]) -> None:
    usage = " ".join(command.collect_usage_pieces(ctx))
    out.append(f"## `{ctx.command_path} {usage}`\n\n")
    out.append((command.help or "").strip() + "\n\n")
    options = [p for p in command.params if isinstance(p, click.Option) and not p.hidden]
    if options:
        out.append("| option | |\n|---|---|\n")
        for option in options:
            names = ", ".join(f"`{o}`" for o in option.opts)
            if isinstance(option.type, click.Choice):
                names += " " + "\\|".join(str(c) for c in option.type.choices)
            text = (option.help or "").replace("|", "\\|").replace("\n", " ")
            if option.show_default and option.default not in (None, "", False):
                text += f" (default: {option.default})"
            out.append(f"| {names} | {text} |\n")
        out.append("\n")


def markdown() -> str:
    out = [INTRO, _exit_codes(), "\n"]
    _command(cli, click.Context(cli, info_name="gateway"), out)
    return "".join(out).rstrip("\n") + "\n"


if __name__ == "__main__":
    print(markdown(), end="")
