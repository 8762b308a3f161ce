"""Generated addresses for the fast path's differential test and the benchmarks: plain,
upper case, +tags, Gmail dots, IDN, quoted, Unicode and junk, from a seeded generator."""

from __future__ import annotations

import random
import string
from collections.abc import Iterator

_ATEXT = string.ascii_letters + string.digits + "!#$%&'*+/=?^_`{|}~-"
_DOMAINS = ["example.com", "Example.ORG", "gmail.com", "GoogleMail.com", "mail.example.co.uk",
            "bücher.de", "xn--bcher-kva.de", "EXAMPLE.net", "sub.domain.example", "x.c0m",
            "localhost", "1.2.3.4", "a-.com", "-a.com", "a..com", "test", "x.test",
            "exa_mple.com", "例え.jp", "münchen.DE", "a.b", "outlook.com", "x." + "a" * 63 + ".com",
            "x." + "a" * 64 + ".com", ".example.com", "example.com.", "host.invalid",
            "example.local", "xn--zz.com", "xn--.com", "ex ample.com"]
_JUNK = ["", "@", "a@", "@b.com", "a@@b.com", "a b@c.com", "a@b@c.com", "<a@b.com>",
         "a@[127.0.0.1]", "Alice <a@b.com>", "a\n@b.com", "a@b.com\n", " a@b.com", "a@b.com ",
         "\"unterminated@b.com", "a\x00@b.com", "a;b@c.com", "a(comment)@b.com", ".a@b.com",
         "a.@b.com", "a..b@c.com"]


def _local(rng: random.Random) -> str:
    kind = rng.random()
    if kind < 0.45:
        parts = ["".join(rng.choices(string.ascii_lowercase + string.digits, k=rng.randint(1, 10)))
                 for _ in range(rng.randint(1, 3))]
        local = ".".join(parts)
    elif kind < 0.6:
        local = "".join(rng.choices(_ATEXT, k=rng.randint(1, 20)))
    elif kind < 0.7:
        local = "".join(rng.choices(string.ascii_letters + ".", k=rng.randint(1, 15)))
    elif kind < 0.75:
        quoted = "".join(rng.choices(string.ascii_letters + " .+@", k=rng.randint(0, 10)))
        local = f'"{quoted}"'
    elif kind < 0.8:
        local = "".join(rng.choices("äöüßÄÖÜéçñøåæ" + string.ascii_letters, k=rng.randint(1, 8)))
    elif kind < 0.85:
        local = "x" * rng.choice([63, 64, 65, 70])
    else:
        local = "".join(rng.choices(string.ascii_letters, k=rng.randint(1, 8)))
    if rng.random() < 0.3:
        local += "+" + "".join(rng.choices(string.ascii_letters + "+.", k=rng.randint(0, 6)))
    if rng.random() < 0.2:
        local = local.upper()
    return local


def addresses(count: int, seed: int = 5) -> Iterator[str]:
    rng = random.Random(seed)
    for _ in range(count):
        roll = rng.random()
        if roll < 0.03:
            yield rng.choice(_JUNK)
            continue
        domain = rng.choice(_DOMAINS) if roll < 0.5 else (
            "".join(rng.choices(string.ascii_lowercase, k=rng.randint(1, 12)))
            + rng.choice([".com", ".de", ".co.uk", ".io", ".ORG", ".example"]))
        address = f"{_local(rng)}@{domain}"
        if rng.random() < 0.01:
            address = address[: rng.randint(0, len(address))] + rng.choice(" ,;\t<>\"") + address[
                rng.randint(0, len(address)):]
        if rng.random() < 0.005:
            address = "a" * 200 + address
        yield address
