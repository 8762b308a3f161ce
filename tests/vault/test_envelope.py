"""Envelope encryption and master key sources."""

from __future__ import annotations

import base64
import secrets
from pathlib import Path

import pytest

from gateway.errors import VaultError
from gateway.vault.envelope import Vault
from gateway.vault.master_keys import EnvKeyProvider, FileKeyProvider, generate_dev_key


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


def two_keys(tmp_path: Path) -> tuple[Path, Path]:
    old, new = tmp_path / "old.key", tmp_path / "new.key"
    for path in (old, new):
        path.write_text(base64.b64encode(secrets.token_bytes(32)).decode())
        path.chmod(0o600)
    return old, new


@pytest.mark.parametrize("tamper", ["flip-body", "flip-wrapped-key", "truncate", "swap-row",
                                    "swap-key-id"])
def test_tampered_values_do_not_open(tmp_path: Path, tamper: str):
    old, new = two_keys(tmp_path)
    vault = Vault(FileKeyProvider(new, (old,)))
    blob, key_id = vault.seal(b"refresh-token-value", b"mailboxes|7|refresh_token")
    context = b"mailboxes|7|refresh_token"
    if tamper == "flip-body":
        blob = blob[:-1] + bytes([blob[-1] ^ 1])
    elif tamper == "flip-wrapped-key":
        blob = blob[:20] + bytes([blob[20] ^ 1]) + blob[21:]
    elif tamper == "truncate":
        blob = blob[:30]
    elif tamper == "swap-row":
        context = b"mailboxes|8|refresh_token"  # the ciphertext copied to another row
    elif tamper == "swap-key-id":
        key_id = [k for k in vault.key_ids if k != key_id][0]
    with pytest.raises(VaultError) as info:
        vault.open(blob, key_id, context)
    assert "refresh-token-value" not in str(info.value)


def test_rotation_rewraps_the_data_key_and_leaves_the_ciphertext(tmp_path: Path):
    old, new = two_keys(tmp_path)
    before = Vault(FileKeyProvider(old))
    blob, old_id = before.seal(b"secret", b"ctx")
    during = Vault(FileKeyProvider(new, (old,)))  # new primary, old still opens
    assert during.open(blob, old_id, b"ctx") == b"secret"
    rewrapped, new_id = during.rewrap(blob, old_id, b"ctx")
    assert new_id == during.primary_key_id != old_id
    assert rewrapped[-(len(b"secret") + 16):] == blob[-(len(b"secret") + 16):]  # same body
    after = Vault(FileKeyProvider(new))  # the old key retired
    assert after.open(rewrapped, new_id, b"ctx") == b"secret"
    with pytest.raises(VaultError, match="not loaded"):
        after.open(blob, old_id, b"ctx")


def test_format_1_values_still_open_and_rewrap(tmp_path: Path):
    """Values sealed by issue 2's format bound the body to the key id too."""
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

    old, new = two_keys(tmp_path)
    vault = Vault(FileKeyProvider(old))
    master = vault._keys[vault.primary_key_id]
    aad = b"ocg|" + master.key_id.encode() + b"|ctx"
    data_key, wn, n = AESGCM.generate_key(bit_length=256), b"w" * 12, b"n" * 12
    wrapped = AESGCM(master.material).encrypt(wn, data_key, aad)
    v1 = (bytes([1]) + len(wrapped).to_bytes(2, "big") + wn + wrapped + n
          + AESGCM(data_key).encrypt(n, b"old secret", aad))
    assert vault.open(v1, master.key_id, b"ctx") == b"old secret"
    rotated = Vault(FileKeyProvider(new, (old,)))
    blob, key_id = rotated.rewrap(v1, master.key_id, b"ctx")
    assert Vault(FileKeyProvider(new)).open(blob, key_id, b"ctx") == b"old secret"
