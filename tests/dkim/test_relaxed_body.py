"""The signer's relaxed body canonicalization is dkimpy's, byte for byte (issue 25: the
faster patterns must change nothing a verifier sees)."""

from __future__ import annotations

from pathlib import Path

from dkim.canonicalization import Relaxed
from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.dkim.signer import BodyHasher, body_hash, relaxed_body

BODY = st.lists(st.sampled_from([b" ", b"  ", b"\t", b" \t ", b"\r\n", b"a", b"xyz", b"\r",
                                 b"\n", b"=\r\n", b"\xc3\xa9", b"."]), max_size=60).map(b"".join)


@settings(max_examples=3000, deadline=None)
@given(BODY)
def test_generated_bodies(body: bytes):
    assert relaxed_body(body) == Relaxed.canonicalize_body(body)


def test_real_bodies():
    root = Path("/usr/lib/python3.11/test/test_email/data")
    fixtures = Path(__file__).parents[1] / "fixtures"
    paths = [*root.glob("*"), *(fixtures / "html").glob("*.html"),
             *(fixtures / "feedback").rglob("*.eml")]
    assert len(paths) > 80
    for path in paths:
        body = path.read_bytes().replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")
        assert relaxed_body(body) == Relaxed.canonicalize_body(body), path.name


@settings(max_examples=3000, deadline=None)
@given(BODY, st.lists(BODY, min_size=1, max_size=4), st.integers(0, 200))
def test_copies_sharing_a_start_hash_as_whole_bodies(start: bytes, rests: list[bytes],
                                                     cut: int):
    """Each recipient's copy hashes only what follows the start all copies share (issue 26):
    the hash is the whole body's, blank-line ends and white space at the seam included."""
    common = start[:cut]
    hasher = BodyHasher(common)
    for rest in rests:
        assert hasher.hash(common + rest) == body_hash(common + rest)
    assert hasher.hash(b"other" + start) == body_hash(b"other" + start)  # not its start
