"""A byte-exact SMTP client for protocol tests (blocking; run it in a thread)."""

from __future__ import annotations

import base64
import re
import socket
import ssl

REPLY_END = re.compile(rb"^\d{3} ", re.M)


class RawSession:
    def __init__(self, port: int, context: ssl.SSLContext | None = None,
                 implicit: bool = False) -> None:
        sock = socket.create_connection(("127.0.0.1", port), timeout=5)
        if implicit:
            assert context is not None
            sock = context.wrap_socket(sock, server_hostname="localhost")
        self.sock = sock
        self.context = context
        self.buffer = b""
        self.greeting = self.reply()

    def send(self, data: bytes) -> None:
        self.sock.sendall(data)

    def reply(self) -> str:
        """Read one (possibly multi-line) reply."""
        while True:
            lines = self.buffer.split(b"\r\n")
            for i, line in enumerate(lines[:-1]):
                if re.match(rb"^\d{3} ", line) or (line[:3].isdigit() and len(line) == 3):
                    out = b"\r\n".join(lines[: i + 1])
                    self.buffer = b"\r\n".join(lines[i + 1 :])
                    return out.decode("utf-8", "replace")
            chunk = self.sock.recv(65536)
            if not chunk:
                raise ConnectionError(f"closed; unread: {self.buffer!r}")
            self.buffer += chunk

    def cmd(self, line: str | bytes) -> str:
        self.send((line.encode() if isinstance(line, str) else line) + b"\r\n")
        return self.reply()

    def starttls(self) -> str:
        answer = self.cmd("STARTTLS")
        assert self.context is not None
        self.sock = self.context.wrap_socket(self.sock, server_hostname="localhost")
        return answer

    def login(self, user: str, password: str) -> str:
        token = base64.b64encode(f"\0{user}\0{password}".encode()).decode()
        return self.cmd(f"AUTH PLAIN {token}")

    def ready(self, user: str, password: str) -> RawSession:
        self.cmd("EHLO client.test")
        self.starttls()
        self.cmd("EHLO client.test")
        answer = self.login(user, password)
        assert answer.startswith("235 "), answer
        return self

    def close(self) -> None:
        self.sock.close()

    def __enter__(self) -> RawSession:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
