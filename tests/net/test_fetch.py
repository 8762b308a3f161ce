"""The guarded fetcher: the rules every tenant-supplied URL is fetched under."""

from __future__ import annotations

import asyncio

import pytest

from gateway.config import FetchConfig
from gateway.net.fetch import FetchRefused, GuardedFetcher
from tests.support.receiver import Receiver


@pytest.mark.parametrize("url, problem", [
    ("http://tracker.example/o.gif", "must use https"),
    ("ftp://tracker.example/o.gif", "must use https"),
    ("https://tracker.example:8443/o.gif", "port must be 80 or 443"),
    ("https://user:pw@tracker.example/o.gif", "must not carry credentials"),
    ("https:///o.gif", "has no host"),
    ("https://127.0.0.1/o.gif", "non-public"),
    ("https://10.1.2.3/o.gif", "non-public"),
    ("https://192.168.1.1/o.gif", "non-public"),
    ("https://169.254.169.254/latest/meta-data", "non-public"),
    ("https://[::1]/o.gif", "non-public"),
    ("https://[fd00::1]/o.gif", "non-public"),  # unique local
    ("https://[fe80::1]/o.gif", "non-public"),  # link local
    ("https://224.0.0.1/o.gif", "non-public"),  # multicast
    ("https://[::ffff:127.0.0.1]/o.gif", "non-public"),
    ("https://localhost/o.gif", "non-public"),  # a name that resolves to loopback
])
async def test_refused(url: str, problem: str):
    with pytest.raises(FetchRefused, match=problem):
        await GuardedFetcher(FetchConfig()).resolve(url)


async def test_a_public_address_is_pinned_and_keeps_its_name():
    target = await GuardedFetcher(FetchConfig()).resolve("https://93.184.215.14/o.gif?x=1")
    assert target.url == "https://93.184.215.14:443/o.gif?x=1" and target.host == "93.184.215.14"


async def test_only_an_allow_listed_loopback_port_is_reached_with_its_host_name():
    receiver = await Receiver().start()
    try:
        config = FetchConfig(allow_http=True, allow_hosts=(f"localhost:{receiver.port}",))
        fetcher = GuardedFetcher(config)
        response = await fetcher.request("GET", f"http://localhost:{receiver.port}/o?i=1")
        assert response.status == 200
        (seen,) = receiver.requests
        assert seen.headers["host"] == "localhost" and seen.path == "/o?i=1"
        with pytest.raises(FetchRefused):  # another port of the same host
            await fetcher.request("GET", f"http://localhost:{receiver.port + 1}/o")
        await fetcher.close()
    finally:
        await receiver.stop()


async def test_redirects_are_not_followed():
    receiver = await Receiver(status=302).start()
    try:
        fetcher = GuardedFetcher(FetchConfig(allow_http=True,
                                             allow_hosts=(f"127.0.0.1:{receiver.port}",)))
        response = await fetcher.request("GET", f"http://127.0.0.1:{receiver.port}/r")
        assert response.status == 302 and len(receiver.requests) == 1
        await fetcher.close()
    finally:
        await receiver.stop()


async def test_the_answer_is_read_only_up_to_the_cap():
    async def huge(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 10000000\r\n\r\n")
        try:
            for _ in range(1000):
                writer.write(b"x" * 10000)
                await writer.drain()
        except ConnectionError:
            pass
        writer.close()

    server = await asyncio.start_server(huge, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        fetcher = GuardedFetcher(FetchConfig(allow_http=True, max_response_bytes=4096,
                                             allow_hosts=(f"127.0.0.1:{port}",)))
        response = await fetcher.request("GET", f"http://127.0.0.1:{port}/big")
        assert response.status == 200 and len(response.body) == 4096
        await fetcher.close()
    finally:
        server.close()
        await server.wait_closed()
