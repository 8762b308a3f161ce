"""A real IMAP server for the tests: Debian's Dovecot, on a loopback port with implicit TLS
from the test CA, taking only XOAUTH2 and OAUTHBEARER logins, each checked through its
`oauth2` passdb against the local OAuth server's userinfo endpoint. Mail lives in a Maildir
per user under the test's directory.

The tests use it as a mailbox provider would be used: they APPEND bounces, complaints and
replies with a token the OAuth server issued, and read flags back to see that the gateway
changed nothing.
"""

from __future__ import annotations

import asyncio
import contextlib
import imaplib
import os
import pwd
import shutil
import socket
import ssl
import subprocess
import tempfile
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

DOVECOT = "/usr/sbin/dovecot"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def xoauth2(user: str, token: str) -> bytes:
    return f"user={user}\x01auth=Bearer {token}\x01\x01".encode()


@dataclass
class Dovecot:
    port: int
    directory: Path
    ca_file: str

    def client(self, user: str, token: str) -> imaplib.IMAP4_SSL:
        context = ssl.create_default_context(cafile=self.ca_file)
        imap = imaplib.IMAP4_SSL("127.0.0.1", self.port, ssl_context=context, timeout=10)
        try:
            imap.authenticate("XOAUTH2", lambda _: xoauth2(user, token))
        except imaplib.IMAP4.error:
            imap.shutdown()
            raise
        return imap

    def append(self, user: str, token: str, message: bytes, folder: str = "INBOX",
               flags: str = "") -> None:
        with self.client(user, token) as imap:
            if folder != "INBOX":
                imap.create(folder)
            typ, data = imap.append(folder, f"({flags})" if flags else None,
                                    imaplib.Time2Internaldate(time.time()),
                                    message.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n"))
            assert typ == "OK", data

    def flags(self, user: str, token: str, folder: str = "INBOX") -> dict[int, str]:
        """Every message's flags by UID, read with EXAMINE (which changes nothing)."""
        with self.client(user, token) as imap:
            imap.select(folder, readonly=True)
            typ, data = imap.uid("FETCH", "1:*", "(FLAGS)")
        found = {}
        for item in data:
            if not item:
                continue
            text = item.decode() if isinstance(item, bytes) else item[0].decode()
            uid = int(text.split("UID ", 1)[1].split()[0].rstrip(")"))
            found[uid] = text.split("FLAGS (", 1)[1].split(")", 1)[0]
        return found

    @property
    def log(self) -> str:
        path = self.directory / "dovecot.log"
        return path.read_text(errors="replace") if path.exists() else ""


def _config(directory: Path, store: Path, port: int, cert_file: str, key_file: str,
            userinfo: str) -> str:
    (directory / "oauth2.conf").write_text(
        "introspection_mode = auth\n"
        f"introspection_url = {userinfo}\n"
        "username_attribute = email\n")
    uid, gid = os.getuid(), os.getgid()
    if uid == 0:  # Dovecot never gives mail to root: the package's own system user
        entry = pwd.getpwnam("dovecot")
        uid, gid = entry.pw_uid, entry.pw_gid
        os.chown(store, uid, gid)
    return f"""
base_dir = {store}/run
state_dir = {directory}/state
log_path = {directory}/dovecot.log
protocols = imap
listen = 127.0.0.1
ssl = required
ssl_cert = <{cert_file}
ssl_key = <{key_file}
auth_mechanisms = xoauth2 oauthbearer
disable_plaintext_auth = yes
auth_cache_size = 0
first_valid_uid = {uid}
first_valid_gid = {gid}
mail_location = maildir:{store}/mail/%u
mail_uid = {uid}
mail_gid = {gid}
service imap-login {{
  inet_listener imap {{
    port = 0
  }}
  inet_listener imaps {{
    address = 127.0.0.1
    port = {port}
    ssl = yes
  }}
}}
service stats {{
  unix_listener stats-reader {{
    mode = 0600
  }}
  unix_listener stats-writer {{
    mode = 0600
  }}
}}
passdb {{
  driver = oauth2
  mechanisms = xoauth2 oauthbearer
  args = {directory}/oauth2.conf
}}
userdb {{
  driver = static
  args = uid={uid} gid={gid} home={store}/home/%u
}}
"""


@contextlib.asynccontextmanager
async def running_dovecot(directory: Path, cert_file: str, key_file: str, ca_file: str,
                          userinfo_url: str) -> AsyncIterator[Dovecot]:
    if not os.path.exists(DOVECOT):
        raise RuntimeError("dovecot is required (scripts/install-system-packages.sh)")
    directory.mkdir(parents=True, exist_ok=True)
    port = free_port()
    conf = directory / "dovecot.conf"
    # the mail store and the sockets: outside pytest's private (0700) tree, which Dovecot's
    # user cannot enter, and short (a socket path has at most 107 bytes)
    store = Path(tempfile.mkdtemp(prefix="ocg-dv-"))
    store.chmod(0o755)
    conf.write_text(_config(directory, store, port, cert_file, key_file, userinfo_url))
    with open(directory / "stderr", "wb") as stderr:
        process = subprocess.Popen([DOVECOT, "-F", "-c", str(conf)],
                                   stdout=subprocess.DEVNULL, stderr=stderr)
    server = Dovecot(port, directory, ca_file)
    try:
        deadline = time.monotonic() + 15
        while True:
            if process.poll() is not None:
                stderr_text = (directory / "stderr").read_text(errors="replace")
                raise RuntimeError(f"dovecot stopped: {stderr_text}{server.log}")
            with contextlib.suppress(OSError):
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            if time.monotonic() > deadline:
                raise RuntimeError(f"dovecot did not listen: {server.log}")
            await asyncio.sleep(0.05)
        yield server
    finally:
        process.terminate()
        try:
            await asyncio.to_thread(process.wait, 10)
        except subprocess.TimeoutExpired:
            process.kill()
        shutil.rmtree(store, ignore_errors=True)
