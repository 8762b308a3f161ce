"""What deploy/ ships is well-formed and says what the operations guide promises: HAProxy
accepts its configuration, systemd its units, the Kubernetes objects and the compose file
parse and wire probes, secrets, PROXY protocol and a non-root image."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

DEPLOY = Path(__file__).parents[1] / "deploy"


def test_haproxy_accepts_its_configuration():
    haproxy = shutil.which("haproxy") or "/usr/sbin/haproxy"
    if not Path(haproxy).exists():
        pytest.fail("haproxy is required (scripts/install-system-packages.sh)")
    result = subprocess.run([haproxy, "-c", "-f", str(DEPLOY / "haproxy.cfg")],
                            capture_output=True, text=True, timeout=30)
    assert result.returncode == 0, result.stderr
    text = (DEPLOY / "haproxy.cfg").read_text()
    assert "send-proxy-v2" in text and "option redispatch" in text


def test_systemd_accepts_the_hardened_units(tmp_path: Path):
    analyze = shutil.which("systemd-analyze")
    if analyze is None:
        pytest.skip("systemd-analyze is not installed")
    for unit in (DEPLOY / "systemd").glob("*.service"):
        text = unit.read_text()
        for directive in ("NoNewPrivileges=yes", "ProtectSystem=strict", "PrivateTmp=yes",
                          "ProtectHome=yes", "SystemCallFilter=@system-service"):
            assert directive in text, (unit.name, directive)
        copy = tmp_path / unit.name.replace("@.", "@8080.")
        copy.write_text(text.replace("/opt/ocg/.venv/bin/gateway", "/bin/true"))
        result = subprocess.run([analyze, "verify", str(copy)], capture_output=True,
                                text=True, timeout=60)
        assert not re.search(r"Unknown key|Failed to parse|Invalid", result.stderr), \
            result.stderr


def test_kubernetes_objects_wire_probes_secret_and_disruption_budget():
    docs = list(yaml.safe_load_all((DEPLOY / "kubernetes/gateway.yaml").read_text()))
    kinds = {d["kind"]: d for d in docs}
    assert {"Secret", "ConfigMap", "Deployment", "Service", "PodDisruptionBudget",
            "NetworkPolicy"} <= set(kinds)
    pod = kinds["Deployment"]["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert container["securityContext"]["allowPrivilegeEscalation"] is False
    assert pod["terminationGracePeriodSeconds"] >= 60
    mounts = {m["name"] for m in container["volumeMounts"]}
    assert "master-key" in mounts
    assert kinds["PodDisruptionBudget"]["spec"]["minAvailable"] == 1
    assert pod["initContainers"][0]["args"] == ["db", "upgrade"]


def test_kubernetes_objects_pass_the_api_schema():
    validate = Path(sys.executable).with_name("kubernetes-validate")
    result = subprocess.run([str(validate), "--strict", "--quiet",
                             str(DEPLOY / "kubernetes/gateway.yaml")],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr


def test_docker_compose_accepts_the_compose_file(tmp_path: Path):
    compose = shutil.which("docker-compose")
    if compose is None:
        pytest.fail("docker-compose is required (scripts/install-system-packages.sh)")
    work = tmp_path / "compose"
    shutil.copytree(DEPLOY / "compose", work)
    (work / "secrets").mkdir()
    (work / "tls").mkdir()
    for name in ("secrets/master.key", "secrets/db_password", "secrets/pgpass"):
        (work / name).write_text("")
    for name in ("haproxy.cfg", "multi-node.example.toml"):  # ../, as in deploy/
        shutil.copy(DEPLOY / name, tmp_path / name)
    result = subprocess.run([compose, "-f", str(work / "compose.yaml"), "config", "-q"],
                            capture_output=True, text=True, timeout=120, cwd=work)
    assert result.returncode == 0, result.stderr


def test_compose_runs_two_nodes_behind_haproxy_with_a_shared_database():
    compose = yaml.safe_load((DEPLOY / "compose/compose.yaml").read_text())
    services = compose["services"]
    assert {"gateway1", "gateway2", "postgres", "redis", "haproxy", "migrate"} <= set(services)
    assert services["gateway1"]["environment"]["GATEWAY__AUDIT__CHAIN"] != \
        services["gateway2"]["environment"]["GATEWAY__AUDIT__CHAIN"]
    assert "master_key" in compose["secrets"]


def test_the_image_is_multi_stage_non_root_and_without_build_tools():
    text = (DEPLOY / "Dockerfile").read_text()
    stages = re.split(r"^FROM ", text, flags=re.M)[1:]
    assert len(stages) == 2
    final = stages[-1]
    assert "gcc" not in final and "apt-get" not in final
    assert re.search(r"^USER 10001", final, flags=re.M)
