"""The kustomize base and overlays: rendered, schema-validated, and held to their invariants."""

from __future__ import annotations

import functools
import re
import subprocess
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml
from deploy_catalog import DEPLOY, INGESTOR_ENV, K8S_VERSIONS, WRITER_ENV, missing, require_tool
from kustomize_lite import UnsupportedFeature, render

Obj = dict[str, Any]

KUSTOMIZATIONS = [DEPLOY / "base", *sorted((DEPLOY / "overlays").iterdir())]
KUSTOMIZATION_IDS = [str(k.relative_to(DEPLOY)) for k in KUSTOMIZATIONS]
WORKLOAD_KINDS = {"StatefulSet", "Deployment", "DaemonSet", "Job"}
UID = 10001
WAL_MOUNT = "/var/lib/stemedb/wal"


@functools.cache
def rendered(directory: Path) -> tuple[Obj, ...]:
    return tuple(render(directory))


def find(objs: tuple[Obj, ...], kind: str, name: str) -> Obj:
    matches = [o for o in objs if o["kind"] == kind and o["metadata"]["name"] == name]
    assert len(matches) == 1, f"expected one {kind}/{name}, found {len(matches)}"
    return matches[0]


def workloads(objs: tuple[Obj, ...]) -> list[Obj]:
    return [o for o in objs if o["kind"] in WORKLOAD_KINDS]


def pod_spec(workload: Obj) -> Obj:
    spec: Obj = workload["spec"]["template"]["spec"]
    return spec


def container(workload: Obj, name: str) -> Obj:
    matches: list[Obj] = [c for c in pod_spec(workload)["containers"] if c["name"] == name]
    assert len(matches) == 1, f"{workload['metadata']['name']}: container {name}"
    return matches[0]


def container_env(objs: tuple[Obj, ...], c: Obj) -> dict[str, Obj]:
    """Each variable a container gets, as {"value": ...}, {"valueFrom": ...}: env wins."""
    env: dict[str, Obj] = {}
    for source in c.get("envFrom", []):
        ref = source["configMapRef"]["name"]
        for key, value in find(objs, "ConfigMap", ref)["data"].items():
            env[key] = {"value": value}
    for var in c.get("env", []):
        env[var["name"]] = {k: v for k, v in var.items() if k != "name"}
    return env


def port_of(address: str) -> int:
    host, _, port = address.rpartition(":")
    assert host == "0.0.0.0", f"{address}: probes and Services reach the pod IP"
    return int(port)


def named_port(c: Obj, prefix: str) -> Obj:
    ports: list[Obj] = [p for p in c["ports"] if p["name"].startswith(prefix)]
    assert len(ports) == 1, f"{c['name']}: one port named {prefix}*"
    return ports[0]


def quantity(value: str | int) -> float:
    units = {"m": 1e-3, "Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40, "k": 1e3, "M": 1e6}
    match = re.fullmatch(r"([0-9.]+)([A-Za-z]*)", str(value))
    assert match, value
    return float(match.group(1)) * units.get(match.group(2), 1)


# -- rendering and schemas -------------------------------------------------------------------


@pytest.mark.parametrize("directory", KUSTOMIZATIONS, ids=KUSTOMIZATION_IDS)
@pytest.mark.parametrize("version", K8S_VERSIONS)
def test_every_rendered_object_validates(directory: Path, version: str) -> None:
    objs = rendered(directory)
    assert objs
    for obj in objs:
        name = f"{obj['kind']}/{obj['metadata']['name']}"
        try:
            kubernetes_validate.validate(obj, version, strict=True)
        except kubernetes_validate.ValidationError as e:
            path = ".".join(str(p) for p in e.path)
            pytest.fail(f"{directory.name}: {name} invalid for {version} at {path}: {e.message}")
        except kubernetes_validate.SchemaNotFoundError as e:
            pytest.fail(f"{directory.name}: {name}: {e.message}")


def test_validation_is_strict() -> None:
    """The validator rejects a misspelt field and a wrong type, so passing means something."""
    sts = find(rendered(DEPLOY / "base"), "StatefulSet", "stemedb")
    typo = yaml.safe_load(yaml.safe_dump(sts))
    container(typo, "writer")["readinessProbe"]["grpc"]["servise"] = "x"
    wrong_type = yaml.safe_load(yaml.safe_dump(sts))
    wrong_type["spec"]["replicas"] = "one"
    for bad in (typo, wrong_type):
        with pytest.raises(kubernetes_validate.ValidationError):
            kubernetes_validate.validate(bad, K8S_VERSIONS[-1], strict=True)


def kubectl_kustomize_v5() -> str:
    """kubectl with an embedded kustomize v5: a cross-check of the renderer. Without it the test
    skips locally and fails under CI=true (deploy_catalog.missing)."""
    kubectl = require_tool("kubectl", "install kubectl (v1.27+, kustomize v5 embedded)")
    out = subprocess.run(
        [kubectl, "version", "--client"], capture_output=True, text=True, check=False
    ).stdout
    match = re.search(r"Kustomize Version: v(\d+)", out)
    if not match or int(match.group(1)) < 5:
        missing(f"kubectl embeds no kustomize v5: {out.strip()!r}")
    return kubectl


@pytest.mark.parametrize("directory", KUSTOMIZATIONS, ids=KUSTOMIZATION_IDS)
def test_renderer_agrees_with_kubectl_kustomize(directory: Path) -> None:
    kubectl = kubectl_kustomize_v5()
    out = subprocess.run(
        [kubectl, "kustomize", str(directory)], capture_output=True, text=True, check=True
    ).stdout

    def key(o: Obj) -> tuple[str, str, str]:
        return (o["apiVersion"], o["kind"], o["metadata"]["name"])

    theirs = {key(o): o for o in yaml.safe_load_all(out) if o}
    ours = {key(o): o for o in rendered(directory)}
    assert sorted(ours) == sorted(theirs)
    for k, obj in ours.items():
        assert obj == theirs[k], f"{k} differs from kubectl kustomize"


def test_renderer_refuses_what_it_does_not_implement(tmp_path: Path) -> None:
    (tmp_path / "kustomization.yaml").write_text("resources: []\nnamePrefix: x-\n")
    with pytest.raises(UnsupportedFeature, match="namePrefix"):
        render(tmp_path)


# -- the primary pod: writer and ingestor ------------------------------------------------------


@pytest.mark.parametrize("directory", KUSTOMIZATIONS, ids=KUSTOMIZATION_IDS)
def test_writer_and_ingestor_share_the_wal_claim(directory: Path) -> None:
    sts = find(rendered(directory), "StatefulSet", "stemedb")
    assert sts["spec"]["replicas"] == 1, "one writer per shard: its WAL is per pod"
    templates = {t["metadata"]["name"]: t for t in sts["spec"]["volumeClaimTemplates"]}
    assert set(templates) == {"wal", "db"}
    pod_volumes = {v["name"] for v in pod_spec(sts).get("volumes", [])}
    assert not pod_volumes & set(templates), "claim templates must not be shadowed by volumes"
    mounts = {
        c["name"]: {m["name"]: m for m in c["volumeMounts"]} for c in pod_spec(sts)["containers"]
    }
    assert set(mounts) == {"writer", "ingestor"}
    assert mounts["writer"]["wal"]["mountPath"] == mounts["ingestor"]["wal"]["mountPath"]
    assert mounts["writer"]["wal"]["mountPath"] == WAL_MOUNT
    assert not mounts["writer"]["wal"].get("readOnly")
    assert "subPath" not in mounts["writer"]["wal"] and "subPath" not in mounts["ingestor"]["wal"]
    assert "db" in mounts["ingestor"] and "db" not in mounts["writer"]
    assert mounts["ingestor"]["db"]["mountPath"] != WAL_MOUNT


@pytest.mark.parametrize("directory", KUSTOMIZATIONS, ids=KUSTOMIZATION_IDS)
def test_env_is_the_stemedb_contract(directory: Path) -> None:
    objs = rendered(directory)
    for workload in workloads(objs):
        for c in pod_spec(workload)["containers"]:
            env = container_env(objs, c)
            allowed = WRITER_ENV if c["name"] == "writer" else INGESTOR_ENV
            assert set(env) <= allowed, f"{c['name']}: unexpected {set(env) - allowed}"
            # The volume's root (a replica also mounts consumers/ of it by subPath).
            mounts = {m["name"]: m["mountPath"] for m in c["volumeMounts"] if "subPath" not in m}
            assert env["STEMEDB_WAL_DIR"] == {"value": mounts["wal"]}
            grpc, metrics = named_port(c, "grpc-"), named_port(c, "metrics-")
            assert port_of(env["STEMEDB_LISTEN"]["value"]) == grpc["containerPort"]
            assert port_of(env["STEMEDB_METRICS_LISTEN"]["value"]) == metrics["containerPort"]
            if c["name"] == "ingestor":
                assert env["STEMEDB_DB_DIR"] == {"value": mounts["db"]}
                assert "STEMEDB_NAME" in env
            # Service links would add STEMEDB_WRITER_PORT and the like.
            assert pod_spec(workload)["enableServiceLinks"] is False


@pytest.mark.parametrize("directory", KUSTOMIZATIONS, ids=KUSTOMIZATION_IDS)
def test_probes_are_native_grpc_on_the_served_names(directory: Path) -> None:
    # A replica leaves readiness when halted or lagging (`stemedb.ready`). The primary's
    # ingestor shares its pod with the writer, and a pod is ready only when all its containers
    # are: `stemedb.ready` there would take the writer out of its Service whenever the
    # ingestor lags, so it stays on StoreService (reads work) and lag is alerted on.
    readiness_service = {
        ("primary", "writer"): "stemedb.v1.WriterService",
        ("primary", "ingestor"): "stemedb.v1.StoreService",
        ("replica", "ingestor"): "stemedb.ready",
    }
    grpc_port = {"writer": 50051, "ingestor": 50052}
    for workload in workloads(rendered(directory)):
        component = workload["metadata"]["labels"]["app.kubernetes.io/component"]
        for c in pod_spec(workload)["containers"]:
            port = named_port(c, "grpc-")["containerPort"]
            assert port == grpc_port[c["name"]]
            for kind in ("startupProbe", "readinessProbe", "livenessProbe"):
                probe = c[kind]
                assert set(probe) & {"exec", "httpGet", "tcpSocket"} == set()
                assert probe["grpc"]["port"] == port, f"{c['name']} {kind}"
            want = readiness_service[(component, c["name"])]
            assert c["readinessProbe"]["grpc"]["service"] == want, f"{component} {c['name']}"
            # Liveness asks the server as a whole; a halted apply loop (`stemedb.ingest`)
            # is alerted on, not restarted.
            assert c["livenessProbe"]["grpc"]["service"] == ""
            assert c["startupProbe"]["grpc"]["service"] == ""


@pytest.mark.parametrize("directory", KUSTOMIZATIONS, ids=KUSTOMIZATION_IDS)
def test_security_context_is_non_root_and_locked_down(directory: Path) -> None:
    for workload in workloads(rendered(directory)):
        spec = pod_spec(workload)
        pod = spec["securityContext"]
        assert pod["runAsNonRoot"] is True
        assert pod["runAsUser"] == UID and pod["runAsGroup"] == UID and pod["fsGroup"] == UID
        assert pod["seccompProfile"] == {"type": "RuntimeDefault"}
        assert spec["automountServiceAccountToken"] is False
        assert spec["terminationGracePeriodSeconds"] >= 30, "time to drain in-flight commits"
        for c in spec["containers"] + spec.get("initContainers", []):
            sc = c["securityContext"]
            assert sc["runAsNonRoot"] is True and sc.get("runAsUser", UID) == UID
            assert sc["allowPrivilegeEscalation"] is False
            assert sc["readOnlyRootFilesystem"] is True
            assert sc["capabilities"] == {"drop": ["ALL"]}
            assert sc.get("privileged") is not True
            assert sc["seccompProfile"] == {"type": "RuntimeDefault"}
            # A read-only root needs a writable /tmp.
            assert "/tmp" in {m["mountPath"] for m in c["volumeMounts"]}


@pytest.mark.parametrize("directory", KUSTOMIZATIONS, ids=KUSTOMIZATION_IDS)
def test_every_container_has_requests_and_limits(directory: Path) -> None:
    for workload in workloads(rendered(directory)):
        for c in pod_spec(workload)["containers"]:
            res = c["resources"]
            for resource in ("cpu", "memory"):
                request, limit = res["requests"][resource], res["limits"][resource]
                assert quantity(request) <= quantity(limit), f"{c['name']} {resource}"


@pytest.mark.parametrize("directory", KUSTOMIZATIONS, ids=KUSTOMIZATION_IDS)
def test_containers_run_the_console_scripts_of_one_tagged_image(directory: Path) -> None:
    scripts = {"writer": "stemedb-writer", "ingestor": "stemedb-ingestor"}
    images = set()
    for workload in workloads(rendered(directory)):
        for c in pod_spec(workload)["containers"]:
            assert c["args"] == [scripts[c["name"]]]
            assert "command" not in c, "keep the image's ENTRYPOINT (tini)"
            images.add(c["image"])
    assert len(images) == 1
    (image,) = images
    assert re.fullmatch(r"[\w./-]+:[\w.-]+", image) and not image.endswith(":latest")


@pytest.mark.parametrize("directory", KUSTOMIZATIONS, ids=KUSTOMIZATION_IDS)
def test_services_and_budgets_select_real_pods_and_ports(directory: Path) -> None:
    objs = rendered(directory)
    pods = [
        (w["spec"]["template"]["metadata"]["labels"], pod_spec(w)["containers"])
        for w in workloads(objs)
    ]

    def selected(selector: dict[str, str]) -> list[list[Obj]]:
        return [cs for labels, cs in pods if selector.items() <= labels.items()]

    for svc in (o for o in objs if o["kind"] == "Service"):
        targets = selected(svc["spec"]["selector"])
        assert targets, f"Service {svc['metadata']['name']} selects no pod"
        for port in svc["spec"]["ports"]:
            for containers in targets:
                names = {p["name"]: p["containerPort"] for c in containers for p in c["ports"]}
                assert names[port["targetPort"]] == port["port"], svc["metadata"]["name"]
    for pdb in (o for o in objs if o["kind"] == "PodDisruptionBudget"):
        assert selected(pdb["spec"]["selector"]["matchLabels"])
    for sts in (o for o in objs if o["kind"] == "StatefulSet"):
        governing = find(objs, "Service", sts["spec"]["serviceName"])
        assert governing["spec"]["clusterIP"] == "None"
        assert sts["spec"]["selector"]["matchLabels"].items() <= (
            sts["spec"]["template"]["metadata"]["labels"].items()
        )


def test_base_services_and_ports() -> None:
    objs = rendered(DEPLOY / "base")
    ports = {
        o["metadata"]["name"]: {p["name"]: p["port"] for p in o["spec"]["ports"]}
        for o in objs
        if o["kind"] == "Service"
    }
    assert ports["stemedb-writer"] == {"grpc": 50051, "metrics-writer": 9101}
    assert ports["stemedb-store"] == {"grpc": 50052, "metrics-ingest": 9102}
    assert ports["stemedb"] == {
        "grpc-writer": 50051,
        "grpc-store": 50052,
        "metrics-writer": 9101,
        "metrics-ingest": 9102,
    }
    pdb = find(objs, "PodDisruptionBudget", "stemedb")
    assert pdb["spec"]["minAvailable"] == 1


# -- the read replicas overlay -----------------------------------------------------------------


def test_replicas_follow_the_primary_wal_over_read_write_many() -> None:
    objs = rendered(DEPLOY / "overlays" / "replicas")
    primary = find(objs, "StatefulSet", "stemedb")
    replica = find(objs, "StatefulSet", "stemedb-replica")
    wal = next(t for t in primary["spec"]["volumeClaimTemplates"] if t["metadata"]["name"] == "wal")
    assert wal["spec"]["accessModes"] == ["ReadWriteMany"]

    # The claim StatefulSet `stemedb` creates for pod 0 from its `wal` template.
    volumes = {v["name"]: v for v in pod_spec(replica)["volumes"]}
    assert volumes["wal"]["persistentVolumeClaim"] == {"claimName": "wal-stemedb-0"}
    own_db = {t["metadata"]["name"] for t in replica["spec"].get("volumeClaimTemplates", [])}
    assert "db" in own_db or "emptyDir" in volumes.get("db", {})

    (ingestor,) = pod_spec(replica)["containers"]
    assert ingestor["name"] == "ingestor"
    env = container_env(objs, ingestor)
    assert env["STEMEDB_NAME"] == {"valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}}
    primary_env = container_env(objs, container(primary, "ingestor"))
    assert env["STEMEDB_WAL_DIR"] == primary_env["STEMEDB_WAL_DIR"]

    replica_labels = replica["spec"]["template"]["metadata"]["labels"]
    primary_labels = primary["spec"]["template"]["metadata"]["labels"]
    services = [o for o in objs if o["kind"] == "Service"]
    assert any(s["spec"]["selector"].items() <= replica_labels.items() for s in services)
    for s in services:  # no Service mixes writer pods and replicas by accident
        sel = s["spec"]["selector"].items()
        assert not (sel <= replica_labels.items() and sel <= primary_labels.items())


def test_replicas_mount_the_wal_read_only_but_their_checkpoint_directory() -> None:
    objs = rendered(DEPLOY / "overlays" / "replicas")
    replica = find(objs, "StatefulSet", "stemedb-replica")
    (ingestor,) = pod_spec(replica)["containers"]
    wal_mounts = [m for m in ingestor["volumeMounts"] if m["name"] == "wal"]
    root = [m for m in wal_mounts if "subPath" not in m]
    assert len(root) == 1 and root[0]["mountPath"] == WAL_MOUNT and root[0]["readOnly"] is True
    # The only writable part: consumers/, where stemedb.wal writes consumers/<name>.json
    # (tmp file + rename, so the directory and not the file must be writable).
    from stemedb.wal._consumers import CONSUMERS_DIR

    writable = [m for m in wal_mounts if not m.get("readOnly")]
    assert writable == [
        {"name": "wal", "mountPath": f"{WAL_MOUNT}/{CONSUMERS_DIR}", "subPath": CONSUMERS_DIR}
    ]


def policies(objs: tuple[Obj, ...]) -> list[Obj]:
    return [o for o in objs if o["kind"] == "NetworkPolicy"]


def selects(policy: Obj, labels: dict[str, str]) -> bool:
    selector = policy["spec"]["podSelector"]
    assert set(selector) <= {"matchLabels"}, "only matchLabels selectors are checked here"
    return bool(selector.get("matchLabels", {}).items() <= labels.items())


@pytest.mark.parametrize("directory", KUSTOMIZATIONS, ids=KUSTOMIZATION_IDS)
def test_network_policy_denies_by_default_and_allows_what_the_pair_needs(
    directory: Path,
) -> None:
    objs = rendered(directory)
    pols = policies(objs)
    deny = [p for p in pols if not p["spec"].get("ingress") and not p["spec"].get("egress")]
    assert any(set(p["spec"]["policyTypes"]) == {"Ingress", "Egress"} for p in deny)
    for workload in workloads(objs):
        labels = workload["spec"]["template"]["metadata"]["labels"]
        mine = [p for p in pols if selects(p, labels)]
        assert any(p in deny for p in mine), f"{workload['metadata']['name']}: no default deny"
        # What the policies open on this pod: (named port, description of the peer).
        opened: dict[str, list[Obj]] = {}
        for p in mine:
            assert not p["spec"].get("egress"), "the services call nobody: no egress"
            for rule in p["spec"].get("ingress", []):
                assert rule.get("from"), "an ingress rule without peers would allow everyone"
                for port in rule["ports"]:
                    opened.setdefault(port["port"], []).extend(rule["from"])
        ports = {p["name"] for c in pod_spec(workload)["containers"] for p in c["ports"]}
        # Every container port is reachable by someone, and nothing else is opened.
        assert ports <= set(opened), f"unreachable: {ports - set(opened)}"
        for name, peers in opened.items():
            if name in ports:
                if name.startswith("metrics-"):
                    assert all("namespaceSelector" in peer for peer in peers)
                    assert any(
                        peer.get("podSelector", {})
                        .get("matchLabels", {})
                        .get("app.kubernetes.io/name")
                        == "prometheus"
                        for peer in peers
                    )
                else:
                    assert name.startswith("grpc-")
                    assert all("podSelector" in peer for peer in peers), "no open-to-all peer"
    for p in pols:
        for rule in p["spec"].get("ingress", []):
            for port in rule["ports"]:
                assert isinstance(port["port"], str), "named ports follow the containers"
