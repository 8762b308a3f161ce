"""What every command shares: the one-line errors with their exit codes, the configuration
a command reads, the vault, the database a command body runs with, the operator's name in
the audit trail."""

from __future__ import annotations

import asyncio
import getpass
import os
import sys
from collections.abc import Awaitable, Callable
from functools import wraps
from pathlib import Path
from typing import Any, TypeVar

import click

from gateway import config as config_module
from gateway.config import Config
from gateway.config.location import NO_FILE_HINT, locate
from gateway.errors import (
    ConfigError,
    GatewayError,
    InvalidValue,
    NetworkError,
    StoreError,
)
from gateway.store.engine import create_engine, current_revision

T = TypeVar("T")


class CliError(click.ClickException):
    def __init__(self, message: str, exit_code: int) -> None:
        super().__init__(message)
        self.exit_code = exit_code  # type: ignore[misc]  # click declares it on the class

    def show(self, file: Any = None) -> None:
        for line in self.message.splitlines() or [""]:  # several config problems: a line each
            click.echo(f"gateway: error: {line}", err=True)


def actor() -> str:
    try:
        return f"cli:{getpass.getuser()}"
    except Exception:  # no user name in some containers
        return "cli"


def run(coro: Awaitable[T]) -> T:
    try:
        return asyncio.run(coro)  # type: ignore[arg-type]
    except GatewayError as exc:
        raise CliError(exc.message, exc.exit_code) from None
    except Exception as exc:
        if not network_failure(exc):
            raise
        # a remote service, not a bug: one line, its own exit code
        raise CliError(f"A network operation failed ({type(exc).__name__}): the server did "
                       "not answer or refused the connection.", NetworkError.exit_code) from None


def network_failure(error: BaseException) -> bool:
    """What talking to DNS, token endpoints and SMTP/IMAP servers raises when they fail us
    (imported here: most commands never load these libraries)."""
    import aiosmtplib
    import httpx
    from dns.exception import DNSException

    return isinstance(error, OSError | TimeoutError | httpx.TransportError | DNSException
                      | aiosmtplib.SMTPException)


def load_config(ctx: click.Context) -> Config:
    obj = ctx.ensure_object(dict)
    if "config" not in obj:
        located = locate(obj.get("config_path"), Path.cwd())
        if located.development_fallback:
            click.echo(f"using {located.path} (development)", err=True)
        obj["config_path"] = located.path
        try:
            obj["config"] = config_module.load(located.path or None, without_path_env())
        except ConfigError as exc:
            hint = f" ({NO_FILE_HINT})" if located.path is None else ""
            raise CliError(exc.message + hint, exc.exit_code) from None
    config: Config = obj["config"]
    return config


def without_path_env() -> dict[str, str]:
    """The environment's overrides; the file was chosen already (an empty GATEWAY_CONFIG
    means none)."""
    return {k: v for k, v in os.environ.items() if k != config_module.CONFIG_PATH_ENV}


def with_parts(func: Callable[..., Awaitable[Any]]) -> Callable[..., Any]:
    """Run an async command body with the application's parts (gateway/app/parts.py) on
    the configured database: the command asks for what it needs, built as `serve` builds
    it."""

    @click.pass_context
    @wraps(func)
    def wrapper(ctx: click.Context, *args: Any, **kwargs: Any) -> Any:
        config = load_config(ctx)

        async def body() -> Any:
            from gateway.app.parts import Parts

            engine = create_engine(config.database.url, schema=config.database.schema)
            try:
                current = await revision(engine)
                if current is None:
                    raise StoreError("The database has no schema; run 'gateway db upgrade'.")
                return await func(Parts(config, engine, command=True), *args, **kwargs)
            finally:
                await engine.dispose()

        return run(body())

    return wrapper


async def revision(engine: Any) -> str | None:
    try:
        return await current_revision(engine)
    except Exception as exc:
        raise StoreError(f"Cannot reach the database: {type(exc).__name__}.") from None


INTERNAL_ERROR_EXIT = 70  # EX_SOFTWARE


def read_password(from_stdin: bool) -> str:
    if from_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
    else:
        password = click.prompt("Password", hide_input=True, confirmation_prompt=True)
    if not password:
        raise CliError("No password given.", InvalidValue.exit_code)
    return password


def batches(func: Callable[..., Any]) -> Callable[..., Any]:
    """--batch and --pause: how an online pass over every sealed row is paced."""
    func = click.option("--pause", type=click.FloatRange(min=0), default=0.0,
                        show_default=True, help="Seconds to wait between batches, to spare "
                        "a busy database.")(func)
    return click.option("--batch", type=int, default=500, show_default=True,
                        help="Rows per transaction.")(func)
