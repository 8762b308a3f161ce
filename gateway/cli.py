"""The `gateway` command: serve, check-config, db, demo, tenant, domain, login, mailbox.

Errors are one line on stderr and a distinct exit code (see `gateway.errors`), never a
traceback. Passwords are prompted or read from stdin, never taken from argv.
"""

from __future__ import annotations

import asyncio
import contextlib
import getpass
import logging
import os
import secrets
import signal
import sys
from collections.abc import Awaitable, Callable
from functools import wraps
from pathlib import Path
from typing import Any, TypeVar

import click

from gateway import config as config_module
from gateway import logs
from gateway.config import Config
from gateway.config_location import NO_FILE_HINT, locate
from gateway.directory import settings as tenant_settings
from gateway.errors import (
    ConfigError,
    Conflict,
    GatewayError,
    InvalidValue,
    NetworkError,
    NotFound,
    StoreError,
)
from gateway.store import audit_chain
from gateway.store.directory import DirectoryStore
from gateway.store.engine import create_engine, current_revision, head_revision, upgrade

T = TypeVar("T")

DEMO_TENANT, DEMO_DOMAIN, DEMO_LOGIN = "demo", "demo.example", "demo"
DEMO_MAILBOX = f"outreach@{DEMO_DOMAIN}"
DEMO_OPTED_OUT = "opted-out@example.org"
DEMO_REVIEWER = "reviewer"


class CliError(click.ClickException):
    def __init__(self, message: str, exit_code: int) -> None:
        super().__init__(message)
        self.exit_code = exit_code  # type: ignore[misc]  # click declares it on the class

    def show(self, file: Any = None) -> None:
        click.echo(f"gateway: error: {self.message}", err=True)


def _actor() -> str:
    try:
        return f"cli:{getpass.getuser()}"
    except Exception:  # no user name in some containers
        return "cli"


def _run(coro: Awaitable[T]) -> T:
    try:
        return asyncio.run(coro)  # type: ignore[arg-type]
    except GatewayError as exc:
        raise CliError(exc.message, exc.exit_code) from None
    except Exception as exc:
        if not _network_failure(exc):
            raise
        # a remote service, not a bug: one line, its own exit code
        raise CliError(f"A network operation failed ({type(exc).__name__}): the server did "
                       "not answer or refused the connection.", NetworkError.exit_code) from None


def _network_failure(error: BaseException) -> bool:
    """What talking to DNS, token endpoints and SMTP/IMAP servers raises when they fail us
    (imported here: most commands never load these libraries)."""
    import aiosmtplib
    import httpx
    from dns.exception import DNSException

    return isinstance(error, OSError | TimeoutError | httpx.TransportError | DNSException
                      | aiosmtplib.SMTPException)


def _config(ctx: click.Context) -> Config:
    obj = ctx.ensure_object(dict)
    if "config" not in obj:
        located = locate(obj.get("config_path"), Path.cwd())
        if located.development_fallback:
            click.echo(f"using {located.path} (development)", err=True)
        obj["config_path"] = located.path
        try:
            obj["config"] = config_module.load(located.path or None, _without_path_env())
        except ConfigError as exc:
            hint = f" ({NO_FILE_HINT})" if located.path is None else ""
            raise CliError(exc.message + hint, exc.exit_code) from None
    config: Config = obj["config"]
    return config


def _without_path_env() -> dict[str, str]:
    """The environment's overrides; the file was chosen already (an empty GATEWAY_CONFIG
    means none)."""
    return {k: v for k, v in os.environ.items() if k != config_module.CONFIG_PATH_ENV}


def _vault(config: Config) -> Any:
    """The vault on the configured master keys (raises VaultError, mapped to exit 6)."""
    from gateway.vault.envelope import Vault
    from gateway.vault.keys import provider_for

    return Vault(provider_for(config))


def with_store(func: Callable[..., Awaitable[Any]]) -> Callable[..., Any]:
    """Run an async command body with a DirectoryStore on the configured database."""

    @click.pass_context
    @wraps(func)
    def wrapper(ctx: click.Context, *args: Any, **kwargs: Any) -> Any:
        config = _config(ctx)

        async def body() -> Any:
            audit_chain.set_chain_name(config.audit.chain)
            engine = create_engine(config.database.url, schema=config.database.schema)
            try:
                revision = await _revision(engine)
                if revision is None:
                    raise StoreError("The database has no schema; run 'gateway db upgrade'.")
                return await func(DirectoryStore(engine), config, *args, **kwargs)
            finally:
                await engine.dispose()

        return _run(body())

    return wrapper


async def _revision(engine: Any) -> str | None:
    try:
        return await current_revision(engine)
    except Exception as exc:
        raise StoreError(f"Cannot reach the database: {type(exc).__name__}.") from None


@click.group()
@click.version_option(package_name="outreach-compliance-gateway")
@click.option("--config", "config_path", envvar="GATEWAY_CONFIG", type=click.Path(),
              help="Operator configuration (TOML). Default: $GATEWAY_CONFIG, else "
                   "/etc/ocg/gateway.toml, else (in a checkout after 'make run') "
                   "deploy/development.toml.")
@click.pass_context
def cli(ctx: click.Context, config_path: str | None) -> None:
    """Outreach Compliance Gateway."""
    ctx.ensure_object(dict)["config_path"] = config_path


INTERNAL_ERROR_EXIT = 70  # EX_SOFTWARE


def main() -> None:
    """Console entry point: no traceback ever reaches the terminal."""
    try:
        cli(standalone_mode=True)
    except Exception as exc:
        click.echo(f"gateway: internal error ({type(exc).__name__}); this is a bug, "
                   "please report it", err=True)
        sys.exit(INTERNAL_ERROR_EXIT)


# --- serve / check-config / db -------------------------------------------------------------


@cli.command()
@click.option("--role", type=click.Choice(["all", "smtp", "public", "admin"]), default="all",
              show_default=True, help="Run only one side: e.g. the public HTTP side in its "
              "own processes, so pixel fetches never slow SMTP replies.")
@click.option("--workers", type=click.IntRange(1, 256), default=None,
              help="Worker processes sharing the listening ports, under a supervisor that "
              "restarts a dead one and stops them all gracefully. Default: one per CPU on "
              "PostgreSQL, one on SQLite.")
@click.option("--worker-sockets", default="", hidden=True)
@click.pass_context
def serve(ctx: click.Context, role: str, workers: int | None, worker_sockets: str) -> None:
    """Run the gateway until SIGTERM or SIGINT; SIGHUP reloads TLS, keys and limits."""
    config = _config(ctx)
    logs.setup(config.log_level,
               human=logs.wants_human(config.log_format, config.is_development))
    from gateway.config_advice import advice

    for setting, text in advice(config):
        logging.getLogger("gateway").warning(f"{setting} {text}", extra={"setting": setting})
    roles = ("smtp", "public", "admin") if role == "all" else (role,)
    if worker_sockets:  # one worker of a supervisor: it bound the sockets and prints
        from gateway.workers import inherited

        _run(_serve(config, ctx.obj.get("config_path"), roles, inherited(worker_sockets)))
        return
    if workers is None:
        postgres = config.database.url.startswith("postgresql")
        workers = (os.cpu_count() or 1) if postgres else 1
    if workers > 1:
        sys.exit(_run(_supervise(config, ctx.obj.get("config_path"), role, roles, workers)))
    if role == "all" and not config.is_development:
        logging.getLogger("gateway").warning(
            "the public listener (pixels, unsubscribe) shares this process's event loop with "
            "SMTP; in production run 'gateway serve --role smtp' and '--role public' apart "
            "(deploy/systemd/)", extra={"alert": "ops"})
    _run(_serve(config, ctx.obj.get("config_path"), roles))


async def _supervise(config: Config, config_path: str | None, role: str,
                     roles: tuple[str, ...], workers: int) -> int:
    from gateway.service import Ports
    from gateway.workers import Supervisor, bind_listeners

    sockets = bind_listeners(config, roles)

    def port(name: str) -> int:
        return sockets[name].getsockname()[1] if name in sockets else 0

    supervisor = Supervisor(config_path, role, workers, sockets,
                            deadline=config.queue.data_deadline + 30)

    def serving() -> None:  # the banner once every worker listens: ports are ready then
        _banner(config, roles, Ports(port("submission"), port("implicit"), port("public"),
                                     port("admin"), port("mailto")), "")
        click.echo(f"workers: {workers} (pids {' '.join(map(str, supervisor.pids))}; "
                   f"supervisor {os.getpid()})")
        sys.stdout.flush()

    stop, reload = asyncio.Event(), asyncio.Event()
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    loop.add_signal_handler(signal.SIGINT, stop.set)
    loop.add_signal_handler(signal.SIGHUP, reload.set)
    return await supervisor.run(stop, reload, serving)


async def _serve(config: Config, config_path: str | None, roles: tuple[str, ...],
                 sockets: dict[str, Any] | None = None) -> None:
    from gateway.service import Gateway

    gateway = Gateway(config, config_path, sockets)
    # Signals first: a SIGTERM that arrives while starting (a supervisor stopping a worker
    # it has just restarted) is a stop once started, not a kill.
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    loop.add_signal_handler(signal.SIGINT, stop.set)
    try:
        ports = await gateway.start(roles=roles)
    except BaseException:
        await gateway.credentials.close()
        await gateway.engine.dispose()
        raise
    loop.add_signal_handler(signal.SIGHUP, gateway.reload)
    if sockets is None:  # a supervisor's worker prints nothing: the supervisor did
        domains = ", ".join(sorted(gateway.mailto_domains())) if ports.mailto else ""
        _banner(config, roles, ports, domains)
    else:
        from gateway.workers import tell_ready

        tell_ready()
    await stop.wait()
    await gateway.stop()


def _banner(config: Config, roles: tuple[str, ...], ports: Any, mailto_domains: str) -> None:
    from gateway.service import demo_credentials_path

    smtp, http = config.smtp, config.http
    if "smtp" in roles:
        click.echo(f"SMTP submission (STARTTLS): {smtp.listen}:{ports.submission}")
        if smtp.implicit_tls:
            click.echo(f"SMTP submission (implicit TLS): {smtp.listen}:{ports.implicit_tls}")
        if ports.mailto:
            domains = f" (unsubscribe@ {mailto_domains})" if mailto_domains else ""
            click.echo(f"SMTP mailto unsubscribe: {config.unsubscribe.mailto_listen}:"
                       f"{ports.mailto}{domains}")
    if "public" in roles:
        base = http.public_base_url or f"{http.scheme}://{http.public_listen}:{ports.public}"
        click.echo(f"HTTP public: {base} (listening on {http.public_listen}:{ports.public})")
    if "admin" in roles:
        click.echo(f"HTTP admin API: {http.scheme}://{http.admin_listen}:{ports.admin}/api/v1/ "
                   "(OpenAPI: /api/v1/openapi.json)")
        click.echo(f"Review pages: {http.scheme}://{http.admin_listen}:{ports.admin}/review/ "
                   "(reviewers: gateway user add)")
    if config.is_development:
        click.echo("environment: development (self-generated key and certificate: "
                   "NOT FOR PRODUCTION)")
        creds = demo_credentials_path(config)
        if creds.exists():
            click.echo(creds.read_text().rstrip())
            click.echo("try it, in another terminal: source .venv/bin/activate && "
                       "gateway send-test   (then: ls var/outbox/new/)")
    sys.stdout.flush()


@cli.command("check-config")
@click.pass_context
def check_config(ctx: click.Context) -> None:
    """Validate the configuration (and the master key) without starting anything."""
    from gateway.config_advice import advice

    config = _config(ctx)
    try:
        _vault(config)
    except GatewayError as exc:
        raise CliError(exc.message, exc.exit_code) from None
    for setting, text in advice(config):
        click.echo(f"gateway: warning: {setting} {text}", err=True)
    click.echo(f"configuration ok (environment: {config.environment})")


@cli.group()
def db() -> None:
    """Database schema."""


@db.command("upgrade")
@click.option("--revision", default="head", show_default=True,
              help="Migrate to this revision (e.g. one before head during a rolling upgrade).")
@click.pass_context
def db_upgrade(ctx: click.Context, revision: str) -> None:
    """Apply migrations (expand/contract; safe while other nodes run)."""
    config = _config(ctx)

    async def body() -> str | None:
        engine = create_engine(config.database.url, schema=config.database.schema)
        try:
            await upgrade(engine, revision)
            return await current_revision(engine)
        except GatewayError:
            raise
        except Exception as exc:
            message = f"Migration failed: {type(exc).__name__}: {exc}".split("\n")[0]
            raise StoreError(message) from None
        finally:
            await engine.dispose()

    click.echo(f"database at revision {_run(body())} (head: {head_revision()})")


# --- demo ----------------------------------------------------------------------------------


@cli.command()
@with_store
async def demo(store: DirectoryStore, config: Config) -> None:
    """Create the demo tenant, login and mailbox (development only; idempotent)."""
    from gateway.service import demo_credentials_path

    if not config.is_development:
        raise ConfigError("'gateway demo' runs only with environment = 'development'.")
    creds = demo_credentials_path(config)
    try:
        await store.add_tenant(DEMO_TENANT, _actor())
    except Conflict:
        if creds.exists():
            click.echo(creds.read_text().rstrip())
            return
        await store.remove_login(DEMO_LOGIN, _actor())
    else:
        await store.add_domain(DEMO_TENANT, DEMO_DOMAIN, _actor())
        # demo.example has no DNS to publish a TXT token in: the demo vouches for it
        await store.mark_verified(DEMO_DOMAIN, _actor(), "development demo")
        upstream = next(iter(config.upstreams))
        await store.add_mailbox(DEMO_TENANT, DEMO_MAILBOX, upstream, _actor())
        await store.set_tenant_setting(DEMO_TENANT, "postal_address",
                                       "Demo Ltd, 1 Example Street, 75002 Paris, France",
                                       _actor())
        await store.set_tenant_setting(DEMO_TENANT, "sender_name", "Demo Ltd", _actor())
        await _demo_opt_out(store, config)
        await _demo_dkim(store, config)
    password = secrets.token_urlsafe(15)
    await store.add_login(DEMO_TENANT, DEMO_LOGIN, password, _actor())
    reviewer_password, totp_uri = await _demo_reviewer(store, config)
    creds.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(creds, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(f"demo login: {DEMO_LOGIN}  password: {password}  sender: {DEMO_MAILBOX}\n"
                 f"demo opt-out (refused at RCPT): {DEMO_OPTED_OUT}\n"
                 f"review pages reviewer: {DEMO_REVIEWER}  password: {reviewer_password}  "
                 f"code: gateway user code {DEMO_REVIEWER}  (totp: {totp_uri})\n")
    click.echo(creds.read_text().rstrip())


async def _demo_reviewer(store: DirectoryStore, config: Config) -> tuple[str, str]:
    """A compliance reviewer for the review pages (re-made with the demo's credentials)."""
    from gateway.review.accounts import Reviewers

    reviewers = Reviewers(store.engine, _vault(config), config.review)
    with contextlib.suppress(NotFound):
        await reviewers.remove(DEMO_REVIEWER, _actor())
    password = secrets.token_urlsafe(15)
    uri = await reviewers.add(DEMO_REVIEWER, password, "compliance", None, _actor())
    return password, uri


async def _demo_dkim(store: DirectoryStore, config: Config) -> None:
    """RSA and Ed25519 keys for the demo domain: var/outbox shows both signatures."""
    from gateway.dkim.keys import DkimKeys

    keys = DkimKeys(store.engine, _vault(config), _tenant_sealer(store.engine, config))
    for algorithm in ("rsa", "ed25519"):
        await keys.generate(DEMO_DOMAIN, algorithm, actor=_actor())


async def _demo_opt_out(store: DirectoryStore, config: Config) -> None:
    """One address on the demo tenant's list: a message to it is refused at RCPT."""
    from gateway.suppressions import Actor
    from suppression.entries import Reason

    suppressions = await _suppressions(store.engine, config)
    tenant_id = (await store.tenant(DEMO_TENANT)).id
    await suppressions.add(Actor(_actor()), tenant_id, DEMO_OPTED_OUT, Reason.UNSUBSCRIBE,
                           "cli", note="the demo's opted-out recipient")
    await suppressions.close()


# --- tenant --------------------------------------------------------------------------------


@cli.group()
def tenant() -> None:
    """Tenants (customers): add, list, suspend, resume, settings."""


@tenant.command("add")
@click.argument("name")
@with_store
async def tenant_add(store: DirectoryStore, config: Config, name: str) -> None:
    """Add a tenant (a customer: its logins, mailboxes, domains and lists)."""
    created = await store.add_tenant(name, _actor())
    click.echo(f"tenant {created.name} added")


@tenant.command("list")
@with_store
async def tenant_list(store: DirectoryStore, config: Config) -> None:
    """List the tenants and their status."""
    for t in await store.list_tenants():
        reason = f"  ({t.status_reason})" if t.status_reason else ""
        click.echo(f"{t.name}\t{t.status}{reason}")


@tenant.command("suspend")
@click.argument("name")
@click.option("--reason", required=True, help="Shown to the sending client in the 451 reply.")
@with_store
async def tenant_suspend(store: DirectoryStore, config: Config, name: str, reason: str) -> None:
    """Suspend a tenant: its senders get 451 4.7.1 with the reason."""
    await store.set_tenant_status(name, "suspended", reason, _actor())
    click.echo(f"tenant {name} suspended")


@tenant.command("resume")
@click.argument("name")
@with_store
async def tenant_resume(store: DirectoryStore, config: Config, name: str) -> None:
    """Let a suspended tenant send again."""
    await store.set_tenant_status(name, "active", "", _actor())
    click.echo(f"tenant {name} resumed")


@tenant.command("set")
@click.argument("name")
@click.argument("key")
@click.argument("value")
@with_store
async def tenant_set(store: DirectoryStore, config: Config, name: str, key: str,
                     value: str) -> None:
    """Change one tenant setting, within the operator's limits."""
    parsed = tenant_settings.parse(key, value, config)
    await store.set_tenant_setting(name, key, parsed, _actor())
    click.echo(f"tenant {name}: {key} = {parsed}")


@tenant.command("show")
@click.argument("name")
@with_store
async def tenant_show(store: DirectoryStore, config: Config, name: str) -> None:
    """Show a tenant's status and its effective settings (its own, else the defaults)."""
    t = await store.tenant(name)
    click.echo(f"name\t{t.name}\nstatus\t{t.status}")
    for key, value in sorted(tenant_settings.effective(t.settings, config).items()):
        click.echo(f"{key}\t{value}")


# --- domain --------------------------------------------------------------------------------


@cli.group()
def domain() -> None:
    """A tenant's sending domains."""


@domain.command("add")
@click.argument("tenant_name")
@click.argument("name")
@with_store
async def domain_add(store: DirectoryStore, config: Config, tenant_name: str, name: str) -> None:
    """Add a sending domain to a tenant (then 'gateway domain verify')."""
    added = await store.add_domain(tenant_name, name, _actor())
    click.echo(f"domain {added} added to {tenant_name}")


@domain.command("list")
@click.option("--tenant", "tenant_name", help="Only this tenant's domains.")
@with_store
async def domain_list(store: DirectoryStore, config: Config, tenant_name: str | None) -> None:
    """List domains, their tenant and whether they are verified."""
    for owner, name in await store.list_domains(tenant_name):
        click.echo(f"{owner}\t{name}")


@domain.command("verify")
@click.argument("name")
@with_store
async def domain_verify(store: DirectoryStore, config: Config, name: str) -> None:
    """Prove a domain: prints the TXT record to publish, then (run again) checks it."""
    from gateway.directory.domain_check import DomainChecks, Level, Lookup

    checks = DomainChecks(store.engine, config)
    finding = await checks.verify(name.strip().lower().rstrip("."), Lookup(config.dns),
                                  _actor())
    click.echo(finding.line())
    if finding.level is Level.FAIL:
        raise SystemExit(1)


@domain.command("check")
@click.argument("name")
@with_store
async def domain_check(store: DirectoryStore, config: Config, name: str) -> None:
    """Report SPF, DKIM, DMARC, MX and the link-domain CNAME as receivers see them.

    One line per finding (ok / warn / fail); exit status 1 if any fails."""
    from gateway.directory.domain_check import DomainChecks, Level, Lookup
    from gateway.dkim.keys import DkimKeys

    name = name.strip().lower().rstrip(".")
    checks = DomainChecks(store.engine, config)
    _, verified_at = await checks.token(name, _actor())
    keys = await DkimKeys(store.engine, _vault(config),
                          _tenant_sealer(store.engine, config)).listing(domain=name)
    owner = next((t for t, d in await store.list_domains() if d == name), "")
    tenant = await store.tenant(owner)
    link_domain = str(tenant.settings.get("link_domain") or "")
    findings = await asyncio.to_thread(checks.check, name, Lookup(config.dns), keys,
                                       link_domain, verified_at is not None)
    for finding in findings:
        click.echo(finding.line())
    if any(f.level is Level.FAIL for f in findings):
        raise SystemExit(1)


# --- login ---------------------------------------------------------------------------------


@cli.group()
def login() -> None:
    """SMTP submission logins."""


def _read_password(from_stdin: bool) -> str:
    if from_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
    else:
        password = click.prompt("Password", hide_input=True, confirmation_prompt=True)
    if not password:
        raise CliError("No password given.", InvalidValue.exit_code)
    return password


@login.command("add")
@click.argument("tenant_name")
@click.argument("username")
@click.option("--password-stdin", is_flag=True, help="Read the password from stdin.")
@click.option("--generate", is_flag=True,
              help="Make a strong random password and print it once.")
@with_store
async def login_add(store: DirectoryStore, config: Config, tenant_name: str, username: str,
                    password_stdin: bool, generate: bool) -> None:
    """Add an SMTP login. Passwords shorter than `smtp.auth.min_password_length` (at least
    12) are refused; --generate makes one of 32 random characters."""
    if generate and password_stdin:
        raise CliError("Use either --generate or --password-stdin.", InvalidValue.exit_code)
    password = secrets.token_urlsafe(24) if generate else _read_password(password_stdin)
    await store.add_login(tenant_name, username, password, _actor(),
                          min_length=config.smtp.auth.min_password_length)
    click.echo(f"login {username} added to {tenant_name}")
    if generate:
        click.echo(f"password: {password}  (shown once; the gateway keeps only its hash)")


@login.command("list")
@click.option("--tenant", "tenant_name", help="Only this tenant's logins.")
@with_store
async def login_list(store: DirectoryStore, config: Config, tenant_name: str | None) -> None:
    """List SMTP logins and their tenants."""
    for owner, username in await store.list_logins(tenant_name):
        click.echo(f"{owner}\t{username}")


@login.command("remove")
@click.argument("username")
@with_store
async def login_remove(store: DirectoryStore, config: Config, username: str) -> None:
    """Remove an SMTP login (its sessions are refused from then on)."""
    await store.remove_login(username, _actor())
    click.echo(f"login {username} removed")


# --- queue and trace -----------------------------------------------------------------------


async def _queue_parts(engine: Any, config: Config) -> Any:
    """The queue with what an operator action needs (the vault opens the sealed copies)."""
    from gateway.directory.cache import Directory
    from gateway.queue.worker import QueueWorker
    from gateway.store.audit import (
        DIGEST_PURPOSE,
        LEGACY_DIGEST_INFO,
        AuditTrail,
        recipient_digest,
    )
    from gateway.vault.purpose import PurposeKeys

    vault = _vault(config)
    purposes = PurposeKeys(engine, vault)
    await purposes.ensure(DIGEST_PURPOSE, seed=vault.derived_key(LEGACY_DIGEST_INFO))
    key = purposes.current(DIGEST_PURPOSE)[1]
    store = _queue_store(engine, config)
    directory_store = DirectoryStore(engine)
    worker = QueueWorker(config, store, {}, Directory(directory_store, config), directory_store,
                         AuditTrail(engine, names=await _event_names(engine, config)),
                         lambda r: recipient_digest(key, r),
                         await _suppressions(engine, config, purposes))
    return store, worker, key


async def _digest(engine: Any, config: Config, purposes: Any = None) -> Callable[[str], str]:
    """The audit trail's keyed digest (made on first use), as the running gateway has it."""
    from gateway.store.audit import DIGEST_PURPOSE, LEGACY_DIGEST_INFO, recipient_digest
    from gateway.vault.purpose import PurposeKeys

    vault = _vault(config)
    purposes = purposes or PurposeKeys(engine, vault)
    await purposes.ensure(DIGEST_PURPOSE, seed=vault.derived_key(LEGACY_DIGEST_INFO))
    key = purposes.current(DIGEST_PURPOSE)[1]
    return lambda value: recipient_digest(key, value)


def _tenant_keys(engine: Any, config: Config) -> Any:
    """The tenant keys, in the configured key store."""
    from gateway.config import tenant_key_location
    from gateway.vault.key_store import key_store_for
    from gateway.vault.tenant_keys import TenantKeys

    return TenantKeys(engine, _vault(config), key_store_for(tenant_key_location(config)))


def _tenant_sealer(engine: Any, config: Config) -> Any:
    """Seals a tenant's values under its key, as the gateway does."""
    from gateway.vault.tenant_keys import TenantSealer

    return TenantSealer(_tenant_keys(engine, config))


def _queue_store(engine: Any, config: Config) -> Any:
    """The delivery queue, its copies opened with their tenants' keys."""
    from gateway.queue.store import QueueStore
    from gateway.vault.tenant_keys import TenantSealer

    return QueueStore(engine, _vault(config), config.queue.lifetime,
                      TenantSealer(_tenant_keys(engine, config)))


async def _event_names(engine: Any, config: Config) -> Any:
    """How events name recipients (sealed under tenant keys), as the gateway wires it."""
    from gateway.events.names import EventNames
    from gateway.vault.tenant_keys import TenantSealer

    return EventNames(TenantSealer(_tenant_keys(engine, config)),
                      await _digest(engine, config))


async def _held_store(engine: Any, config: Config) -> Any:
    """The held messages, their names opened as the gateway opens them."""
    from gateway.events.names import EventNames
    from gateway.review.held import HeldStore
    from gateway.vault.tenant_keys import TenantSealer

    vault = _vault(config)
    sealer = TenantSealer(_tenant_keys(engine, config))
    digest = await _digest(engine, config)
    return HeldStore(engine, vault, sealer, EventNames(sealer, digest), digest)


async def _suppressions(engine: Any, config: Config, purposes: Any = None) -> Any:
    """The suppression lists, opened with the digest key (made on first use)."""
    from gateway.suppressions import SUPPRESSION_PURPOSE, Suppressions
    from gateway.vault.purpose import PurposeKeys

    purposes = purposes or PurposeKeys(engine, _vault(config))
    await purposes.ensure(SUPPRESSION_PURPOSE)
    suppressions = Suppressions(engine, config.database.url, config.database.schema)
    suppressions.open(*reversed(purposes.current(SUPPRESSION_PURPOSE)))
    suppressions.audit_digest = await _digest(engine, config, purposes)
    return suppressions


def _copy_line(c: Any) -> str:
    due = c.next_attempt_at.strftime("%Y-%m-%d %H:%M:%S") if c.next_attempt_at else "-"
    sender = c.envelope_from or "<>"
    return (f"{c.id}\t{c.queue_id}\t{c.kind.value}\t{c.state.value}\t{c.attempts}\t{due}\t"
            f"{sender} -> {c.recipient}\t{c.reply}")


@cli.group()
def queue() -> None:
    """The delivery queue: copies waiting for a retry, and reports owed to senders."""


@queue.command("list")
@click.option("--all", "everything", is_flag=True, help="Include finished copies.")
@click.option("--tenant", "tenant_name", help="Only this tenant's copies.")
@with_store
async def queue_list(store: DirectoryStore, config: Config, everything: bool,
                     tenant_name: str | None) -> None:
    """List the copies waiting for a retry, and the delivery reports owed."""
    from gateway.queue.store import OPEN_STATES, State

    queue_store, _, _ = await _queue_parts(store.engine, config)
    tenant_id = (await store.tenant(tenant_name)).id if tenant_name else None
    states = list(State) if everything else list(OPEN_STATES)
    click.echo("id\tqueue id\tkind\tstate\tattempts\tnext attempt (UTC)\tenvelope\tlast reply")
    for c in await queue_store.listing(states, tenant_id):
        click.echo(_copy_line(c))


@queue.command("show")
@click.argument("copy_id", type=int)
@with_store
async def queue_show(store: DirectoryStore, config: Config, copy_id: int) -> None:
    """Show one queued copy: its attempts and the replies they got."""
    queue_store, _, _ = await _queue_parts(store.engine, config)
    c = await queue_store.get(copy_id)
    for label, value in (("id", c.id), ("queue id", c.queue_id), ("kind", c.kind.value),
                         ("state", c.state.value), ("envelope from", c.envelope_from or "<>"),
                         ("recipient", c.recipient), ("attempts", c.attempts),
                         ("last reply", c.reply), ("created", c.created_at),
                         ("next attempt", c.next_attempt_at), ("expires", c.expires_at),
                         ("message id", c.message_id or "-")):
        click.echo(f"{label}\t{value}")


@queue.command("retry")
@click.argument("copy_id", type=int, required=False)
@click.option("--all", "everything", is_flag=True, help="Every deferred copy.")
@with_store
async def queue_retry(store: DirectoryStore, config: Config, copy_id: int | None,
                      everything: bool) -> None:
    """Make a deferred copy (or all) due now; a running gateway sends it within a second."""
    if copy_id is None and not everything:
        raise InvalidValue("Give a copy id, or --all.")
    queue_store, _, _ = await _queue_parts(store.engine, config)
    count = await queue_store.retry_now(copy_id)
    if copy_id is not None and count == 0:
        raise Conflict(f"Queued copy {copy_id} is not waiting for a retry.")
    click.echo(f"{count} copies due now")


@queue.command("delete")
@click.argument("copy_id", type=int)
@click.option("--reason", required=True, help="Told to the sender in the delivery report.")
@with_store
async def queue_delete(store: DirectoryStore, config: Config, copy_id: int, reason: str) -> None:
    """Remove a waiting copy; the sender gets a delivery report saying so."""
    _, worker, _ = await _queue_parts(store.engine, config)
    await worker.delete(copy_id, reason, _actor())
    click.echo(f"copy {copy_id} deleted; a delivery report to the sender is queued")


@cli.command()
@click.argument("reference")
@click.option("--recipient", "recipients", multiple=True,
              help="Name this recipient in the trace (the trail keeps only digests).")
@with_store
async def trace(store: DirectoryStore, config: Config, reference: str,
                recipients: tuple[str, ...]) -> None:
    """Everything about a message: by queue id or Message-ID."""
    from gateway.queue import trace as tracing

    queue_store, _, key = await _queue_parts(store.engine, config)
    for queue_id in await tracing.queue_ids_for(store.engine, reference):
        result = await tracing.trace(store.engine, queue_store, queue_id, key, recipients)
        click.echo(f"queue id {queue_id}")
        for line in result.lines:
            at = line.at.strftime("%Y-%m-%d %H:%M:%S.%f")[:-3]
            who = f" {line.who}" if line.who else ""
            click.echo(f"  {at}  {line.event}{who}  {line.text}".rstrip())
        if result.copies:
            click.echo("  queue:")
            for c in result.copies:
                click.echo("    " + _copy_line(c))


# --- vault ---------------------------------------------------------------------------------


@cli.group()
def vault() -> None:
    """The master key and the secrets sealed under it."""


def _batches(func: Callable[..., Any]) -> Callable[..., Any]:
    """--batch and --pause: how an online pass over every sealed row is paced."""
    func = click.option("--pause", type=click.FloatRange(min=0), default=0.0,
                        show_default=True, help="Seconds to wait between batches, to spare "
                        "a busy database.")(func)
    return click.option("--batch", type=int, default=500, show_default=True,
                        help="Rows per transaction.")(func)


@vault.command("rewrap")
@_batches
@with_store
async def vault_rewrap(store: DirectoryStore, config: Config, batch: int, pause: float) -> None:
    """Re-wrap every sealed value under the primary master key (resumable).

    Rotation: add the new key as vault.master_key_file, list the old one in
    vault.previous_key_files, reload every node (SIGHUP), run this, then drop the old key.
    """
    from gateway.store import rewrap as rewrapping

    keys = _vault(config)
    credentials = await _credentials(store.engine, config)
    secrets = credentials.secrets  # a separate Redis, when vault.backend = "redis"
    try:
        total = (await rewrapping.remaining(store.engine, keys)) + await secrets.remaining()
        click.echo(f"{total} sealed values to re-wrap under {keys.primary_key_id}", err=True)
        with click.progressbar(length=total, label="rewrap", file=sys.stderr) as bar:
            done = await rewrapping.rewrap(store.engine, keys, batch, bar.update, pause)
            done += await secrets.rewrap(batch, bar.update)
        left = (await rewrapping.remaining(store.engine, keys)) + await secrets.remaining()
    finally:
        await credentials.close()
    click.echo(f"re-wrapped {done}; none remain under an older key" if left == 0
               else f"re-wrapped {done}; run again to finish")


@vault.command("reseal")
@_batches
@with_store
async def vault_reseal(store: DirectoryStore, config: Config, batch: int, pause: float) -> None:
    """Seal values written before tenant keys (queued and held copies, replies kept for
    review, DKIM keys, webhook secrets) under their tenant's key (resumable, online)."""
    from gateway.store import rewrap as rewrapping

    done = await rewrapping.reseal(store.engine, _vault(config),
                                   _tenant_sealer(store.engine, config), batch, pause=pause)
    click.echo(f"re-sealed {done} values under their tenant's key")


@cli.group()
def key() -> None:
    """Purpose keys: digest keys (never rotated) and token keys (rotated, then retired)."""


def _purpose_keys(engine: Any, config: Config) -> Any:
    from gateway.vault.purpose import PurposeKeys

    return PurposeKeys(engine, _vault(config))


@key.command("list")
@with_store
async def key_list(store: DirectoryStore, config: Config) -> None:
    """List the purpose keys (digests, tokens) and their versions."""
    click.echo("purpose\tversion\tmaster key\tcreated\tretired")
    for k in await _purpose_keys(store.engine, config).listing():
        retired = f"{k.retired_at:%Y-%m-%d %H:%M}" if k.retired_at else "-"
        click.echo(f"{k.purpose}\t{k.version}\t{k.key_id}\t{k.created_at:%Y-%m-%d %H:%M}\t"
                   f"{retired}")


@key.command("rotate")
@click.argument("purpose")
@with_store
async def key_rotate(store: DirectoryStore, config: Config, purpose: str) -> None:
    """A new version seals from now on; older versions still open until retired."""
    version = await _purpose_keys(store.engine, config).rotate(purpose, _actor())
    click.echo(f"{purpose}: version {version} now seals new tokens")


@key.command("retire")
@click.argument("purpose")
@click.argument("version", type=int)
@with_store
async def key_retire(store: DirectoryStore, config: Config, purpose: str, version: int) -> None:
    """Stop opening tokens of an old version: links made with it stop working."""
    await _purpose_keys(store.engine, config).retire(purpose, version, _actor())
    click.echo(f"{purpose}: version {version} retired; tokens sealed with it no longer open")


# --- events and webhooks -------------------------------------------------------------------


@cli.command("events")
@click.argument("tenant_name")
@click.option("--after", type=int, default=0, help="Cursor: the last event id already seen.")
@click.option("--limit", type=int, default=100, show_default=True, help="At most this many events.")
@with_store
async def events_list(store: DirectoryStore, config: Config, tenant_name: str, after: int,
                      limit: int) -> None:
    """A tenant's events, oldest first, after a cursor."""
    import sqlalchemy as sa

    from gateway.store.schema import events

    tenant_row = await store.tenant(tenant_name)
    names = await _event_names(store.engine, config)
    async with store.engine.connect() as conn:
        rows = (await conn.execute(sa.select(events).where(
            events.c.tenant_id == tenant_row.id, events.c.id > after)
            .order_by(events.c.id).limit(limit))).all()
    for e in rows:
        named = await names.view(e)
        who = named["recipient"] or (f"digest:{named['recipient_digest'][:16]}"
                                     if named["recipient_digest"] else "-")
        click.echo(f"{e.id}\t{e.at:%Y-%m-%d %H:%M:%S}\t{e.kind}\t{e.queue_id or '-'}\t"
                   f"{who}\t{(e.detail or {}).get('reply') or ''}")


@cli.group()
def webhook() -> None:
    """A tenant's webhook for its events (signed with HMAC-SHA256)."""


@webhook.command("set")
@click.argument("tenant_name")
@click.argument("url")
@with_store
async def webhook_set(store: DirectoryStore, config: Config, tenant_name: str, url: str) -> None:
    """Point the tenant's events at URL; prints the new signing secret once."""
    from gateway.events.targets import check_target
    from gateway.store.webhooks import WebhookStore

    await check_target(url, config.events.allow_private_targets, config.fetch)
    tenant_row = await store.tenant(tenant_name)
    secret = await WebhookStore(store.engine, _vault(config),
                                _tenant_sealer(store.engine, config)).set(
        tenant_row.id, url, _actor())
    click.echo(f"webhook for {tenant_name}: {url}")
    click.echo(f"signing secret (shown once): {secret}")


@webhook.command("remove")
@click.argument("tenant_name")
@with_store
async def webhook_remove(store: DirectoryStore, config: Config, tenant_name: str) -> None:
    """Remove a tenant's webhook (its events stay readable with 'gateway events')."""
    from gateway.store.webhooks import WebhookStore

    tenant_row = await store.tenant(tenant_name)
    await WebhookStore(store.engine, _vault(config),
                       _tenant_sealer(store.engine, config)).remove(tenant_row.id, _actor())
    click.echo(f"webhook for {tenant_name} removed")


# --- mailbox -------------------------------------------------------------------------------


@cli.group()
def mailbox() -> None:
    """Sending mailboxes and the upstream each one uses."""


@mailbox.command("add")
@click.argument("tenant_name")
@click.argument("address")
@click.option("--upstream", required=True, help="An upstream name from the configuration.")
@with_store
async def mailbox_add(store: DirectoryStore, config: Config, tenant_name: str, address: str,
                      upstream: str) -> None:
    """Add a sending mailbox to a tenant, sent through the named upstream."""
    from gateway.vault.credentials import provider_for_upstream

    if upstream not in config.upstreams:
        known = ", ".join(sorted(config.upstreams))
        raise InvalidValue(f"Upstream '{upstream}' is not configured (known: {known}).")
    oauth = provider_for_upstream(config, upstream) is not None
    added = await store.add_mailbox(
        tenant_name, address, upstream, _actor(),
        status="disconnected" if oauth else "active",
        status_reason="not connected yet" if oauth else "")
    click.echo(f"mailbox {added} added to {tenant_name} via {upstream}")
    if oauth:
        click.echo(f"connect it: gateway mailbox connect {added} --browser | --import")


async def _credentials(engine: Any, config: Config) -> Any:
    from gateway.service import build_vault_parts

    credentials, _ = build_vault_parts(config, engine, _vault(config))
    await credentials.secrets.check()
    return credentials


@mailbox.command("connect")
@click.argument("address")
@click.option("--import", "import_json", is_flag=True,
              help="Read tokens the campaign tool holds as JSON on stdin: refresh_token, "
              "access_token, expires_at, scope, client_id.")
@click.option("--browser", is_flag=True, help="Print a one-time link for the owner's browser "
              "(OAuth consent with PKCE; 10 minutes).")
@click.option("--password-stdin", is_flag=True,
              help="A smarthost password of the mailbox's own, read from stdin.")
@click.option("--username", help="The smarthost login name (with --password-stdin).")
@with_store
async def mailbox_connect(store: DirectoryStore, config: Config, address: str,
                          import_json: bool, browser: bool, password_stdin: bool,
                          username: str | None) -> None:
    """Give a mailbox its upstream credentials; they are sealed by the vault."""
    import json

    if sum((import_json, browser, password_stdin)) != 1:
        raise InvalidValue("Give exactly one of --import, --browser or --password-stdin.")
    mailbox_row = await store.mailbox_by_address(address)
    credentials = await _credentials(store.engine, config)
    try:
        if import_json:
            try:
                payload = json.loads(sys.stdin.read())
            except json.JSONDecodeError as exc:
                raise InvalidValue(f"stdin is not JSON (line {exc.lineno}).") from None
            if not isinstance(payload, dict):
                raise InvalidValue("stdin must hold one JSON object.")
            state = await credentials.import_tokens(mailbox_row, payload, _actor())
            click.echo(f"mailbox {mailbox_row.address} connected ({state})")
        elif password_stdin:
            if not username:
                raise InvalidValue("--username is required with --password-stdin.")
            await credentials.set_password(mailbox_row, username, _read_password(True),
                                           _actor())
            click.echo(f"mailbox {mailbox_row.address}: smarthost login {username} sealed")
        else:
            from gateway.vault.flows import FLOW_LIFETIME, OAuthFlows

            provider, ticket = await OAuthFlows(store.engine, _vault(config), credentials
                                                ).start(mailbox_row, _actor())
            base = config.http.public_base_url or (
                f"{config.http.scheme}://{config.http.public_listen}:{config.http.public_port}")
            minutes = int(FLOW_LIFETIME.total_seconds() // 60)
            click.echo(f"open within {minutes} minutes, signed in as {mailbox_row.address}:")
            click.echo(f"{base.rstrip('/')}/oauth/{provider}/start?ticket={ticket}")
    finally:
        await credentials.close()


@mailbox.command("disconnect")
@click.argument("address")
@click.option("--reason", default="disconnected by an operator", show_default=True,
              help="Why, for the audit trail and the mailbox's status.")
@click.option("--no-revoke", is_flag=True, help="Delete the tokens without telling the provider.")
@with_store
async def mailbox_disconnect(store: DirectoryStore, config: Config, address: str, reason: str,
                             no_revoke: bool) -> None:
    """Delete the mailbox's sealed tokens now and revoke them at the provider."""
    mailbox_row = await store.mailbox_by_address(address)
    credentials = await _credentials(store.engine, config)
    try:
        revoked = await credentials.disconnect(mailbox_row, _actor(), reason, not no_revoke)
    finally:
        await credentials.close()
    click.echo(f"mailbox {mailbox_row.address} disconnected; tokens deleted"
               + ("; revoked at the provider" if revoked else ""))


@mailbox.command("list")
@click.option("--tenant", "tenant_name", help="Only this tenant's mailboxes.")
@with_store
async def mailbox_list(store: DirectoryStore, config: Config, tenant_name: str | None) -> None:
    """List mailboxes, their upstream and status."""
    for owner, m in await store.list_mailboxes(tenant_name):
        reason = f"  ({m.status_reason})" if m.status_reason else ""
        click.echo(f"{owner}\t{m.address}\t{m.upstream}\t{m.status}{reason}")


@mailbox.command("remove")
@click.argument("address")
@with_store
async def mailbox_remove(store: DirectoryStore, config: Config, address: str) -> None:
    """Remove a mailbox (its sealed tokens or password go with it)."""
    mailbox_row = await store.mailbox_by_address(address)
    credentials = await _credentials(store.engine, config)
    try:
        if await credentials.row(mailbox_row.id) is not None:
            await credentials.disconnect(mailbox_row, _actor(), "mailbox removed")
    finally:
        await credentials.close()
    await store.remove_mailbox(address, _actor())
    click.echo(f"mailbox {address} removed")


@mailbox.command("pause")
@click.argument("address")
@click.option("--reason", required=True, help="Shown to the sending client in the 451 reply.")
@with_store
async def mailbox_pause(store: DirectoryStore, config: Config, address: str, reason: str) -> None:
    """Pause a mailbox: its senders get 451 4.7.1 with the reason."""
    await store.set_mailbox_status(address, "paused", reason, _actor())
    click.echo(f"mailbox {address} paused")


@mailbox.command("resume")
@click.argument("address")
@with_store
async def mailbox_resume(store: DirectoryStore, config: Config, address: str) -> None:
    """Let a paused mailbox send again."""
    await store.set_mailbox_status(address, "active", "", _actor())
    click.echo(f"mailbox {address} resumed")


# --- upstreams -----------------------------------------------------------------------------


@cli.group()
def upstream() -> None:
    """The configured upstreams and the operator's smarthost logins."""


@upstream.command("list")
@with_store
async def upstream_list(store: DirectoryStore, config: Config) -> None:
    """Each upstream, its kind and host, and whether its login has a sealed password."""
    from gateway.vault.upstream_passwords import UpstreamPasswords

    credentials = await _credentials(store.engine, config)
    try:
        passwords = UpstreamPasswords(store.engine, credentials.secrets, config)
        for name, up in sorted(config.upstreams.items()):
            where = up.path if up.kind == "maildir" else f"{up.host}:{up.port}"
            if up.kind != "smtp":
                login = "per mailbox" if up.kind != "maildir" else "-"
            elif not up.username:
                login = "no login"
            else:
                sealed = await passwords.get(name) is not None
                login = f"{up.username} ({'password sealed' if sealed else 'NO PASSWORD'})"
            click.echo(f"{name}\t{up.kind}\t{where}\t{login}")
    finally:
        await credentials.close()


@upstream.command("password")
@click.argument("name")
@click.option("--password-stdin", is_flag=True, help="Read the password from stdin.")
@click.option("--clear", is_flag=True, help="Delete the sealed password.")
@with_store
async def upstream_password(store: DirectoryStore, config: Config, name: str,
                            password_stdin: bool, clear: bool) -> None:
    """Seal the shared smarthost password of upstream NAME (its username is configuration).

    Running gateways pick it up within 30 seconds, or at once after the smarthost refuses
    the old one."""
    from gateway.vault.upstream_passwords import UpstreamPasswords

    credentials = await _credentials(store.engine, config)
    try:
        passwords = UpstreamPasswords(store.engine, credentials.secrets, config)
        if clear:
            await passwords.clear(name, _actor())
            click.echo(f"upstream {name}: sealed password deleted")
        else:
            await passwords.set(name, _read_password(password_stdin), _actor())
            click.echo(f"upstream {name}: password sealed")
    finally:
        await credentials.close()


# --- OAuth clients and API keys ------------------------------------------------------------


@cli.group("oauth-client")
def oauth_client() -> None:
    """OAuth clients (client id + sealed secret) for the gmail and microsoft upstreams."""


@oauth_client.command("add")
@click.argument("provider", type=click.Choice(["google", "microsoft"]))
@click.argument("client_id")
@click.option("--tenant", "tenant_name", help="Only for this tenant (default: every tenant).")
@click.option("--secret-stdin", is_flag=True, help="Read the client secret from stdin.")
@with_store
async def oauth_client_add(store: DirectoryStore, config: Config, provider: str, client_id: str,
                           tenant_name: str | None, secret_stdin: bool) -> None:
    """Register an OAuth client (id and sealed secret) for Google or Microsoft."""
    if secret_stdin:
        secret = sys.stdin.readline().rstrip("\r\n")
    else:
        secret = click.prompt("Client secret", hide_input=True)
    tenant_id = (await store.tenant(tenant_name)).id if tenant_name else None
    credentials = await _credentials(store.engine, config)
    try:
        public_id = await credentials.add_client(provider, client_id, secret, tenant_id,
                                                 _actor())
    finally:
        await credentials.close()
    click.echo(f"OAuth client {public_id} ({provider}) added"
               + (f" for {tenant_name}" if tenant_name else " for every tenant"))


@oauth_client.command("list")
@with_store
async def oauth_client_list(store: DirectoryStore, config: Config) -> None:
    """List the OAuth clients (never their secrets)."""
    names = await store.tenant_names()
    credentials = await _credentials(store.engine, config)
    try:
        for public_id, tenant_id, provider, client_id in await credentials.list_clients(
                None, only_tenant=False):
            owner = names.get(tenant_id, "-") if tenant_id is not None else "(all tenants)"
            click.echo(f"{public_id}\t{provider}\t{client_id}\t{owner}")
    finally:
        await credentials.close()


@cli.group()
def apikey() -> None:
    """Admin API keys: 256-bit, shown once, stored as SHA-256; a role and maybe a tenant."""


@apikey.command("add")
@click.argument("name")
@click.option("--role", type=click.Choice(["ops", "compliance", "admin"]), required=True,
              help="ops: read the queue, manage suppressions; compliance: also read bodies and "
              "decide; admin: everything.")
@click.option("--tenant", "tenant_name", help="Bind the key to one tenant.")
@click.option("--expires-days", type=int, help="Expire after this many days.")
@with_store
async def apikey_add(store: DirectoryStore, config: Config, name: str, role: str,
                     tenant_name: str | None, expires_days: int | None) -> None:
    """Make an admin API key; it is shown once, stored as a hash."""
    from datetime import UTC, datetime, timedelta

    from gateway.store.api_keys import ApiKeys

    tenant_id = (await store.tenant(tenant_name)).id if tenant_name else None
    expires = (datetime.now(UTC) + timedelta(days=expires_days)) if expires_days else None
    key_id, key = await ApiKeys(store.engine).create(name, role, tenant_id, _actor(), expires)
    click.echo(f"API key {key_id} ({role}{', ' + tenant_name if tenant_name else ''})")
    click.echo(f"key (shown once): {key}")


@apikey.command("list")
@with_store
async def apikey_list(store: DirectoryStore, config: Config) -> None:
    """List the admin API keys (never the keys themselves)."""
    from gateway.store.api_keys import ApiKeys

    names = await store.tenant_names()
    click.echo("id\tname\trole\ttenant\tcreated\texpires\tlast used\trevoked")
    for k in await ApiKeys(store.engine).listing():
        def when(d: Any) -> str:
            return f"{d:%Y-%m-%d %H:%M}" if d else "-"

        tenant_label = names.get(k.tenant_id, "-") if k.tenant_id is not None else "-"
        click.echo(f"{k.key_id}\t{k.name}\t{k.role}\t{tenant_label}\t{when(k.created_at)}\t"
                   f"{when(k.expires_at)}\t{when(k.last_used_at)}\t{when(k.revoked_at)}")


@apikey.command("revoke")
@click.argument("key_id")
@with_store
async def apikey_revoke(store: DirectoryStore, config: Config, key_id: str) -> None:
    """Revoke an admin API key at once."""
    from gateway.store.api_keys import ApiKeys

    await ApiKeys(store.engine).revoke(key_id, _actor())
    click.echo(f"API key {key_id} revoked")


# Command groups kept in modules of their own register themselves on `cli`.
from gateway import (  # noqa: E402, F401
    cli_audit,
    cli_dkim,
    cli_optouts,
    cli_retention,
    cli_review,
    cli_send,
    cli_subjects,
    cli_suppress,
    cli_users,
)
