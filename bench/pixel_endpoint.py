"""Pixel endpoint throughput and latency, with open events written, against the ceiling.

One run, the same load from wrk (Debian's package), each server one process:
- the gateway's public listener alone (`gateway serve --role public`, as in production: the
  pixel path does not share a loop with SMTP), SQLite, open events buffered and written
  every second, GET /p/<valid token> (a proxy-mode token without a tracker URL to forward);
- a static 1x1 GIF from a bare ASGI app under the same uvicorn settings: the ceiling.
Then the opens written are counted. Also: the rewrite cost per message for a 100 KB HTML body.

    python bench/pixel_endpoint.py [--seconds 10] [--connections 64]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.relay_throughput import free_port, prepare, wait_port, write_config  # noqa: E402
from gateway import config as config_module  # noqa: E402
from gateway.outbound.footer import FooterPlan, PixelPolicy  # noqa: E402
from gateway.outbound.mime import body_parts  # noqa: E402
from gateway.pixels.token import PROXY, PURPOSE, PixelClaims, PixelSealer  # noqa: E402
from gateway.store.engine import create_engine  # noqa: E402
from gateway.vault.envelope import Vault  # noqa: E402
from gateway.vault.master_keys import provider_for  # noqa: E402
from gateway.vault.purpose import PurposeKeys  # noqa: E402

STATIC = '''
import uvicorn
GIF = bytes.fromhex("47494638396101000100800000000000ffffff21f9040100000000"
                    "2c00000000010001000002024401003b")
async def app(scope, receive, send):
    await send({"type": "http.response.start", "status": 200,
                "headers": [(b"content-type", b"image/gif"), (b"content-length", b"43"),
                            (b"cache-control", b"no-store")]})
    await send({"type": "http.response.body", "body": GIF})
uvicorn.run(app, host="127.0.0.1", port=PORT, access_log=False, log_level="warning",
            server_header=False, lifespan="off", proxy_headers=False)
'''


async def token(config_path: Path) -> tuple[str, str]:
    config = config_module.load(config_path, {})
    engine = create_engine(config.database.url, schema=config.database.schema)
    keys = PurposeKeys(engine, Vault(provider_for(config)))
    await keys.ensure(PURPOSE)
    sealed = PixelSealer(keys).seal_proxy(PixelClaims(
        PROXY, 1, "bench-campaign", 1, "BENCHQUEUEID", b"\x01" * 32, int(time.time()) - 3600))
    await engine.dispose()
    return sealed, config.database.url.split("///", 1)[1]


def wrk(url: str, seconds: int, connections: int) -> tuple[float, str, str]:
    out = subprocess.run(["wrk", "-t2", f"-c{connections}", f"-d{seconds}s", "--latency", url],
                         capture_output=True, text=True, check=True).stdout
    rate = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    p50 = re.search(r"^\s+50%\s+(\S+)$", out, re.M).group(1)
    p99 = re.search(r"^\s+99%\s+(\S+)$", out, re.M).group(1)
    return rate, p50, p99


def opens_written(db: str) -> int:
    import sqlite3

    with sqlite3.connect(db) as conn:
        return int(conn.execute("select count(*) from opens").fetchone()[0])


def rewrite_cost(repeat: int = 200) -> float:
    """ms per message: a 100 KB HTML body with three pixels, walked, rewritten, rendered."""
    line = '<tr><td style="padding:4px">Lorem ipsum dolor sit amet, consectetur.</td></tr>\n'
    body = ("<html><body><table>" + line * 1280 +
            '<img src="https://t.list-manage.com/track/open.php?u=1&amp;id=2" width="1" '
            'height="1"><img src="https://cdn.example/logo.png" width="200">'
            '<img src="https://px.example/o.gif" style="display:none"></table></body></html>')
    raw = (b"From: a@bench.example\r\nMIME-Version: 1.0\r\nContent-Type: text/html; "
           b"charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n" + body.encode())
    head_end = raw.index(b"\r\n\r\n") + 2
    values = {f"pixel-{i}": b"https://links.bench.example/p/" + b"x" * 120 for i in range(3)}
    start = time.process_time()
    for _ in range(repeat):
        plan = FooterPlan(raw, head_end, body_parts(raw, head_end), "", "",
                          PixelPolicy("proxy"))
        plan.render("https://links.bench.example/u/x", values)
    assert len(plan.pixels) == 2
    return 1000 * (time.process_time() - start) / repeat, len(body)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--connections", type=int, default=64)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="ocg-bench-") as tmp:
        work = Path(tmp)
        public_port, static_port = free_port(), free_port()
        path = write_config(work, free_port(), free_port(), "sqlite")
        path.write_text(path.read_text() + f"[http]\npublic_port = {public_port}\n"
                        "admin_port = 0\n")
        asyncio.run(prepare(path, "sqlite"))
        pixel, db = asyncio.run(token(path))
        env = {k: v for k, v in os.environ.items() if not k.startswith("GATEWAY")}
        env.update({k: v for k, v in os.environ.items() if k.startswith("GATEWAY__PIXELS")})
        gateway = subprocess.Popen([sys.executable, "-m", "gateway", "--config", str(path),
                                    "serve", "--role", "public"], cwd=ROOT, env=env,
                                   stdout=subprocess.DEVNULL)
        static = subprocess.Popen([sys.executable, "-c",
                                   STATIC.replace("PORT", str(static_port))])
        try:
            wait_port(public_port)
            wait_port(static_port)
            url = f"http://127.0.0.1:{public_port}/p/{pixel}"
            wrk(url, 2, args.connections)  # warm-up
            warm = opens_written(db) if Path(db).exists() else 0
            time.sleep(1.5)
            warm = opens_written(db)
            rate, p50, p99 = wrk(url, args.seconds, args.connections)
            time.sleep(2.5)  # the last batch of open events
            written = opens_written(db) - warm
            s_rate, s_p50, s_p99 = wrk(f"http://127.0.0.1:{static_port}/p/x", args.seconds,
                                       args.connections)
        finally:
            for proc in (gateway, static):
                proc.send_signal(signal.SIGTERM)
                proc.wait(timeout=30)
    print(f"wrk -t2 -c{args.connections} -d{args.seconds}s, one server process each, "
          "loopback")
    print(f"  gateway GET /p/<token>, opens written  {rate:8.0f} req/s   p50 {p50:>8}  "
          f"p99 {p99:>8}   ({written} opens written for {int(rate * args.seconds)} requests)")
    print(f"  static 1x1 GIF, same uvicorn           {s_rate:8.0f} req/s   p50 {s_p50:>8}  "
          f"p99 {s_p99:>8}")
    print(f"  ratio gateway/static                   {rate / s_rate:8.2f}")
    ms, size = rewrite_cost()
    print(f"\nrewrite cost, {size // 1024} KB HTML body, 3 images (2 pixels): {ms:.3f} ms "
          "per message (MIME walk, pixel scan, slots; process_time)")


if __name__ == "__main__":
    main()
