"""The signer reads each copy's signed fields once for all its keys, from fields made
canonical once per message (issue 26). Differential: the same signature bytes as signing
each key apart through dkimpy's own field selection and canonicalization, over the header
blocks of CPython's email corpus, oversigned."""

from __future__ import annotations

from pathlib import Path

from cryptography.hazmat.primitives.asymmetric import ed25519, rsa
from dkim import select_headers
from dkim.canonicalization import Relaxed
from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.dkim import signer
from gateway.dkim.signer import ED25519, RSA, SigningKey

KEYS = [SigningKey("acme.example", "rsa1", RSA,
                   rsa.generate_private_key(public_exponent=65537, key_size=2048)),
        SigningKey("acme.example", "ed1", ED25519, ed25519.Ed25519PrivateKey.generate())]


def _one_key_at_a_time(fields, bh, key, when):
    """The signer before issue 26: dkimpy selects and canonicalizes, per key."""
    names = signer.header_list(fields)
    data = b"".join(n + b":" + v for n, v in
                    Relaxed.canonicalize_headers(select_headers(list(fields), names)))
    return signer._signature(data, names, bh, key, when)


def _header_blocks() -> list[bytes]:
    root = Path("/usr/lib/python3.11/test/test_email/data")
    blocks = []
    for path in sorted(root.glob("msg_*.txt")):
        raw = path.read_bytes().replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")
        end = raw.find(b"\r\n\r\n")
        if end > 0:
            blocks.append(raw[:end + 2])
    return blocks


def test_over_the_email_corpus_the_signatures_are_the_per_key_ones():
    blocks = _header_blocks()
    assert len(blocks) > 40
    bh = signer.body_hash(b"Hello.\r\n")
    for head in blocks:
        fields = signer.parse_fields(head + b"List-Unsubscribe: <https://u.example/x>\r\n")
        ed25519_only = KEYS[1:]  # deterministic signatures: compared byte for byte
        ours = signer.sign_copy(fields, signer.canonical_fields(fields), bh, ed25519_only,
                                1_700_000_000)
        assert ours == _one_key_at_a_time(fields, bh, KEYS[1], 1_700_000_000), head[:80]


NAMES = st.sampled_from([b"From", b"from", b"To", b"Subject", b"SUBJECT", b"Date",
                         b"X-Other", b"Reply-To", b"List-Unsubscribe"])


@settings(max_examples=500, deadline=None)
@given(st.lists(st.tuples(NAMES, st.binary(max_size=8)), max_size=12))
def test_the_fields_chosen_are_dkimpys(fields):
    fields = [(n, v + b"\r\n") for n, v in fields]
    names = signer.header_list(fields)
    assert [fields[i] for i in signer.chosen(fields, names)] == select_headers(fields, names)


def test_an_rsa_signature_over_both_keys_verifies_per_key():
    """RSA PKCS#1 v1.5 is deterministic too: both keys at once equal each key apart."""
    fields = signer.parse_fields(b"From: a@acme.example\r\nSubject: hi\r\n")
    bh = signer.body_hash(b"x\r\n")
    both = signer.sign_copy(fields, signer.canonical_fields(fields), bh, KEYS, 1_700_000_000)
    apart = b"".join(_one_key_at_a_time(fields, bh, k, 1_700_000_000) for k in KEYS)
    assert both == apart
