"""What a campaign tool says of a recipient in the message itself, when it holds no records
at the gateway: one field per recipient,

    X-Gateway-Recipient: <anna.schmidt@firma.de>; country=DE; kind=sole-trader

It is decided after DATA (the records are decided at RCPT), ranks below the tenant's own
attribute record and above the address's ccTLD, and never reaches upstream (every copy is
composed without it). A field naming an address the message is not sent to says nothing.
"""

from __future__ import annotations

import re

from gateway.errors import InvalidValue
from gateway.lawful.signals import Attributes
from gateway.lawful.table import Kind, country_code

FIELD = "X-Gateway-Recipient"
MAX_FIELDS = 1000
_ADDRESS = re.compile(r"<([^<>\s]+@[^<>\s]+)>")


def key(address: str) -> str:
    """How a stated address is matched with a recipient: the domain is case-blind, and so
    (in practice, RFC 5321 notwithstanding) is the local part."""
    return address.strip().lower()


def parse(values: list[str]) -> dict[str, Attributes]:
    """The attributes each field states, by `key(address)`. InvalidValue names the first
    field that cannot be read (by its position, never its address)."""
    if len(values) > MAX_FIELDS:
        raise InvalidValue(f"At most {MAX_FIELDS} {FIELD} fields.")
    stated: dict[str, Attributes] = {}
    for n, value in enumerate(values, 1):
        where = f"{FIELD} field {n}"
        head, _, rest = value.partition(";")
        match = _ADDRESS.fullmatch(head.strip())
        if match is None:
            raise InvalidValue(f"{where}: it starts with the recipient's <address>.")
        country = kind = None
        for param in filter(None, (p.strip() for p in rest.split(";"))):
            name, eq, text = param.partition("=")
            name, text = name.strip().lower(), text.strip().strip('"')
            if not eq or not text:
                raise InvalidValue(f"{where}: parameters are name=value.")
            if name == "country":
                country = country_code(text)
                if len(country) != 2 or not country.isascii() or not country.isalpha():
                    raise InvalidValue(f"{where}: country is an ISO 3166-1 alpha-2 code.")
            elif name == "kind":
                try:
                    kind = Kind.parse(text)
                except ValueError:
                    raise InvalidValue(f"{where}: kind is named, generic or sole-trader.") \
                        from None
            else:
                raise InvalidValue(f"{where}: the parameters are country and kind.")
        if country is None and kind is None:
            raise InvalidValue(f"{where}: it states a country, a kind or both.")
        address = key(match.group(1))
        if address in stated and stated[address] != Attributes(country, kind):
            raise InvalidValue(f"{where}: a recipient stated twice, differently.")
        stated[address] = Attributes(country, kind)
    return stated
