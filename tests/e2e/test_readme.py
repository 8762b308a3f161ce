"""The README's commands work verbatim for a newcomer: in a copy of the checkout, `make run`
starts the gateway as the README says, and every line of every block marked
`<!-- runnable -->` (in README.md, then in docs/*.md) runs in one shell session, in order,
as written. The only changes are the values the README says a reader copies from earlier
output: `<token>` (the unsubscribe token of the newest copy in var/outbox/new/),
`<queue-id>` (the last "queued as" printed) and `<key>` (the last API key printed). A line
ending in `# exit N` must exit N; every other line must exit 0. Every link `make run`
prints must answer.

The tour uses the development ports (2587, 2080, 2081, ...), as the README does: nothing
else in the suite listens on them.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[2]
MARK = "<!-- runnable -->"
BLOCK = re.compile(r"^" + re.escape(MARK) + r"\n```(?:sh|bash)\n(.*?)^```", re.M | re.S)
EXPECT = re.compile(r"#\s*exit (\d+)\s*$")
BANNER_END = "try it, in another terminal"
# production walkthroughs a suite cannot run: named here, left out
NOT_RUN = ("systemctl", "kubectl", "docker")


@dataclass
class Line:
    source: str
    text: str
    expect: int


def runnable_lines(root: Path) -> list[Line]:
    files = [root / "README.md", *sorted((root / "docs").glob("*.md"))]
    lines = []
    for path in files:
        for block in BLOCK.findall(path.read_text()):
            for text in block.splitlines():
                if not text.strip() or text.lstrip().startswith("#"):
                    continue
                if text.split()[0] in NOT_RUN or (text.split()[0] == "sudo"
                                                  and text.split()[1] in NOT_RUN):
                    continue
                found = EXPECT.search(text)
                lines.append(Line(path.name, text, int(found.group(1)) if found else 0))
    return lines


def checkout_copy(tmp_path: Path) -> Path:
    """The checkout's files (as a clone has them), sharing its virtual environment."""
    work = tmp_path / "checkout"
    shutil.copytree(ROOT, work, ignore=shutil.ignore_patterns(
        ".git", ".venv", "var", "var-tenant-keys", "__pycache__", ".pytest_cache",
        ".mypy_cache", ".ruff_cache", "node_modules"))
    (work / ".venv").symlink_to(ROOT / ".venv")
    return work


class Shell:
    """One bash session, line by line: what a line exports or sources stays for the next,
    as in a terminal."""

    def __init__(self, cwd: Path) -> None:
        self.cwd = cwd
        self.env = {k: v for k, v in os.environ.items()
                    if not k.startswith("GATEWAY") and k not in ("VIRTUAL_ENV", "CI")}
        self.env["PATH"] = ":".join(p for p in self.env.get("PATH", "").split(":")
                                    if ".venv" not in p)  # `gateway` only if a line adds it
        self.output = ""

    def run(self, text: str) -> subprocess.CompletedProcess[str]:
        state = self.cwd / ".tour-env"
        script = f'{text}\nstatus=$?\nenv -0 > "{state}"\nexit $status\n'
        done = subprocess.run(["bash", "-c", script], cwd=self.cwd, env=self.env,
                              capture_output=True, text=True, timeout=120)
        if state.exists():
            pairs = state.read_bytes().split(b"\0")
            self.env = dict(p.decode().split("=", 1) for p in pairs if b"=" in p)
            state.unlink()
        self.output += done.stdout + done.stderr
        return done


def fill(text: str, shell: Shell, outbox: Path) -> str:
    if "<token>" in text:
        newest = max(outbox.iterdir(), key=lambda p: p.stat().st_mtime)
        token = re.search(rb"/u/([a-z2-7]+)", newest.read_bytes())
        assert token, f"no unsubscribe link in {newest.name}"
        text = text.replace("<token>", token.group(1).decode())
    if "<queue-id>" in text:
        text = text.replace("<queue-id>", re.findall(r"queued as (\w+)", shell.output)[-1])
    if "<key>" in text:
        text = text.replace("<key>", re.findall(r"\bocg_\w+_[\w-]+", shell.output)[-1])
    return text


def test_every_readme_line_runs_verbatim_after_make_run(tmp_path: Path):
    if shutil.which("make") is None:
        pytest.fail("make is required")
    work = checkout_copy(tmp_path)
    lines = runnable_lines(work)
    assert len(lines) >= 10, lines
    shell = Shell(work)
    server = subprocess.Popen(["make", "run"], cwd=work, env=shell.env, text=True,
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                              start_new_session=True)
    printed: list[str] = []
    try:
        assert server.stdout is not None
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            line = server.stdout.readline()
            if not line:
                pytest.fail("make run stopped:\n" + "".join(printed))
            printed.append(line)
            if line.startswith(BANNER_END):
                break
        else:
            pytest.fail("make run printed no banner:\n" + "".join(printed))
        # every link make run prints answers
        for url in re.findall(r"https?://[^\s)]+", "".join(printed)):
            with urllib.request.urlopen(url, timeout=10) as response:
                assert response.status == 200, url
        ran = []
        for line in lines:
            text = fill(line.text, shell, work / "var/outbox/new")
            done = shell.run(text)
            assert done.returncode == line.expect, (
                f"{line.source}: `{text}` exited {done.returncode}\n{done.stdout}{done.stderr}")
            ran.append(f"{line.source}: {line.text}")
        print(f"\n{len(ran)} lines run verbatim:\n" + "\n".join(ran))
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=60)
        if server.stdout is not None:
            server.stdout.close()
