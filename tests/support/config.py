"""The one way tests build a configuration without a running gateway: a minimal valid
environment, plus TOML text and overrides. (A running gateway's comes from
`tests.conftest.write_config`.)"""

from __future__ import annotations

from pathlib import Path

from gateway import config as config_module

BASE = {
    "GATEWAY__SMTP__TLS_CERT": "/etc/cert.pem",
    "GATEWAY__SMTP__TLS_KEY": "/etc/key.pem",
    "GATEWAY__VAULT__MASTER_KEY_FILE": "/run/key",
    "GATEWAY__UPSTREAMS__OUT__KIND": "maildir",
    "GATEWAY__UPSTREAMS__OUT__PATH": "/tmp/out",
    "GATEWAY__UNSUBSCRIBE__BASE_URL": "https://links.example.com",
}


def load(text: str = "", tmp_path: Path | None = None, **env: str):
    environ = {**BASE, **env}
    if tmp_path is None:
        return config_module.load(None, environ)
    path = tmp_path / "c.toml"
    path.write_text(text)
    return config_module.load(path, environ)
