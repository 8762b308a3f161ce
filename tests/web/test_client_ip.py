"""The client address rules: rightmost untrusted hop, then cut to its network."""

from __future__ import annotations

import ipaddress

import pytest

from gateway.web.client_ip import anonymized, client_address

TRUSTED = [ipaddress.ip_network("10.0.0.0/8"), ipaddress.ip_network("2001:db8:ffff::/48")]


@pytest.mark.parametrize("address, prefix, network", [
    ("198.51.100.7", 24, "198.51.100.0/24"),
    ("198.51.100.7", 16, "198.51.0.0/16"),
    ("::ffff:198.51.100.7", 16, "198.51.0.0/16"),
    ("2001:db8:1234:5678::1", 24, "2001:db8:1234::/48"),
    ("[2001:db8:1234:5678::1]", 24, "2001:db8:1234::/48"),
    ("not an address", 24, None),
])
def test_anonymized(address, prefix, network):
    result = anonymized(address, prefix)
    assert (str(result) if result else None) == network


@pytest.mark.parametrize("peer, forwarded, client", [
    ("10.0.0.5", ["198.51.100.7"], "198.51.100.7"),
    ("10.0.0.5", ["192.0.2.66, 198.51.100.7, 10.1.1.1"], "198.51.100.7"),  # spoofed left
    ("10.0.0.5", ["192.0.2.66", "198.51.100.7"], "198.51.100.7"),  # two header lines
    ("10.0.0.5", ["10.1.1.1, 10.2.2.2"], "10.1.1.1"),  # all trusted: the leftmost
    ("10.0.0.5", [], "10.0.0.5"),
    ("203.0.113.9", ["198.51.100.7"], "203.0.113.9"),  # an untrusted peer is the client
    ("2001:db8:ffff::1", ["2001:db8:1:2::3"], "2001:db8:1:2::3"),
])
def test_client_address(peer, forwarded, client):
    assert client_address(peer, forwarded, TRUSTED) == client
