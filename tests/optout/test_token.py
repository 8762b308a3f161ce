"""The unsubscribe token: opaque, per recipient, case-insensitive, valid across rotation."""

from __future__ import annotations

import base64

import pytest

from gateway.optout.token import MAX_TOKEN_CHARS, PURPOSE, Claims, InvalidToken, TokenSealer
from gateway.store.engine import create_engine, upgrade
from gateway.vault.envelope import Vault
from gateway.vault.master_keys import FileKeyProvider
from gateway.vault.purpose import PurposeKeys
from tests.conftest import master_key_file

CLAIMS = Claims(tenant_id=7, mailbox_id=31, queue_id="9PMRJL6QS2QF",
                recipient="alice.liddell@wonderland.example")


@pytest.fixture
async def keys(tmp_path):
    engine = create_engine(f"sqlite+aiosqlite:///{tmp_path}/t.db")
    await upgrade(engine)
    purpose = PurposeKeys(engine, Vault(FileKeyProvider(master_key_file(tmp_path))))
    await purpose.ensure(PURPOSE)
    yield purpose
    await engine.dispose()


async def test_a_token_opens_to_its_claims_and_names_nobody(keys):
    sealer = TokenSealer(keys)
    token = sealer.seal(CLAIMS)
    assert sealer.open(token) == CLAIMS
    raw = base64.b32decode(token.upper() + "=" * (-len(token) % 8))
    for secret in (b"alice", b"wonderland", b"9PMRJL6QS2QF", b"liddell"):
        assert secret not in raw and secret.decode() not in token
    assert token == token.lower() and token.isalnum()


async def test_length_does_not_tell_the_address_length(keys):
    sealer = TokenSealer(keys)
    lengths = {len(sealer.seal(Claims(1, 1, "Q", "a" * n + "@x.example"))) for n in range(1, 9)}
    assert len(lengths) == 1


async def test_tokens_differ_per_seal_and_case_does_not_matter(keys):
    sealer = TokenSealer(keys)
    first, second = sealer.seal(CLAIMS), sealer.seal(CLAIMS)
    assert first != second
    assert sealer.open(first.upper()) == CLAIMS


@pytest.mark.parametrize("damage", [
    lambda t: t[:-1],  # truncated
    lambda t: t[:40] + ("a" if t[40] != "a" else "b") + t[41:],  # one character changed
    lambda t: "x" * len(t),  # made up
    lambda t: t + "!",  # not base32
    lambda t: "",
    lambda t: t * 5,  # too long
])
async def test_a_forged_or_damaged_token_does_not_open(keys, damage):
    sealer = TokenSealer(keys)
    with pytest.raises(InvalidToken):
        sealer.open(damage(sealer.seal(CLAIMS)))


async def test_old_tokens_open_after_rotation_until_their_version_is_retired(keys):
    sealer = TokenSealer(keys)
    old = sealer.seal(CLAIMS)
    assert await keys.rotate(PURPOSE, "test") == 2
    new = sealer.seal(CLAIMS)
    assert sealer.open(old) == sealer.open(new) == CLAIMS
    await keys.retire(PURPOSE, 1, "test")
    assert sealer.open(new) == CLAIMS
    with pytest.raises(InvalidToken):
        sealer.open(old)


async def test_the_longest_recipient_and_queue_id_still_make_a_token(keys):
    sealer = TokenSealer(keys)
    longest = Claims(2**31, 2**31, "Q" * 40, "a" * 64 + "@" + ".".join(["d" * 63] * 4)[:255])
    token = sealer.seal(longest)
    assert sealer.open(token) == longest
    assert len(token) <= MAX_TOKEN_CHARS


async def test_a_node_that_missed_a_rotation_opens_the_new_tokens_after_one_reload(keys):
    other_node = PurposeKeys(keys._engine, keys._vault)
    await other_node.load()
    await keys.rotate(PURPOSE, "test")  # on this node
    token = TokenSealer(keys).seal(CLAIMS)
    lagging = TokenSealer(other_node)
    with pytest.raises(InvalidToken):
        lagging.open(token)
    assert lagging.newer_version(token)
    await lagging.refresh()
    assert lagging.open(token) == CLAIMS
    assert not lagging.newer_version("x" * 120)  # garbage never triggers a reload
