"""The corpus the secret detector is judged by (issue 25): secrets in each provider's format,
written the ways people paste them into mail, and ordinary outreach that must pass.

Seeded, so every run builds the same corpus. Positives: each format bare, quoted, as a
config line, in a sentence, and inside a quoted-printable part whose soft line breaks
split the secret. Negatives: 500 outreach messages built from the HTML fixtures and
everyday prose, with tracking links, UUIDs, Message-IDs, order numbers, coupon codes,
base64 inline images and calendar ids.
"""

from __future__ import annotations

import base64
import quopri
import random
import string
import uuid
from pathlib import Path

FIXTURES = Path(__file__).parents[1] / "fixtures"
ALNUM = string.ascii_letters + string.digits


def _rand(rng: random.Random, n: int, alphabet: str = ALNUM) -> str:
    return "".join(rng.choice(alphabet) for _ in range(n))


def secrets_of_each_format(rng: random.Random) -> list[tuple[str, str]]:
    """(format, secret line as a person would write it) — the value with what names it."""
    aws_secret = _rand(rng, 40, ALNUM + "/+")
    private_key = ("-----BEGIN RSA PRIVATE KEY-----\nMIIEowIBAAKCAQEA" + _rand(rng, 60)
                   + "\n-----END RSA PRIVATE KEY-----")
    return [
        ("aws secret access key", f"aws_secret_access_key = {aws_secret}"),
        ("aws secret access key", f"AWS_SECRET_ACCESS_KEY={aws_secret}"),
        ("aws secret access key", f'"SecretAccessKey": "{aws_secret}"'),
        ("aws secret access key", f"Secret access key: {aws_secret}"),
        ("aws access key id", "AKIA" + _rand(rng, 16, string.ascii_uppercase + string.digits)),
        ("github token", "ghp_" + _rand(rng, 36)),
        ("github token", "github_pat_" + _rand(rng, 22) + "_" + _rand(rng, 59)),
        ("gitlab token", "glpat-" + _rand(rng, 20, ALNUM + "-_")),
        ("slack token", f"xoxb-{_rand(rng, 12, string.digits)}-{_rand(rng, 13, string.digits)}-"
                        f"{_rand(rng, 24)}"),
        ("stripe live key", "sk_live_" + _rand(rng, 24)),
        ("google api key", "AIza" + _rand(rng, 35, ALNUM + "-_")),
        ("sendgrid key", f"SG.{_rand(rng, 22, ALNUM + '-_')}.{_rand(rng, 43, ALNUM + '-_')}"),
        ("openai key", f"sk-{_rand(rng, 20)}T3BlbkFJ{_rand(rng, 20)}"),
        ("npm token", "npm_" + _rand(rng, 36)),
        ("private key", private_key),
        ("password", f"password: {_rand(rng, 24, ALNUM + '!@#%')}"),
        ("client secret", f"client_secret={_rand(rng, 32)}"),
        ("api key", f"API key: {_rand(rng, 32, string.hexdigits.lower())}"),
    ]


def _wrappings(rng: random.Random, line: str) -> list[str]:
    return [
        line,
        f'"{line}"',
        f"Hi Sam,\n\nas promised, here it is: {line}\n\nThanks!\nAlex",
        f"Config for the demo account:\n\n    {line}\n\nLet me know if it works.",
    ]


def _message(text: str, qp: bool, rng: random.Random) -> bytes:
    head = (b"From: Alex <alex@acme.example>\r\nTo: sam@example.org\r\nSubject: Access\r\n"
            b"MIME-Version: 1.0\r\n")
    if not qp:
        return head + b"Content-Type: text/plain; charset=utf-8\r\n\r\n" + \
            text.replace("\n", "\r\n").encode()
    # soft line breaks every 20-40 characters: they fall inside the secret
    encoded = quopri.encodestring(text.encode(), quotetabs=False).decode()
    lines = []
    for line in encoded.split("\n"):
        while len(line) > 40:
            cut = rng.randint(20, 40)
            if "=" in line[cut - 2:cut]:
                cut -= 2
            lines.append(line[:cut] + "=")
            line = line[cut:]
        lines.append(line)
    body = "\r\n".join(lines)
    return head + b"Content-Type: text/plain; charset=utf-8\r\n" \
                  b"Content-Transfer-Encoding: quoted-printable\r\n\r\n" + body.encode()


def positives(seed: int = 25) -> list[tuple[str, bytes]]:
    """(format, message) for every format, wrapping and encoding."""
    rng = random.Random(seed)
    found = []
    for _ in range(3):
        for kind, line in secrets_of_each_format(rng):
            for text in _wrappings(rng, line):
                for qp in (False, True):
                    found.append((kind, _message(text, qp, rng)))
    return found


PROSE = [
    "We help revenue teams like yours cut onboarding time in half.",
    "Here is a token of our appreciation: 20% off your first quarter.",
    "Your order {order} has shipped and should arrive on Thursday.",
    "Use coupon code {coupon} at checkout before Friday.",
    "Our API keeps your data in the EU; the password manager integration is coming soon.",
    "Happy to share the secret behind our onboarding: a checklist and one call.",
    "The meeting id is {meeting} if the calendar link does not open.",
    "Reference {uuid} in any reply so we find your ticket.",
    "See the report at https://cdn.example.net/r/{track}?utm_source=mail&utm_medium=email",
    "Track your shipment: https://track.example.net/c/{track}/{uuid}",
    "Forgot your password? Reset it from the sign-in page at any time.",
    "Ask me about the credentials we hold: SOC 2 Type II and ISO 27001.",
    "In reply to <{msgid}@mail.example.com>, here are the slides.",
    "Access key features in the new dashboard: filters, exports and alerts.",
    "Invoice {order} for {amount} EUR is attached; the bank reference is {coupon}.",
]


def ordinary(count: int = 500, seed: int = 25) -> list[bytes]:
    """Outreach messages that must pass: the HTML fixtures' text and everyday prose with
    tracking links, ids, codes and a base64 inline image part."""
    rng = random.Random(seed)
    htmls = [p.read_text(errors="replace") for p in sorted((FIXTURES / "html").glob("*.html"))]
    found = []
    for i in range(count):
        values = {"order": f"#{rng.randint(10**7, 10**9)}", "coupon": _rand(rng, 10).upper(),
                  "meeting": f"{rng.randint(100, 999)} {rng.randint(100, 999)} "
                             f"{rng.randint(1000, 9999)}",
                  "uuid": str(uuid.UUID(int=rng.getrandbits(128))),
                  "track": _rand(rng, 32, ALNUM + "-_"), "msgid": _rand(rng, 28),
                  "amount": f"{rng.randint(100, 9999)}.{rng.randint(10, 99)}"}
        prose = "\n".join(rng.choice(PROSE).format(**values) for _ in range(rng.randint(3, 9)))
        image = base64.encodebytes(rng.randbytes(600)).decode().replace("\n", "\r\n")
        html = htmls[i % len(htmls)] if htmls else "<p>Hello</p>"
        body = (f"--b{i}\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n"
                f"{prose.replace(chr(10), chr(13) + chr(10))}\r\n"
                f"--b{i}\r\nContent-Type: text/html; charset=utf-8\r\n\r\n{html}\r\n"
                f"--b{i}\r\nContent-Type: image/png\r\nContent-Transfer-Encoding: base64\r\n"
                f"Content-ID: <logo{i}@acme.example>\r\n\r\n{image}\r\n--b{i}--\r\n")
        head = (f"From: Sales <sales@acme.example>\r\nTo: lead{i}@example.org\r\n"
                f"Subject: A quick idea for your team\r\n"
                f"Message-ID: <{_rand(rng, 24)}@acme.example>\r\nMIME-Version: 1.0\r\n"
                f"Content-Type: multipart/related; boundary=\"b{i}\"\r\n\r\n")
        found.append((head + body).encode())
    return found
