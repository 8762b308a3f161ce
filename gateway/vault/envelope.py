"""Envelope encryption: a fresh AES-256-GCM data key per secret, wrapped by the master key.

The associated data binds each ciphertext to where it belongs (for example tenant, table,
row purpose), so a sealed value copied elsewhere fails to open.
"""

from __future__ import annotations

import secrets
import struct
from dataclasses import dataclass

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from gateway.errors import VaultError
from gateway.vault.master_keys import KeyProvider, MasterKey

# Blob layout: version (1 byte) | wrapped-key length (2) | wrap nonce (12) | wrapped data
# key | nonce (12) | ciphertext. Format 2 binds the ciphertext to its context only and the
# wrapped data key to context + master key id, so a master-key rotation re-wraps the data key
# and leaves the ciphertext untouched. Format 1 (issue 2) bound both to the key id.
_FORMAT = 2
_NONCE = 12
_HEADER = struct.Struct("!BH")


@dataclass(frozen=True, slots=True)
class _Parts:
    version: int
    wrap_nonce: bytes
    wrapped: bytes
    nonce: bytes
    body: bytes


def _split(blob: bytes) -> _Parts:
    try:
        version, wrapped_len = _HEADER.unpack_from(blob)
    except struct.error:
        raise VaultError("Sealed value is truncated.") from None
    if version not in (1, 2):
        raise VaultError("Sealed value has an unknown format.")
    offset = _HEADER.size
    wrap_nonce = blob[offset : offset + _NONCE]
    offset += _NONCE
    wrapped = blob[offset : offset + wrapped_len]
    offset += wrapped_len
    nonce = blob[offset : offset + _NONCE]
    body = blob[offset + _NONCE :]
    if len(wrap_nonce) != _NONCE or len(nonce) != _NONCE or len(wrapped) != wrapped_len:
        raise VaultError("Sealed value is truncated.")
    return _Parts(version, wrap_nonce, wrapped, nonce, body)


def _join(version: int, wrap_nonce: bytes, wrapped: bytes, nonce: bytes, body: bytes) -> bytes:
    return _HEADER.pack(version, len(wrapped)) + wrap_nonce + wrapped + nonce + body


class Vault:
    """Seals under the primary master key; opens under any key of the loaded set."""

    def __init__(self, provider: KeyProvider) -> None:
        self._provider = provider
        self._keys: dict[str, MasterKey] = {}
        self._primary: MasterKey | None = None
        self.reload()

    def reload(self, provider: KeyProvider | None = None) -> None:
        """Read the key set again (SIGHUP), from `provider` when the configuration now names
        other key files (a rotation). A failure keeps the keys already loaded."""
        provider = provider or self._provider
        keys = provider.load()
        if not keys:
            raise VaultError("The master key provider returned no key.")
        self._provider = provider
        self._keys = {k.key_id: k for k in keys}
        self._primary = keys[0]

    @property
    def primary_key_id(self) -> str:
        assert self._primary is not None
        return self._primary.key_id

    @property
    def key_ids(self) -> tuple[str, ...]:
        return tuple(self._keys)

    def _master(self, key_id: str) -> MasterKey:
        master = self._keys.get(key_id)
        if master is None:
            raise VaultError(f"Master key {key_id} is not loaded.")
        return master

    def seal(self, plaintext: bytes, context: bytes) -> tuple[bytes, str]:
        """Return (sealed blob, key id of the master key that wrapped its data key)."""
        master = self._primary
        assert master is not None
        data_key = AESGCM.generate_key(bit_length=256)
        wrap_nonce, nonce = secrets.token_bytes(_NONCE), secrets.token_bytes(_NONCE)
        wrapped = AESGCM(master.material).encrypt(wrap_nonce, data_key,
                                                  _wrap_aad(context, master.key_id))
        body = AESGCM(data_key).encrypt(nonce, plaintext, _body_aad(context))
        return _join(_FORMAT, wrap_nonce, wrapped, nonce, body), master.key_id

    def _data_key(self, parts: _Parts, key_id: str, context: bytes) -> bytes:
        master = self._master(key_id)
        try:
            return AESGCM(master.material).decrypt(parts.wrap_nonce, parts.wrapped,
                                                   _wrap_aad(context, key_id))
        except (InvalidTag, ValueError):
            raise VaultError("Sealed value cannot be opened (wrong key or context).") from None

    def open(self, blob: bytes, key_id: str, context: bytes) -> bytes:
        parts = _split(blob)
        data_key = self._data_key(parts, key_id, context)
        aad = _body_aad(context) if parts.version == 2 else _wrap_aad(context, key_id)
        try:
            return AESGCM(data_key).decrypt(parts.nonce, parts.body, aad)
        except (InvalidTag, ValueError):
            raise VaultError("Sealed value cannot be opened (wrong key or context).") from None

    def rewrap(self, blob: bytes, key_id: str, context: bytes) -> tuple[bytes, str]:
        """The same secret under the primary master key.

        Format 2: only the wrapped data key changes; the ciphertext stays byte for byte.
        Format 1 blobs are opened and sealed again (their ciphertext named the old key).
        """
        parts = _split(blob)
        if parts.version == 1:
            return self.seal(self.open(blob, key_id, context), context)
        data_key = self._data_key(parts, key_id, context)
        master = self._primary
        assert master is not None
        wrap_nonce = secrets.token_bytes(_NONCE)
        wrapped = AESGCM(master.material).encrypt(wrap_nonce, data_key,
                                                  _wrap_aad(context, master.key_id))
        return _join(2, wrap_nonce, wrapped, parts.nonce, parts.body), master.key_id

    def derived_key(self, purpose: str) -> bytes:
        """The HKDF key issue 2 used for audit digests; now only the seed of the stored
        `audit-digest` purpose key, so digests written before it stay comparable."""
        assert self._primary is not None
        return HKDF(algorithm=hashes.SHA256(), length=32, salt=b"ocg-purpose-v1",
                    info=purpose.encode()).derive(self._primary.material)


def _wrap_aad(context: bytes, key_id: str) -> bytes:
    return b"ocg|" + key_id.encode() + b"|" + context


def _body_aad(context: bytes) -> bytes:
    return b"ocg-body|" + context
