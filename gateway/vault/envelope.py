"""Envelope encryption: a fresh AES-256-GCM data key per secret, wrapped by the master key.

The associated data binds each ciphertext to where it belongs (for example tenant, table,
row purpose), so a sealed value copied elsewhere fails to open.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import struct

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from gateway.errors import VaultError
from gateway.vault.keys import KeyProvider, MasterKey

_FORMAT = 1
_NONCE = 12


class Vault:
    """Seals and opens secrets under the primary master key; older keys still open."""

    def __init__(self, provider: KeyProvider) -> None:
        self._provider = provider
        self._keys: dict[str, MasterKey] = {}
        self._primary: MasterKey | None = None
        self.reload()

    def reload(self) -> None:
        """Read the key set again (SIGHUP). A failure keeps the keys already loaded."""
        keys = self._provider.load()
        if not keys:
            raise VaultError("The master key provider returned no key.")
        self._keys = {k.key_id: k for k in keys}
        self._primary = keys[0]

    @property
    def primary_key_id(self) -> str:
        assert self._primary is not None
        return self._primary.key_id

    def seal(self, plaintext: bytes, context: bytes) -> tuple[bytes, str]:
        """Return (sealed blob, key id)."""
        master = self._primary
        assert master is not None
        data_key = AESGCM.generate_key(bit_length=256)
        aad = _aad(context, master.key_id)
        wrap_nonce, nonce = secrets.token_bytes(_NONCE), secrets.token_bytes(_NONCE)
        wrapped = AESGCM(master.material).encrypt(wrap_nonce, data_key, aad)
        body = AESGCM(data_key).encrypt(nonce, plaintext, aad)
        blob = struct.pack("!BH", _FORMAT, len(wrapped)) + wrap_nonce + wrapped + nonce + body
        return blob, master.key_id

    def open(self, blob: bytes, key_id: str, context: bytes) -> bytes:
        master = self._keys.get(key_id)
        if master is None:
            raise VaultError(f"Master key {key_id} is not loaded.")
        try:
            version, wrapped_len = struct.unpack_from("!BH", blob)
            if version != _FORMAT:
                raise VaultError("Sealed value has an unknown format.")
            offset = 3
            wrap_nonce = blob[offset : offset + _NONCE]
            offset += _NONCE
            wrapped = blob[offset : offset + wrapped_len]
            offset += wrapped_len
            nonce = blob[offset : offset + _NONCE]
            body = blob[offset + _NONCE :]
            aad = _aad(context, key_id)
            data_key = AESGCM(master.material).decrypt(wrap_nonce, wrapped, aad)
            return AESGCM(data_key).decrypt(nonce, body, aad)
        except (InvalidTag, struct.error, ValueError):
            raise VaultError("Sealed value cannot be opened (wrong key or context).") from None

    def purpose_key(self, purpose: str) -> bytes:
        """A key for one purpose (such as audit digests), derived from the primary master key.

        Interim: issue 4 replaces derivation by random purpose keys stored sealed, seeded with
        these values so existing digests stay valid across master-key rotation.
        """
        assert self._primary is not None
        return HKDF(algorithm=hashes.SHA256(), length=32, salt=b"ocg-purpose-v1",
                    info=purpose.encode()).derive(self._primary.material)


def _aad(context: bytes, key_id: str) -> bytes:
    return b"ocg|" + key_id.encode() + b"|" + context


def keyed_digest(key: bytes, value: str) -> str:
    """HMAC-SHA256 hex digest: lets rows name a person without storing who they are."""
    return hmac.new(key, value.encode("utf-8", "surrogateescape"), hashlib.sha256).hexdigest()
