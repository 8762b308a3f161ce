"""`[smtp]`: the submission listeners, their limits, AUTH and who may skip it."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from gateway.config.rules import networks, require
from gateway.config.schema import PORT, POSITIVE, Rule, required, section, setting

HOST_NAME = Rule(lambda v: bool(v) and " " not in v, "Must be a host name.")


@dataclass(frozen=True, slots=True)
class IpCredential:
    """`[[smtp.ip_credentials]]`: a login that clients from `networks` get without AUTH, for
    campaign tools that cannot AUTH. Off unless listed. `0/0` and `::/0` are always refused;
    ranges wider than /24 (IPv4) or /64 (IPv6) need `force = true`; a network containing one
    of `smtp.load_balancers` is refused (every proxied client would match)."""

    login: str = required("The login these clients act as.")
    networks: tuple[str, ...] = required("The client networks, e.g. `[\"203.0.113.10/32\"]`.")
    force: bool = setting(False, "Allow a range wider than /24 (IPv4) or /64 (IPv6).")


@dataclass(frozen=True, slots=True)
class AuthConfig:
    """`[smtp.auth]`: password checks and their back-off (docs/operations.md, "AUTH
    failures"). Failures back off per client network and login; a login's failure budget,
    once spent, shuts out only networks it was never used from."""

    concurrency: int = setting(4, "Password checks running at once (each costs tens of "
                               "milliseconds of CPU).", POSITIVE)
    cache_seconds: float = setting(60.0, "A successful check is remembered this long.")
    max_failures: int = setting(5, "Failures per (client network, login) within "
                                "`failure_window`; then that network backs off.", POSITIVE)
    failure_window: float = setting(300.0, "Seconds `max_failures` are counted over.",
                                    POSITIVE)
    login_failure_budget: int = setting(50, "Failures per login from every network within "
                                        "`budget_window`; once spent, only networks that "
                                        "logged in as it before may still try, and ops are "
                                        "alerted.", POSITIVE)
    budget_window: float = setting(3600.0, "Seconds the failure budget is counted over.",
                                   POSITIVE)
    known_network_days: int = setting(30, "A network that logged in as a login within this "
                                      "many days may still try once its budget is spent.",
                                      POSITIVE)
    min_password_length: int = setting(12, "`gateway login add` refuses shorter passwords.",
                                       POSITIVE)


@dataclass(frozen=True, slots=True)
class SmtpConfig:
    """`[smtp]`: the submission listeners campaign tools connect to. TLS is mandatory: AUTH
    is offered only inside TLS, so without a certificate nobody could log in.

    Behind a TCP load balancer, list it in `load_balancers` and set `proxy_protocol = true`:
    every connection must then start with a PROXY header (v1 or v2, HAProxy's
    `send-proxy[-v2]`), believed only from those addresses. The client it names drives IP
    credentials, AUTH back-off and logs; the balancer's own health checks (`LOCAL`) match no
    IP credential. On the implicit-TLS port the header comes first, before TLS."""

    hostname: str = setting("localhost", "Shown in the banner and the Received field.",
                            HOST_NAME)
    listen: str = setting("127.0.0.1", "The address both listeners bind.")
    submission_port: int = setting(587, "STARTTLS submission (RFC 6409); 0: any free port.",
                                   PORT)
    implicit_tls: bool = setting(True, "A second listener with TLS from the first byte "
                                 "(RFC 8314).")
    implicit_tls_port: int = setting(465, "The implicit-TLS listener's port.", PORT)
    tls_cert: str = setting("", "The certificate (PEM, chain first); required. Re-read on "
                            "SIGHUP: sessions already open keep theirs.")
    tls_key: str = setting("", "Its private key; required.")
    tls_self_signed: bool = setting(False, "Generate a self-signed certificate under "
                                    "`data_dir`; development only.")
    max_message_size: int = setting(25 * 1024 * 1024, "Bytes; advertised as SIZE.", POSITIVE)
    max_recipients: int = setting(100, "Recipients per message.", POSITIVE)
    max_commands: int = setting(2000, "Commands per session, all verbs together (NOOP and "
                                "RSET floods too).", POSITIVE)
    max_connections_per_client: int = setting(
        100, "Open connections from one client address (the PROXY client behind a "
        "balancer), per process; `421 4.7.0` beyond.", POSITIVE)
    session_timeout: float = setting(300.0, "Seconds a session may sit idle.", POSITIVE)
    max_header_count: int = setting(1000, "Header fields per message.", POSITIVE)
    max_header_bytes: int = setting(256 * 1024, "Bytes of header per message.", POSITIVE)
    max_mime_depth: int = setting(20, "Nesting of MIME parts.", POSITIVE)
    load_balancers: tuple[str, ...] = setting((), "The load balancers in front (addresses "
                                              "or networks), e.g. `[\"10.0.0.10/32\"]`.")
    proxy_protocol: bool = setting(False, "Every connection starts with a PROXY header from "
                                   "one of `load_balancers`.")
    proxy_timeout: float = setting(5.0, "Seconds to wait for the PROXY header (at least 3).")
    auth: AuthConfig = section(AuthConfig)
    ip_credentials: tuple[IpCredential, ...] = setting((), "Logins for clients that cannot "
                                                       "AUTH (below).")


def check_smtp(smtp: SmtpConfig, development: bool) -> None:
    if smtp.tls_self_signed:
        require(development, "smtp.tls_self_signed", True,
                "A self-signed certificate is allowed only with environment = 'development'.")
    else:
        require(bool(smtp.tls_cert), "smtp.tls_cert", smtp.tls_cert,
                "A TLS certificate is required (AUTH is offered only over TLS).")
        require(bool(smtp.tls_key), "smtp.tls_key", smtp.tls_key, "A TLS key is required.")
    balancers = [net for _, net in networks(smtp.load_balancers, "smtp.load_balancers")]
    for i, cred in enumerate(smtp.ip_credentials):
        _check_ip_credential(cred, f"smtp.ip_credentials[{i}]", balancers)
    if smtp.proxy_protocol:
        require(bool(balancers), "smtp.proxy_protocol", True,
                "PROXY headers are believed only from smtp.load_balancers; list them.")
        require(smtp.proxy_timeout >= 3, "smtp.proxy_timeout", smtp.proxy_timeout,
                "Must be at least 3 seconds.")


def _check_ip_credential(cred: IpCredential, key: str, balancers: list[Any]) -> None:
    require(bool(cred.networks), f"{key}.networks", [], "At least one network is required.")
    for j, net in networks(cred.networks, f"{key}.networks", "Not an IP network."):
        raw = cred.networks[j]
        require(net.prefixlen > 0, f"{key}.networks[{j}]", raw,
                "A network covering every address would make the gateway an open relay.")
        widest = 24 if net.version == 4 else 64
        require(cred.force or net.prefixlen >= widest, f"{key}.networks[{j}]", raw,
                f"Wider than /{widest}; set force = true to allow it.")
        for lb in balancers:
            require(not (net.version == lb.version and net.overlaps(lb)),
                    f"{key}.networks[{j}]", raw,
                    f"Contains the load balancer {lb}: every proxied client would match.")

