"""What the pixel tests share: the campaign tool's tracker, and the settings that let the
gateway tell it (over http, on loopback) and read the client's network through the test's
trusted proxy."""

from __future__ import annotations

import pytest

from tests.support.receiver import Receiver


@pytest.fixture
async def tracker():
    receiver = await Receiver().start()
    yield receiver
    await receiver.stop()


@pytest.fixture
def pixel_settings(monkeypatch, tracker) -> None:
    monkeypatch.setenv("GATEWAY__FETCH__ALLOW_HTTP", "true")
    monkeypatch.setenv("GATEWAY__FETCH__ALLOW_HOSTS", f'["127.0.0.1:{tracker.port}"]')
    monkeypatch.setenv("GATEWAY__HTTP__TRUSTED_PROXIES", '["127.0.0.1/32"]')
    # a test opens its mail within milliseconds; the "fast" signal is tested on its own
    monkeypatch.setenv("GATEWAY__PIXELS__MACHINE_OPEN_SECONDS", "0")
