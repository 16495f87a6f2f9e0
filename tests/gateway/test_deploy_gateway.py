"""deploy/gateway: rendered, validated against the Kubernetes schemas, consistent with the base."""

from __future__ import annotations

import importlib.util
import os
import shutil
import subprocess
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import kubernetes_validate
import pytest
import yaml

from stemedb.gateway._config import build_parser
from stemedb.runtime._config import env_name
from tests.support import ROOT

DEPLOY = ROOT / "deploy"
K8S_VERSIONS = ("1.32.0", "1.37.0")  # as tests/deploy validates the base
Obj = dict[str, Any]


def _module(name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(name, ROOT / "tests" / "deploy" / f"{name}.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules.setdefault(name, module)  # dataclasses look their module up by name
    spec.loader.exec_module(module)
    return module


render = _module("kustomize_lite").render


def _one(objs: list[Obj], kind: str, name: str) -> Obj:
    found = [o for o in objs if o["kind"] == kind and o["metadata"]["name"] == name]
    assert len(found) == 1, (kind, name, len(found))
    return found[0]


@pytest.fixture(scope="module")
def objs() -> list[Obj]:
    rendered: list[Obj] = render(DEPLOY / "gateway")
    return rendered


@pytest.mark.parametrize("version", K8S_VERSIONS)
def test_every_object_validates(objs: list[Obj], version: str) -> None:
    assert {o["kind"] for o in objs} == {
        "Deployment",
        "Service",
        "NetworkPolicy",
        "PodDisruptionBudget",
        "HorizontalPodAutoscaler",
        "ConfigMap",
    }
    for obj in objs:
        kubernetes_validate.validate(obj, version, strict=True)


def test_deployment_is_stateless_probed_locked_down_and_configured(objs: list[Obj]) -> None:
    dep = _one(objs, "Deployment", "stemedb-gateway")
    assert dep["spec"]["replicas"] >= 2
    pod = dep["spec"]["template"]["spec"]
    assert "volumeClaimTemplates" not in dep["spec"]
    assert all("emptyDir" in v for v in pod.get("volumes", [])), "stateless: no claims"
    (c,) = pod["containers"]
    assert c["args"] == ["stemedb-gateway"] and "command" not in c
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert c["securityContext"]["readOnlyRootFilesystem"] is True
    assert c["securityContext"]["capabilities"] == {"drop": ["ALL"]}
    assert c["readinessProbe"]["httpGet"]["path"] == "/healthz"
    assert c["livenessProbe"]["httpGet"]["path"] != "/healthz", "a backend outage is no restart"
    config = _one(objs, "ConfigMap", c["envFrom"][0]["configMapRef"]["name"])["data"]
    flags = {env_name(a.option_strings[0]) for a in build_parser()._actions if a.option_strings}
    assert set(config) <= flags, set(config) - flags
    port = {p["name"]: p["containerPort"] for p in c["ports"]}["http"]
    assert config["STEMEDB_LISTEN"].endswith(f":{port}")
    # the backends are the base's Services, on their gRPC ports
    base = render(DEPLOY / "base")
    for var in ("STEMEDB_WRITER", "STEMEDB_STORE"):
        host, svc_port = config[var].rsplit(":", 1)
        svc = _one(base, "Service", host)
        assert int(svc_port) in {p["port"] for p in svc["spec"]["ports"]}, var


def test_network_policies_let_the_gateway_reach_the_backends(objs: list[Obj]) -> None:
    dep = _one(objs, "Deployment", "stemedb-gateway")
    labels = dep["spec"]["template"]["metadata"]["labels"]
    # Where the base admits gRPC clients by a pod label (stemedb.io/client), the gateway has it.
    for policy in (o for o in render(DEPLOY / "base") if o["kind"] == "NetworkPolicy"):
        for rule in policy["spec"].get("ingress", []):
            grpc_ports = {p["port"] for p in rule.get("ports", [])} & {"grpc-writer", "grpc-store"}
            for peer in rule.get("from", []) if grpc_ports else []:
                allowed = peer.get("podSelector", {}).get("matchLabels", {})
                assert allowed.items() <= labels.items(), policy["metadata"]["name"]
    own = _one(objs, "NetworkPolicy", "stemedb-gateway")
    assert own["spec"]["podSelector"]["matchLabels"].items() <= labels.items()
    egress_ports = {p["port"] for rule in own["spec"]["egress"] for p in rule["ports"]}
    assert {50051, 50052, 53} <= egress_ports


def test_service_pdb_and_hpa_select_the_deployment(objs: list[Obj]) -> None:
    dep = _one(objs, "Deployment", "stemedb-gateway")
    labels = dep["spec"]["template"]["metadata"]["labels"]
    svc = _one(objs, "Service", "stemedb-gateway")
    assert svc["spec"]["selector"].items() <= labels.items()
    ports = {p["name"] for p in dep["spec"]["template"]["spec"]["containers"][0]["ports"]}
    assert {p["targetPort"] for p in svc["spec"]["ports"]} <= ports
    pdb = _one(objs, "PodDisruptionBudget", "stemedb-gateway")
    assert pdb["spec"]["selector"]["matchLabels"].items() <= labels.items()
    hpa = _one(objs, "HorizontalPodAutoscaler", "stemedb-gateway")
    assert hpa["spec"]["scaleTargetRef"]["name"] == "stemedb-gateway"
    assert hpa["spec"]["minReplicas"] >= 2


def test_scrape_job_is_promtool_clean(tmp_path: Path) -> None:
    promtool = shutil.which("promtool")
    if promtool is None:
        if os.environ.get("CI"):
            pytest.fail("promtool is missing (make promtool); CI is set")
        pytest.skip("promtool is not installed (make promtool)")
    config = yaml.safe_load((DEPLOY / "prometheus" / "prometheus-kubernetes.yml").read_text())
    job = yaml.safe_load((DEPLOY / "gateway" / "prometheus-scrape.yml").read_text())
    config["scrape_configs"] += job["scrape_configs"]
    # Debian's promtool is built without Kubernetes discovery (as tests/deploy notes): check the
    # rest with each kubernetes_sd_configs swapped for an empty static_configs.
    for each in config["scrape_configs"]:
        assert each.pop("kubernetes_sd_configs") == [{"role": "pod"}]
        each["static_configs"] = [{"targets": []}]
    keep = {
        tuple(r["source_labels"]): r["regex"]
        for r in job["scrape_configs"][0]["relabel_configs"]
        if r.get("action") == "keep"
    }
    assert keep[("__meta_kubernetes_pod_label_app_kubernetes_io_name",)] == "stemedb-gateway"
    assert keep[("__meta_kubernetes_pod_container_port_name",)] == "http"
    for rule_file in config.get("rule_files", []):
        shutil.copy(DEPLOY / "prometheus" / rule_file, tmp_path / rule_file)
    (tmp_path / "prometheus.yml").write_text(yaml.safe_dump(config))
    out = subprocess.run(
        [promtool, "check", "config", str(tmp_path / "prometheus.yml")],
        capture_output=True,
        text=True,
    )
    assert out.returncode == 0, out.stdout + out.stderr
    assert "stemedb-gateway" in {j["job_name"] for j in config["scrape_configs"]}
