"""The canonical form, and the fast path proven equal to email-validator's over generated
addresses: 250,000 in the suite, a million with `OCG_DIFFERENTIAL=1000000` (the two cores'
minute it costs is better spent elsewhere on every run)."""

from __future__ import annotations

import os
from concurrent.futures import ProcessPoolExecutor

import pytest

from suppression.canonical import InvalidAddress, canonical, canonical_domain, canonical_slow
from tests.support.addresses import addresses

DIFFERENTIAL = int(os.environ.get("OCG_DIFFERENTIAL", "250000"))


@pytest.mark.parametrize(("given", "expected"), [
    ("alice@example.com", "alice@example.com"),
    ("Alice@Example.COM", "alice@example.com"),  # the local part is folded too
    ("bob+news@example.com", "bob@example.com"),  # +tags for every domain
    ("Bob.Smith+news@GMail.com", "bobsmith@gmail.com"),
    ("b.o.b.smith@googlemail.com", "bobsmith@gmail.com"),
    ("bob.smith@example.com", "bob.smith@example.com"),  # dots count elsewhere
    ("x@BÜCHER.de", "x@xn--bcher-kva.de"),
    ("x@xn--bcher-kva.de", "x@xn--bcher-kva.de"),
    ("+only@example.com", "+only@example.com"),
    ('"A B"@example.com', '"a b"@example.com'),
    ("STRASSE@example.com", "strasse@example.com"),
])
def test_canonical_forms(given: str, expected: str):
    assert canonical(given) == expected
    assert canonical_slow(given) == expected


@pytest.mark.parametrize("junk", ["", "a", "a@", "@b.com", "a@@b.com", "a b@c.com",
                                  "a@localhost", "a@[127.0.0.1]", "Alice <a@b.com>",
                                  "x" * 5000 + "@b.com", "a..b@c.com"])
def test_junk_is_refused_with_a_reason(junk: str):
    with pytest.raises(InvalidAddress) as info:
        canonical(junk)
    assert str(info.value)


def test_domains():
    assert canonical_domain("Example.COM.") == "example.com"
    assert canonical_domain("bücher.de") == "xn--bcher-kva.de"
    with pytest.raises(InvalidAddress):
        canonical_domain("*.example.com")


def _outcome(fn, address: str) -> str:
    try:
        return fn(address)
    except InvalidAddress:
        return "<invalid>"


def _compare(seed: int, count: int) -> tuple[int, int, list[str]]:
    valid, mismatches = 0, []
    for address in addresses(count, seed):
        fast, slow = _outcome(canonical, address), _outcome(canonical_slow, address)
        valid += slow != "<invalid>"
        if fast != slow:
            mismatches.append(f"{address!r}: fast {fast!r}, email-validator {slow!r}")
    return count, valid, mismatches


def test_fast_path_equals_email_validator_over_generated_addresses():
    workers = max(2, os.cpu_count() or 2)
    share = DIFFERENTIAL // workers
    with ProcessPoolExecutor(workers) as pool:
        results = list(pool.map(_compare, range(100, 100 + workers), [share] * workers))
    assert sum(r[0] for r in results) >= DIFFERENTIAL - workers
    assert sum(r[1] for r in results) > DIFFERENTIAL // 2  # most are valid, some are junk
    mismatches = [m for r in results for m in r[2]]
    assert mismatches == [], mismatches[:10]
