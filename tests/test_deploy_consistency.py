"""The shipped deploy files meet: every port, path and listener named in the Dockerfile, the
compose file, the Kubernetes objects, the systemd units and the HAProxy configuration is one
the gateway listens on with the configuration that deployment gives it (loaded by the
gateway's own loader, with the deployment's own environment), and each port can be bound by
the user and capabilities of its unit or pod.

Run with `-s` to see the table (the closing note of issue 22 quotes it).
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from gateway import config as config_module
from gateway.config import Config

DEPLOY = Path(__file__).parents[1] / "deploy"
PRIVILEGED = 1024
WELL_KNOWN = {"submission": 587, "submissions": 465, "mailto": 25}


def listeners(config: Config) -> dict[str, int]:
    """What a node with this configuration and every role listens on."""
    found = {"submission": config.smtp.submission_port, "public": config.http.public_port,
             "admin": config.http.admin_port}
    if config.smtp.implicit_tls:
        found["submissions"] = config.smtp.implicit_tls_port
    if config.unsubscribe.mailto_listen:
        found["mailto"] = config.unsubscribe.mailto_port
    return found


def proxied(config: Config) -> set[str]:
    """The listeners that expect a PROXY header first."""
    names = {"submission", "submissions"} if config.smtp.proxy_protocol else set()
    return names | ({"mailto"} if config.unsubscribe.mailto_proxy_protocol else set())


def load(path: Path, environment: dict[str, str]) -> Config:
    env = {k: v for k, v in environment.items() if k.startswith("GATEWAY__")}
    return config_module.load(path, env)


# --- HAProxy -------------------------------------------------------------------------------


@dataclass
class Section:
    kind: str
    name: str
    lines: list[str]

    def values(self, keyword: str) -> list[str]:
        return [line[len(keyword):].strip() for line in self.lines
                if line.startswith(keyword + " ")]


def haproxy_sections() -> dict[str, Section]:
    sections: dict[str, Section] = {}
    current: Section | None = None
    for raw in (DEPLOY / "haproxy.cfg").read_text().splitlines():
        line = raw.split("#", 1)[0].rstrip()
        if not line.strip():
            continue
        if not line[0].isspace():
            kind, _, name = line.partition(" ")
            current = Section(kind, name.strip(), [])
            sections[f"{kind} {current.name}".strip()] = current
        elif current is not None:
            current.lines.append(line.strip())
    return sections


def env_default(text: str) -> str:
    """`"${OCG_X-default}"` as shipped (the variable unset): its default."""
    return re.sub(r"\$\{\w+-([^}]*)\}", r"\1", text.strip('"'))


def haproxy_routes() -> list[dict[str, Any]]:
    """One row per frontend: its published port and the node port(s) it reaches."""
    sections = haproxy_sections()
    defaults = sections["defaults"]
    check_port = int(re.search(r"\bport (\d+)", " ".join(defaults.values("default-server")))
                     .group(1))  # type: ignore[union-attr]
    routes = []
    for frontend in sections.values():
        if frontend.kind != "frontend":
            continue
        (bind,) = frontend.values("bind")
        backend = sections["backend " + frontend.values("default_backend")[0]]
        servers = [s.split() for s in backend.values("server")]
        node_ports = {int(env_default(s[1]).rsplit(":", 1)[1]) for s in servers}
        routes.append({
            "frontend": frontend.name, "port": int(env_default(bind).rsplit(":", 1)[1]),
            "node_ports": node_ports, "proxy": all("send-proxy-v2" in s for s in servers),
            "http": "mode http" in backend.lines, "forwardfor": "option forwardfor"
            in backend.lines, "check_port": check_port})
    return routes


# --- the deployments -----------------------------------------------------------------------


def compose() -> dict[str, Any]:
    return yaml.safe_load((DEPLOY / "compose/compose.yaml").read_text())


def kubernetes() -> dict[str, Any]:
    return {d["kind"]: d for d in yaml.safe_load_all(
        (DEPLOY / "kubernetes/gateway.yaml").read_text())}


def kubernetes_config(tmp_path: Path) -> tuple[Config, dict[str, Any]]:
    objects = kubernetes()
    pod = objects["Deployment"]["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    env = {e["name"]: e.get("value", "node-1") for e in container["env"]}
    path = tmp_path / "k8s-gateway.toml"
    path.write_text(objects["ConfigMap"]["data"]["gateway.toml"])
    assert env["GATEWAY_CONFIG"] == "/etc/ocg/gateway.toml"
    return load(path, env), container


ROWS: list[tuple[str, str, str, str]] = []


def row(where: str, what: str, value: object, meets: str) -> None:
    ROWS.append((where, what, str(value), meets))


@pytest.fixture(scope="module", autouse=True)
def table() -> Any:
    yield
    width = [max(len(r[i]) for r in ROWS) for i in range(4)] if ROWS else [0] * 4
    print("\n" + "\n".join("  ".join(c.ljust(w) for c, w in zip(r, width, strict=True))
                           for r in [("where", "what", "value", "meets"), *ROWS]))


def test_compose_haproxy_and_the_multi_node_config_meet():
    services = compose()["services"]
    gateway = services["gateway1"]
    env = {k: str(v) for k, v in gateway["environment"].items()}
    mounted = {v.split(":")[1]: v.split(":")[0] for v in gateway["volumes"]}
    source = mounted[env["GATEWAY_CONFIG"]]
    assert (DEPLOY / "compose" / source).resolve() == DEPLOY / "multi-node.example.toml"
    config = load(DEPLOY / "multi-node.example.toml", env)
    ports = listeners(config)
    haproxy_ip = services["haproxy"]["networks"]["default"]["ipv4_address"]
    assert config.smtp.load_balancers == (f"{haproxy_ip}/32",)
    assert config.http.trusted_proxies == (f"{haproxy_ip}/32",)
    row("compose", "haproxy address", haproxy_ip, "smtp.load_balancers, http.trusted_proxies")
    published = {int(p.split(":")[1]) for p in services["haproxy"]["ports"]}
    reached = set()
    for route in haproxy_routes():
        (port,) = route["node_ports"]
        (name,) = [n for n, p in ports.items() if p == port]
        reached.add(name)
        assert route["port"] in published, route
        assert route["proxy"] == (name in proxied(config)), (name, route)
        if name == "public":
            assert route["http"] and route["forwardfor"]
        assert route["port"] == WELL_KNOWN.get(name, route["port"])
        row("haproxy.cfg", f"frontend {route['frontend']}", route["port"],
            f"node {name} :{port}" + (" (PROXY v2)" if route["proxy"] else ""))
    assert reached == set(ports) - {"admin"}  # everything but admin is reachable
    assert haproxy_routes()[0]["check_port"] == ports["admin"]
    row("haproxy.cfg", "health check", f":{ports['admin']}/readyz", "node admin listener")
    assert published == {r["port"] for r in haproxy_routes()}
    row("compose", "published", sorted(published), "haproxy frontends")
    for name, port in ports.items():
        assert port >= PRIVILEGED, (name, port)  # the image runs as uid 10001, no capability
        row("multi-node.example.toml", name, port, "unprivileged container (uid 10001)")


def test_the_image_exposes_and_checks_what_the_container_configs_listen_on(tmp_path: Path):
    text = (DEPLOY / "Dockerfile").read_text()
    final = re.split(r"^FROM ", text, flags=re.M)[-1]
    exposed = {int(p) for p in re.search(r"^EXPOSE (.+)$", final, re.M).group(1).split()}  # type: ignore[union-attr]
    multi = listeners(load(DEPLOY / "multi-node.example.toml", {}))
    k8s, _ = kubernetes_config(tmp_path)
    assert exposed == set(multi.values()) == set(listeners(k8s).values())
    row("Dockerfile", "EXPOSE", sorted(exposed), "multi-node and Kubernetes listeners")
    health = re.search(r"127\.0\.0\.1:(\d+)/healthz", final)
    assert health and int(health.group(1)) == multi["admin"]
    row("Dockerfile", "HEALTHCHECK", f":{health.group(1)}/healthz", "admin listener")
    assert re.search(r"^USER 10001", final, re.M)


def test_kubernetes_ports_probes_service_and_policy_meet(tmp_path: Path):
    config, container = kubernetes_config(tmp_path)
    ports = listeners(config)
    declared = {p["name"]: p["containerPort"] for p in container["ports"]}
    assert declared == ports, (declared, ports)
    for name, port in ports.items():
        row("kubernetes Deployment", name, port, f"config {name} port")
    for probe in ("readinessProbe", "livenessProbe"):
        assert declared[container[probe]["httpGet"]["port"]] == ports["admin"]
    objects = kubernetes()
    security = container["securityContext"]
    assert security["capabilities"]["drop"] == ["ALL"]
    assert objects["Deployment"]["spec"]["template"]["spec"]["securityContext"]["runAsNonRoot"]
    assert all(p >= PRIVILEGED for p in ports.values())  # bindable without a capability
    service = {p["name"]: p for p in objects["Service"]["spec"]["ports"]}
    for name, entry in service.items():
        assert entry["targetPort"] in declared, entry
        assert entry["port"] == WELL_KNOWN.get(name, entry["port"])
        row("kubernetes Service", f"{name} {entry['port']}", f"-> {declared[entry['targetPort']]}",
            "container port")
    assert set(service) == set(ports) - {"admin"}
    rules = objects["NetworkPolicy"]["spec"]["ingress"]
    open_to_all = {p["port"] for r in rules if "from" not in r for p in r["ports"]}
    restricted = {p["port"] for r in rules if "from" in r for p in r["ports"]}
    assert open_to_all == {ports[n] for n in service}
    assert restricted == {ports["admin"]}
    row("kubernetes NetworkPolicy", "open", sorted(open_to_all), "Service targets")
    mounts = {m["mountPath"] for m in container["volumeMounts"]}
    assert config.data_dir in mounts  # a writable volume under a read-only root
    assert any(config.smtp.tls_cert.startswith(m + "/") for m in mounts)
    key_file = dict((e["name"], e.get("value")) for e in container["env"])[
        "GATEWAY__VAULT__MASTER_KEY_FILE"]
    assert any(key_file.startswith(m + "/") for m in mounts)


def unit(name: str) -> dict[str, list[str]]:
    entries: dict[str, list[str]] = {}
    for line in (DEPLOY / "systemd" / name).read_text().splitlines():
        if "=" in line and not line.startswith("#"):
            key, _, value = line.partition("=")
            entries.setdefault(key, []).append(value)
    return entries


def test_systemd_units_start_every_listener_and_may_bind_their_ports():
    config = load(DEPLOY / "production.example.toml", {})
    ports = listeners(config)
    roles = {"smtp": {"submission", "submissions", "mailto"}, "public": {"public"},
             "admin": {"admin"}}
    started: set[str] = set()
    for path in sorted((DEPLOY / "systemd").glob("*.service")):
        entries = unit(path.name)
        (start,) = entries["ExecStart"]
        role = re.search(r"--role (\w+)", start).group(1)  # type: ignore[union-attr]
        assert "Environment" in entries and \
            "GATEWAY_CONFIG=/etc/ocg/gateway.toml" in entries["Environment"]
        capabilities = " ".join(entries.get("AmbientCapabilities", []))
        for name in roles[role]:
            port = ports[name]
            if "@" in path.name and name == "public":
                port = 8080  # gateway-public@8080.service: the instance is the port
            bindable = port >= PRIVILEGED or "CAP_NET_BIND_SERVICE" in capabilities
            assert bindable, (path.name, name, port)
            started.add(name)
            row(f"systemd {path.name}", name, port,
                "CAP_NET_BIND_SERVICE" if port < PRIVILEGED else "unprivileged")
    assert started == set(ports), started


def test_the_example_configs_are_the_ones_the_docs_name():
    """production.example.toml for one host (systemd), multi-node.example.toml behind
    HAProxy (compose): both load, and only the second trusts a balancer."""
    single = load(DEPLOY / "production.example.toml", {})
    multi = load(DEPLOY / "multi-node.example.toml", {})
    assert not single.smtp.proxy_protocol and single.smtp.submission_port == 587
    assert multi.smtp.proxy_protocol and multi.unsubscribe.mailto_proxy_protocol
    assert multi.vault.tenant_key_store.startswith(("redis://", "postgresql://"))
    assert tomllib.loads((DEPLOY / "multi-node.example.toml").read_text())[
        "environment"] == "production"
