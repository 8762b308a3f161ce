"""Envelope encryption and master key sources."""

from __future__ import annotations

import base64
import secrets
from pathlib import Path

import pytest

from gateway.errors import VaultError
from gateway.vault.envelope import Vault
from gateway.vault.keys import EnvKeyProvider, FileKeyProvider, generate_dev_key


def key_file(tmp_path: Path, mode: int = 0o600) -> Path:
    path = tmp_path / "k"
    path.write_text(base64.b64encode(secrets.token_bytes(32)).decode())
    path.chmod(mode)
    return path


def test_seal_opens_only_in_its_own_context(tmp_path: Path):
    vault = Vault(FileKeyProvider(key_file(tmp_path)))
    blob, key_id = vault.seal(b"message body", b"pending|1|Q1|a@example.org")
    assert b"message body" not in blob
    assert vault.open(blob, key_id, b"pending|1|Q1|a@example.org") == b"message body"
    with pytest.raises(VaultError):
        vault.open(blob, key_id, b"pending|2|Q1|a@example.org")  # copied to another tenant
    with pytest.raises(VaultError):
        vault.open(blob[:-1] + bytes([blob[-1] ^ 1]), key_id, b"pending|1|Q1|a@example.org")


def test_key_file_readable_by_others_is_refused(tmp_path: Path):
    with pytest.raises(VaultError, match="readable by others"):
        Vault(FileKeyProvider(key_file(tmp_path, 0o644)))


@pytest.mark.parametrize("value, message", [
    ("", "holds no master key"),
    ("not base64!", "not valid base64"),
    (base64.b64encode(b"short").decode(), "must be 32 bytes"),
])
def test_malformed_env_key_stops_start_up(value: str, message: str):
    with pytest.raises(VaultError, match=message):
        Vault(EnvKeyProvider("K", {"K": value}))


def test_dev_key_is_generated_once_and_marked(tmp_path: Path):
    path = tmp_path / "dev.key"
    generate_dev_key(path)
    first = path.read_text()
    generate_dev_key(path)
    assert path.read_text() == first
    assert "NOT FOR PRODUCTION" in first
    assert oct(path.stat().st_mode & 0o777) == "0o600"
    Vault(FileKeyProvider(path))
