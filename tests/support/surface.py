"""The gateway's outside surface, as one sorted JSON document: every CLI command with its
arguments and options, every configuration key (the `GATEWAY__…` variable of each follows
from it), every metric name and its labels, and every HTTP route of the public and admin
listeners. `tests/test_surface.py` compares it with `tests/fixtures/surface.json`, recorded
before the rooms were remodelled (issue 24): moving code must change none of it.

    python -m tests.support.surface > tests/fixtures/surface.json   # a deliberate change
"""

from __future__ import annotations

import dataclasses
import json
import typing
from typing import Any

import click


def cli_surface() -> dict[str, Any]:
    from gateway.cli.main import cli

    found: dict[str, Any] = {}

    def walk(command: click.Command, path: str) -> None:
        if isinstance(command, click.Group):
            for name, sub in command.commands.items():
                walk(sub, f"{path} {name}")
            if not command.invoke_without_command or path == "gateway":
                return  # a group that runs on its own (`gateway report`) is a command too
        found[path] = {
            "arguments": [p.name for p in command.params if isinstance(p, click.Argument)],
            "options": sorted(o for p in command.params if isinstance(p, click.Option)
                              for o in p.opts + p.secondary_opts),
        }

    walk(cli, "gateway")
    global_options = sorted(o for p in cli.params for o in p.opts)
    return {"global options": global_options, "commands": found}


def config_keys() -> list[str]:
    from gateway.config import Config

    keys: list[str] = []

    def walk(kind: Any, prefix: str) -> None:
        hints = typing.get_type_hints(kind)
        for field in dataclasses.fields(kind):
            key = f"{prefix}{field.name}"
            hint = hints[field.name]
            if dataclasses.is_dataclass(hint):
                walk(hint, key + ".")
            else:
                keys.append(key)
                args = typing.get_args(hint)  # mappings of sections, e.g. upstreams.<name>
                for arg in args:
                    if dataclasses.is_dataclass(arg):
                        walk(arg, key + ".<name>.")

    walk(Config, "")
    return sorted(keys)


def metrics() -> dict[str, list[str]]:
    """Each metric's name and label names (prometheus_client keeps them on the collector)."""
    from gateway.observability import metrics as module

    found: dict[str, list[str]] = {}
    collectors = {id(c): c for c in module.REGISTRY._names_to_collectors.values()}
    for collector in collectors.values():
        name = getattr(collector, "_name", None) or type(collector).__name__
        found[str(name)] = sorted(getattr(collector, "_labelnames", ()))
    return dict(sorted(found.items()))


def http_routes(web: Any) -> dict[str, list[str]]:
    from gateway.web import admin, public

    def walk(routes: Any, prefix: str = "") -> Any:
        for route in routes:
            if hasattr(route, "path"):
                for method in sorted(getattr(route, "methods", None) or {"GET"}):
                    if method != "HEAD":
                        yield f"{method} {prefix}{route.path}"
            elif hasattr(route, "include_context"):  # FastAPI's included router
                context = route.include_context
                yield from walk(context.included_router.routes, prefix + context.prefix)

    def routes(app: Any) -> list[str]:
        return sorted(walk(app.routes))

    return {"public": routes(public._routes(web)) + ["GET /p/{token} (pixel)"],
            "admin": routes(admin._routes(web))}


def surface(web: Any) -> dict[str, Any]:
    return {"cli": cli_surface(), "config": config_keys(), "metrics": metrics(),
            "http": http_routes(web)}


if __name__ == "__main__":
    import asyncio
    import tempfile
    from pathlib import Path

    from tests.conftest import Database, make_pki, running_harness

    async def main() -> None:
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp)
            database = Database("sqlite", f"sqlite+aiosqlite:///{tmp}/gateway.db")
            async with running_harness(path, make_pki(path / "pki"), database) as h:
                print(json.dumps(surface(h.gateway.web), indent=1, sort_keys=True))

    asyncio.run(main())
