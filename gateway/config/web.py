"""`[http]`, `[unsubscribe]`, `[pixels]`, `[fetch]`, `[dns]`: the HTTP listeners, the
unsubscribe links and their mailto listener, tracking pixels, and what the gateway asks of
the outside (tenant URLs, DNS)."""

from __future__ import annotations

import urllib.parse
from dataclasses import dataclass

from gateway.config.rules import is_loopback, is_private, networks, require, secure_url
from gateway.config.schema import PORT, POSITIVE, Rule, setting


@dataclass(frozen=True, slots=True)
class HttpConfig:
    """`[http]`: a public listener (unsubscribe links and pages, pixels, the OAuth callback)
    and a private admin listener (the API, its OpenAPI document, the review pages, metrics)."""

    public_listen: str = setting("127.0.0.1", "The public listener's address.")
    public_port: int = setting(8080, "Its port; 0: any free port.", PORT)
    public_base_url: str = setting("", "How browsers and providers reach the public "
                                   "listener, e.g. `https://mail-links.example`; empty: "
                                   "`http://<public_listen>:<port>`, allowed only on a "
                                   "loopback address.")
    admin_listen: str = setting("127.0.0.1", "The admin listener's address: loopback or "
                                "private unless `admin_public = true`.")
    admin_port: int = setting(8081, "Its port.", PORT)
    admin_public: bool = setting(False, "Allow the admin listener on a public address.")
    trusted_proxies: tuple[str, ...] = setting((), "Proxies whose X-Forwarded-For is "
                                               "believed (networks): the client is the "
                                               "rightmost address not in this list. Empty: "
                                               "the socket's peer is the client.")
    access_log: bool = setting(False, "One JSON line per HTTP request: tokens, addresses and "
                               "query values taken out of the request line, the client cut "
                               "to its network.")
    drain_seconds: float = setting(5.0, "On SIGTERM `/readyz` answers 503 this long before "
                                   "the listeners close, so a load balancer or Kubernetes "
                                   "stops sending new connections first.")
    tls_cert: str = setting("", "Both listeners serve HTTPS with this certificate (PEM, chain "
                            "first), re-read on SIGHUP. Empty: plain HTTP, for a "
                            "TLS-terminating proxy or ingress in front.")
    tls_key: str = setting("", "Its private key (set with `tls_cert`, or neither).")

    @property
    def scheme(self) -> str:
        return "https" if self.tls_cert else "http"


def check_http(http: HttpConfig) -> None:
    require(bool(http.tls_cert) == bool(http.tls_key), "http.tls_key", http.tls_key,
            "http.tls_cert and http.tls_key go together (both set: HTTPS; both empty: HTTP).")
    if http.public_base_url:
        require(secure_url(http.public_base_url)
                and not urllib.parse.urlsplit(http.public_base_url).query,
                "http.public_base_url", http.public_base_url,
                "Must be an https:// URL (http:// only to a loopback host).")
    else:
        require(is_loopback(http.public_listen), "http.public_base_url", "",
                "Required unless http.public_listen is a loopback address.")
    if not http.admin_public:
        require(is_private(http.admin_listen), "http.admin_listen", http.admin_listen,
                "The admin listener must be on a loopback or private address "
                "(or set http.admin_public = true).")
    for _ in networks(http.trusted_proxies, "http.trusted_proxies"):
        pass  # each one that is not a network is reported


@dataclass(frozen=True, slots=True)
class UnsubscribeConfig:
    """`[unsubscribe]`: the unsubscribe links every copy carries, and the mailto listener
    that honors `mailto:` unsubscribes and VERP bounces (no AUTH, no path to any upstream;
    point the mailto domain's MX at it)."""

    base_url: str = setting("", "Required: the `https://` URL unsubscribe links point at (a "
                            "tenant's own link domain replaces the host); a loopback "
                            "`http://` URL only in development.")
    mailto_domain: str = setting("", "`unsubscribe@<this>`; empty: the host of `base_url`.")
    mailto_listen: str = setting("", "The mailto listener's address; empty: not started.")
    mailto_port: int = setting(25, "Its port.", PORT)
    mailto_proxy_protocol: bool = setting(
        False, "Behind a TCP balancer (port 25 to `mailto_port`): every connection starts "
        "with a PROXY header, believed only from `smtp.load_balancers`.")
    mailto_max_message_size: int = setting(64 * 1024, "Bytes per message.", POSITIVE)
    mailto_max_connections: int = setting(100, "Open connections at once.", POSITIVE)
    mailto_rate: int = setting(120, "Messages a minute from one /24 (IPv4) or /48 (IPv6).",
                               POSITIVE)
    invalid_rate: int = setting(30, "Invalid-token requests a minute from one /24 or /48 "
                                "(valid ones are never limited).", POSITIVE)


def check_unsubscribe(unsub: UnsubscribeConfig, development: bool,
                      load_balancers: tuple[str, ...]) -> None:
    url = urllib.parse.urlsplit(unsub.base_url)
    if unsub.base_url:
        https = url.scheme == "https" and bool(url.hostname)
        dev_http = development and url.scheme == "http" and is_loopback(url.hostname or "")
        require((https or dev_http) and not url.query and not url.fragment,
                "unsubscribe.base_url", unsub.base_url,
                "Must be an https:// URL (a loopback http:// URL only with "
                "environment = 'development').")
    else:
        require(development, "unsubscribe.base_url", "",
                "Required: the https:// URL unsubscribe links point at.")
    if unsub.mailto_proxy_protocol:
        require(bool(load_balancers), "unsubscribe.mailto_proxy_protocol", True,
                "PROXY headers are believed only from smtp.load_balancers; list them.")


@dataclass(frozen=True, slots=True)
class PixelConfig:
    """`[pixels]`: tracking pixels taken over in outgoing HTML, opens counted with the
    opener's address cut to its network (docs/pixels.md)."""

    allow_off: bool = setting(False, "May a tenant set `pixels = \"off\"` (leave trackers "
                              "untouched)?")
    ipv4_prefix: int = setting(24, "An opener's IPv4 address is kept to this network (24 or "
                               "16); IPv6 always to /48.",
                               Rule(lambda v: v in (16, 24), "Must be 24 or 16 (an opener's "
                                    "IPv4 address is kept to that network)."))
    campaign_headers: tuple[str, ...] = setting(
        ("X-Campaign-ID", "X-OCG-Campaign", "X-Mailgun-Campaign-Id"),
        "Header fields a campaign is named by.")
    machine_open_seconds: float = setting(10.0, "An open this soon after sending is a "
                                          "machine's.")
    networks_file: str = setting("", "The networks of scanners and mail proxies, one per "
                                 "line, filled from the providers' published lists (none "
                                 "ship); re-read on SIGHUP (docs/pixels.md).")
    forward_concurrency: int = setting(20, "Proxy mode: tracker fetches in flight per node.",
                                       POSITIVE)
    forward_queue: int = setting(10000, "Fetches waiting; beyond it they are dropped and "
                                 "counted.", POSITIVE)
    flush_interval: float = setting(1.0, "Open events are written in batches at least this "
                                    "often (seconds): a crash loses at most this.", POSITIVE)


@dataclass(frozen=True, slots=True)
class FetchConfig:
    """`[fetch]`: the guarded fetcher for URLs tenants supply (pixel forwards, webhooks):
    https to public addresses on ports 80 and 443 only, unless allowed here."""

    allow_http: bool = setting(False, "Allow plain `http://` (ports 80 and 443 still).")
    allow_hosts: tuple[str, ...] = setting((), "`host` or `host:port` reachable even when not "
                                           "public (the operator's own receivers).")
    timeout: float = setting(5.0, "Seconds per fetch.")
    max_response_bytes: int = setting(65536, "Bytes read of a response at most.")


@dataclass(frozen=True, slots=True)
class DnsConfig:
    """`[dns]`: the resolver `gateway domain verify|check` asks."""

    nameservers: tuple[str, ...] = setting((), "e.g. `[\"192.0.2.53\"]` or "
                                           "`[\"127.0.0.1:5353\"]`; empty: the system's "
                                           "resolver.")
    timeout: float = setting(5.0, "Seconds per query.")
