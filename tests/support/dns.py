"""A loopback DNS server (dnslib) answering from a dict: DKIM keys, TXT, MX, CNAME."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

from dnslib import CNAME, MX, QTYPE, RR, TXT, A
from dnslib.server import BaseResolver, DNSLogger, DNSServer


@dataclass
class Zone:
    txt: dict[str, list[str]] = field(default_factory=dict)
    mx: dict[str, list[str]] = field(default_factory=dict)
    cname: dict[str, str] = field(default_factory=dict)
    a: dict[str, str] = field(default_factory=dict)

    def add_txt(self, name: str, value: str) -> None:
        self.txt.setdefault(name.rstrip(".").lower(), []).append(value)


class _Resolver(BaseResolver):  # type: ignore[misc]
    def __init__(self, zone: Zone) -> None:
        self.zone = zone

    def resolve(self, request, handler):  # noqa: ANN001, ANN201
        reply = request.reply()
        name = str(request.q.qname).rstrip(".").lower()
        qtype = QTYPE[request.q.qtype]
        if name in self.zone.cname and qtype != "CNAME":
            target = self.zone.cname[name]
            reply.add_answer(RR(request.q.qname, QTYPE.CNAME, rdata=CNAME(target + "."), ttl=60))
            name = target
        if qtype == "CNAME" and name in self.zone.cname:
            reply.add_answer(RR(request.q.qname, QTYPE.CNAME,
                                rdata=CNAME(self.zone.cname[name] + "."), ttl=60))
        if qtype in ("TXT", "ANY"):
            for value in self.zone.txt.get(name, []):
                chunks = [value[i:i + 255].encode() for i in range(0, len(value), 255)]
                reply.add_answer(RR(name + ".", QTYPE.TXT, rdata=TXT(chunks), ttl=60))
        if qtype in ("MX", "ANY"):
            for i, host in enumerate(self.zone.mx.get(name, [])):
                reply.add_answer(RR(name + ".", QTYPE.MX, rdata=MX(host + ".", 10 * (i + 1)),
                                    ttl=60))
        if qtype == "A" and name in self.zone.a:
            reply.add_answer(RR(name + ".", QTYPE.A, rdata=A(self.zone.a[name]), ttl=60))
        return reply


@contextmanager
def dns_server(zone: Zone) -> Iterator[int]:
    """Serve `zone` on 127.0.0.1 (UDP and TCP, one port); yields the port."""
    quiet = "-request,-reply,-truncated,-error"
    for _ in range(20):  # the free UDP port may be taken for TCP by another process: retry
        udp = DNSServer(_Resolver(zone), address="127.0.0.1", port=0,
                        logger=DNSLogger(log=quiet, prefix=False))
        port = udp.server.server_address[1]
        try:
            tcp = DNSServer(_Resolver(zone), address="127.0.0.1", port=port, tcp=True,
                            logger=DNSLogger(log=quiet, prefix=False))
            break
        except OSError:
            udp.server.server_close()
    else:
        raise OSError("no port free for both UDP and TCP")
    udp.start_thread()
    tcp.start_thread()
    try:
        yield port
    finally:
        udp.stop()
        tcp.stop()
        udp.server.server_close()
        tcp.server.server_close()
