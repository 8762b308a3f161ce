"""docs/webhooks.md is enough to verify a delivery: its Python and Node verifiers, run as
written there, accept a real delivery from a running gateway with the secret `gateway
webhook set` printed, and refuse an altered body, another key, the undecoded secret used as
the key (the easy mistake), and an old timestamp."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from gateway.events.webhooks import sign
from tests.conftest import running_harness
from tests.support import messages
from tests.support.cli import gw
from tests.support.receiver import Receiver
from tests.support.webhooks import secret_bytes

DOC = Path(__file__).parents[2] / "docs/webhooks.md"
pytestmark = pytest.mark.parametrize("database", ["sqlite"], indirect=True)


def block(language: str) -> str:
    """The code block under `<!-- verifier: LANGUAGE -->` in the docs."""
    found = re.search(rf"<!-- verifier: {language} -->\n```\w+\n(.*?)```", DOC.read_text(),
                      re.S)
    assert found, f"no {language} verifier in {DOC.name}"
    return found.group(1)


def python_verifier() -> Callable[[str, str, bytes], bool]:
    namespace: dict[str, object] = {}
    exec(compile(block("python"), str(DOC), "exec"), namespace)  # noqa: S102 - our docs
    return namespace["verify"]  # type: ignore[return-value]


def node_verifier(tmp_path: Path) -> Callable[[str, str, bytes], bool]:
    node = shutil.which("node")
    if node is None:
        pytest.fail("node is required (scripts/install-system-packages.sh)")
    script = tmp_path / "verify.js"
    script.write_text(block("node") + """
const input = JSON.parse(require("node:fs").readFileSync(0, "utf8"));
process.stdout.write(String(verify(input.secret, input.header,
                                   Buffer.from(input.body, "base64"))));
""")

    def verify(secret: str, header: str, body: bytes) -> bool:
        import base64

        done = subprocess.run([node, str(script)], capture_output=True, text=True, timeout=30,
                              input=json.dumps({"secret": secret, "header": header,
                                                "body": base64.b64encode(body).decode()}))
        assert done.returncode == 0, done.stderr
        return done.stdout == "true"

    return verify


async def test_the_documented_verifiers_accept_a_real_delivery_and_nothing_else(
        tmp_path: Path, pki, database, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("GATEWAY__EVENTS__ALLOW_PRIVATE_TARGETS", "true")
    monkeypatch.setenv("GATEWAY__FETCH__ALLOW_HTTP", "true")
    receiver = await Receiver().start()
    async with running_harness(tmp_path, pki, database) as h:
        made = await gw(h, "webhook", "set", "acme", receiver.url)  # as an operator does
        assert made.returncode == 0, made.stderr
        secret = made.stdout.split("signing secret (shown once): ", 1)[1].strip()
        await h.send(messages.simple(), ["ok@example.org"])
        assert await h.gateway.webhooks.run_once() >= 1
    await receiver.stop()
    request = receiver.requests[-1]
    header, body = request.headers["x-ocg-signature"], request.body
    key = secret_bytes(secret)
    other = "A" * len(secret)
    old = sign(key, int(time.time()) - 600, body)
    undecoded = sign(secret.encode(), int(time.time()), body)
    for name, verify in (("python", python_verifier()), ("node", node_verifier(tmp_path))):
        assert verify(secret, header, body), name
        assert not verify(secret, header, body.replace(b"ok@", b"no@")), name
        assert not verify(other, header, body), name
        assert not verify(secret, undecoded, body), name
        assert not verify(secret, old, body), name
        assert not verify(secret, "t=,v1=", body), name
