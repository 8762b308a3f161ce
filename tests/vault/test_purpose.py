"""Purpose keys: made once, sealed, versioned; digest keys never rotated nor regenerated."""

from __future__ import annotations

from pathlib import Path

import pytest

from gateway import config as config_module
from gateway.audit.trail import DIGEST_PURPOSE, LEGACY_DIGEST_INFO, recipient_digest
from gateway.errors import Conflict, InvalidValue, VaultError
from gateway.store.engine import create_engine, upgrade
from gateway.vault.envelope import Vault
from gateway.vault.master_keys import FileKeyProvider, provider_for
from gateway.vault.purpose import PurposeKeys
from tests.conftest import Database, Pki, master_key_file, write_config


@pytest.fixture
async def setup(tmp_path: Path, pki: Pki, database: Database):
    path = write_config(tmp_path, pki, database, sink_port=2525)
    config = config_module.load(path, {})
    engine = create_engine(config.database.url, schema=config.database.schema)
    await upgrade(engine)
    yield engine, Vault(provider_for(config))
    await engine.dispose()


async def test_audit_digest_key_keeps_the_digests_written_before_it(setup):
    engine, vault = setup
    before = recipient_digest(vault.derived_key(LEGACY_DIGEST_INFO), "Alice@Example.org")
    keys = PurposeKeys(engine, vault)
    await keys.ensure(DIGEST_PURPOSE, seed=vault.derived_key(LEGACY_DIGEST_INFO))
    assert recipient_digest(keys.current(DIGEST_PURPOSE)[1], "alice@example.org") == before
    again = PurposeKeys(engine, vault)  # another node, or a restart
    await again.ensure(DIGEST_PURPOSE, seed=b"x" * 32)  # never replaces the existing key
    assert again.current(DIGEST_PURPOSE) == keys.current(DIGEST_PURPOSE)


async def test_digest_keys_are_never_rotated_or_retired(setup):
    engine, vault = setup
    keys = PurposeKeys(engine, vault)
    await keys.ensure("suppression-digest")
    with pytest.raises(InvalidValue, match="never rotated"):
        await keys.rotate("suppression-digest", "test")
    with pytest.raises(InvalidValue, match="cannot be retired"):
        await keys.retire("suppression-digest", 1, "test")


async def test_token_keys_rotate_old_versions_open_until_retired(setup):
    engine, vault = setup
    keys = PurposeKeys(engine, vault)
    await keys.ensure("unsubscribe-token")
    v1, k1 = keys.current("unsubscribe-token")
    assert await keys.rotate("unsubscribe-token", "test") == 2
    v2, k2 = keys.current("unsubscribe-token")
    assert (v1, v2) == (1, 2) and k1 != k2
    assert keys.version("unsubscribe-token", 1) == k1  # old links still open
    with pytest.raises(Conflict):
        await keys.retire("unsubscribe-token", 2, "test")
    await keys.retire("unsubscribe-token", 1, "test")
    assert keys.version("unsubscribe-token", 1) is None  # links made with v1 stop working
    assert [(k.version, k.retired_at is not None) for k in await keys.listing()] == [
        (1, True), (2, False)]


async def test_a_key_that_will_not_open_fails_closed_and_is_never_regenerated(
        setup, tmp_path: Path):
    engine, vault = setup
    await PurposeKeys(engine, vault).ensure("suppression-digest")
    other = tmp_path / "other"
    other.mkdir()
    wrong = Vault(FileKeyProvider(master_key_file(other)))  # the master key was lost
    keys = PurposeKeys(engine, wrong)
    with pytest.raises(VaultError, match="never regenerated"):
        await keys.ensure("suppression-digest")
    with pytest.raises(VaultError, match="not available"):
        keys.current("suppression-digest")
    assert len(await keys.listing()) == 1  # no second key was made
