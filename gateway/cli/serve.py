"""`gateway serve`: run the gateway until SIGTERM or SIGINT."""

from __future__ import annotations

import asyncio
import gc
import logging
import os
import signal
import sys
from typing import Any

import click

from gateway.cli import shared
from gateway.config import Config
from gateway.observability import logs


@click.command()
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
    config = shared.load_config(ctx)
    logs.setup(config.log_level,
               human=logs.wants_human(config.log_format, config.is_development))
    from gateway.config.advice import advice

    for setting, text in advice(config):
        logging.getLogger("gateway").warning(f"{setting} {text}", extra={"setting": setting})
    roles = ("smtp", "public", "admin") if role == "all" else (role,)
    if worker_sockets:  # one worker of a supervisor: it bound the sockets and prints
        from gateway.app.workers import inherited

        shared.run(_serve(config, ctx.obj.get("config_path"), roles, inherited(worker_sockets)))
        return
    if workers is None:
        postgres = config.database.url.startswith("postgresql")
        workers = (os.cpu_count() or 1) if postgres else 1
    if workers > 1:
        sys.exit(shared.run(_supervise(config, ctx.obj.get("config_path"), role, roles, workers)))
    if role == "all" and not config.is_development:
        logging.getLogger("gateway").warning(
            "the public listener (pixels, unsubscribe) shares this process's event loop with "
            "SMTP; in production run 'gateway serve --role smtp' and '--role public' apart "
            "(deploy/systemd/)", extra={"alert": "ops"})
    shared.run(_serve(config, ctx.obj.get("config_path"), roles))


async def _supervise(config: Config, config_path: str | None, role: str,
                     roles: tuple[str, ...], workers: int) -> int:
    from gateway.app.service import Ports
    from gateway.app.workers import Supervisor, bind_listeners

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
    from gateway.app.service import Gateway

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
        await gateway.dispose_engines()
        raise
    loop.add_signal_handler(signal.SIGHUP, gateway.reload)
    # What starting built (modules, the parts, caches) lives as long as the process: out of
    # the collector's sight, each collection walks only what messages allocate (measured
    # with bench/peers.py: ~8 % of a message's CPU)
    gc.collect()
    gc.freeze()
    if sockets is None:  # a supervisor's worker prints nothing: the supervisor did
        domains = ", ".join(sorted(gateway.mailto_domains())) if ports.mailto else ""
        _banner(config, roles, ports, domains)
    else:
        from gateway.app.workers import tell_ready

        tell_ready()
    await stop.wait()
    await gateway.stop()


def _banner(config: Config, roles: tuple[str, ...], ports: Any, mailto_domains: str) -> None:
    from gateway.app.service import demo_credentials_path

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
