"""deploy/examples/wallet-sidecar: an agent pod with a stemedb-wallet sidecar. Rendered,
schema-validated, held to its invariants (the socket on a shared emptyDir, the keystore on a
claim and the passphrase from a Secret, both the wallet's alone), and its configuration run by
the real stemedb-wallet."""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml
from deploy_catalog import DEPLOY, K8S_VERSIONS
from kustomize_lite import render
from test_deploy_manifests import container, container_env, find, kubectl_kustomize_v5, pod_spec

from stemedb.runtime import build_parser, unix_socket_path
from stemedb.runtime._config import env_name
from stemedb.wallet._config import WalletConfig
from tests.support import BIN, SERVING, Service, free_port, health_status

Obj = dict[str, Any]
EXAMPLE = DEPLOY / "examples" / "wallet-sidecar"
UID = 10001


@pytest.fixture(scope="module")
def objs() -> tuple[Obj, ...]:
    return tuple(render(EXAMPLE))


def _volumes(workload: Obj) -> dict[str, Obj]:
    return {v["name"]: v for v in pod_spec(workload)["volumes"]}


def _mounts(c: Obj) -> dict[str, Obj]:
    return {m["name"]: m for m in c["volumeMounts"]}


def _under(path: str, mount: Obj) -> bool:
    return path.startswith(mount["mountPath"].rstrip("/") + "/")


def _wallet_env_names() -> set[str]:
    parser = build_parser(WalletConfig, "stemedb-wallet", "")
    flags = {o for a in parser._actions for o in a.option_strings if o.startswith("--")}
    return {env_name(f) for f in flags if f != "--help"} | {"STEMEDB_WALLET_PASSPHRASE"}


@pytest.mark.parametrize("version", K8S_VERSIONS)
def test_every_object_validates(objs: tuple[Obj, ...], version: str) -> None:
    kinds = sorted(o["kind"] for o in objs)
    assert kinds == [
        "ConfigMap", "ConfigMap", "Deployment", "NetworkPolicy", "PersistentVolumeClaim",
    ]  # fmt: skip
    for obj in objs:
        kubernetes_validate.validate(obj, version, strict=True)


def test_renderer_agrees_with_kubectl_kustomize(objs: tuple[Obj, ...]) -> None:
    kubectl = kubectl_kustomize_v5()
    out = subprocess.run(
        [kubectl, "kustomize", str(EXAMPLE)], capture_output=True, text=True, check=True
    ).stdout
    theirs = sorted(yaml.safe_dump(o) for o in yaml.safe_load_all(out) if o)
    assert sorted(yaml.safe_dump(o) for o in objs) == theirs


def test_socket_keystore_and_passphrase(objs: tuple[Obj, ...]) -> None:
    agent_pod = find(objs, "Deployment", "agent")
    assert agent_pod["spec"]["replicas"] == 1 and agent_pod["spec"]["strategy"] == {
        "type": "Recreate"
    }, "one wallet per keystore: never two pods on one claim"
    volumes = _volumes(agent_pod)
    agent, wallet = container(agent_pod, "agent"), container(agent_pod, "wallet")
    assert {c["name"] for c in pod_spec(agent_pod)["containers"]} == {"agent", "wallet"}
    assert wallet["args"] == ["stemedb-wallet"] and "command" not in wallet
    assert wallet["image"].startswith("stemedb:") and not wallet["image"].endswith(":latest")

    env = {k: v["value"] for k, v in container_env(objs, wallet).items()}
    assert set(env) <= _wallet_env_names(), "every variable is a flag of stemedb-wallet"
    assert "STEMEDB_WALLET_PASSPHRASE" not in env, "never a passphrase in a ConfigMap"
    wallet_mounts, agent_mounts = _mounts(wallet), _mounts(agent)

    # The socket: on an emptyDir both containers mount at the same path; the agent writes to it.
    socket = unix_socket_path(env["STEMEDB_LISTEN"])
    assert socket is not None
    (shared,) = [m for m in wallet_mounts.values() if _under(str(socket), m)]
    assert "emptyDir" in volumes[shared["name"]]
    assert agent_mounts[shared["name"]]["mountPath"] == shared["mountPath"]
    agent_env = {k: v["value"] for k, v in container_env(objs, agent).items()}
    assert agent_env["STEMEDB_WRITER"] == agent_env["STEMEDB_WALLET"] == env["STEMEDB_LISTEN"]

    # The keystore on the claim, the passphrase from the Secret: the wallet's only.
    (keystore,) = [m for m in wallet_mounts.values() if _under(env["STEMEDB_KEYSTORE"], m)]
    claim = volumes[keystore["name"]]["persistentVolumeClaim"]["claimName"]
    assert find(objs, "PersistentVolumeClaim", claim)["spec"]["accessModes"] == ["ReadWriteOnce"]
    (secret,) = [m for m in wallet_mounts.values() if _under(env["STEMEDB_PASSPHRASE_FILE"], m)]
    assert secret["readOnly"] is True
    source = volumes[secret["name"]]["secret"]
    assert source["defaultMode"] & 0o077 == 0 and source["secretName"]
    assert keystore["name"] not in agent_mounts and secret["name"] not in agent_mounts
    assert "env" not in agent or all("secretKeyRef" not in str(v) for v in agent["env"])

    # The socket is 0600: both containers run as the same user.
    pod = pod_spec(agent_pod)["securityContext"]
    assert pod["runAsNonRoot"] is True and pod["runAsUser"] == UID and pod["fsGroup"] == UID
    for c in (agent, wallet):
        sc = c["securityContext"]
        assert sc["runAsUser"] == UID and sc["allowPrivilegeEscalation"] is False
        assert sc["readOnlyRootFilesystem"] is True and sc["capabilities"] == {"drop": ["ALL"]}
        assert "/tmp" in {m["mountPath"] for m in c["volumeMounts"]}
        for resource in ("cpu", "memory"):
            assert c["resources"]["requests"][resource] and c["resources"]["limits"][resource]

    # Probes: gRPC health on the plaintext health port (a kubelet cannot reach the socket).
    ports = {p["name"]: p["containerPort"] for p in wallet["ports"]}
    assert ports["health-wallet"] == int(env["STEMEDB_HEALTH_LISTEN"].rsplit(":", 1)[1])
    assert ports["metrics-wallet"] == int(env["STEMEDB_METRICS_LISTEN"].rsplit(":", 1)[1])
    for kind in ("startupProbe", "readinessProbe", "livenessProbe"):
        assert wallet[kind]["grpc"]["port"] == ports["health-wallet"], kind
    assert wallet["readinessProbe"]["grpc"]["service"] == "stemedb.v1.WalletService"


def test_the_wallet_reaches_the_writer_of_deploy_base(objs: tuple[Obj, ...]) -> None:
    base = tuple(render(DEPLOY / "base"))
    agent_pod = find(objs, "Deployment", "agent")
    env = container_env(objs, container(agent_pod, "wallet"))
    host, port = env["STEMEDB_WRITER"]["value"].rsplit(":", 1)
    writer = find(base, "Service", host)
    assert int(port) in {p["port"] for p in writer["spec"]["ports"]}
    store_host, store_port = container_env(objs, container(agent_pod, "agent"))["STEMEDB_STORE"][
        "value"
    ].rsplit(":", 1)
    assert int(store_port) in {
        p["port"] for p in find(base, "Service", store_host)["spec"]["ports"]
    }
    # The base admits the pod (stemedb.io/client), the example's policy lets it out to the pods.
    labels = agent_pod["spec"]["template"]["metadata"]["labels"]
    allow = find(base, "NetworkPolicy", "stemedb-allow-grpc-clients")
    (peer,) = allow["spec"]["ingress"][0]["from"]
    assert peer["podSelector"]["matchLabels"].items() <= labels.items()
    policy = find(objs, "NetworkPolicy", "agent")
    assert policy["spec"]["podSelector"]["matchLabels"].items() <= labels.items()
    assert set(policy["spec"]["policyTypes"]) == {"Ingress", "Egress"}
    stemedb_rule = next(
        r for r in policy["spec"]["egress"]
        if r["to"][0].get("podSelector", {}).get("matchLabels") == {"app.kubernetes.io/name":
                                                                    "stemedb"}
    )  # fmt: skip
    assert {int(port), int(store_port)} <= {p["port"] for p in stemedb_rule["ports"]}
    (ingress,) = policy["spec"]["ingress"]
    assert [p["port"] for p in ingress["ports"]] == ["metrics-wallet"], "the socket is local"


@pytest.fixture
def short_dir() -> Iterator[Path]:
    path = Path(tempfile.mkdtemp(prefix="stk", dir="/tmp"))  # a socket path is short
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def test_the_real_wallet_runs_the_example_configuration(
    objs: tuple[Obj, ...], short_dir: Path
) -> None:
    """The ConfigMap's variables as they are, with each mount moved under a local directory
    and each port a free one: the wallet starts, and the agent's variables reach it."""
    agent_pod = find(objs, "Deployment", "agent")
    wallet = container(agent_pod, "wallet")
    local = {m["mountPath"]: short_dir / m["name"] for m in wallet["volumeMounts"]}

    def here(value: str) -> str:
        scheme, sep, path = value.rpartition("unix:")
        for mount in sorted(local, key=len, reverse=True):
            if path.startswith(mount + "/"):
                return f"{scheme}{sep}{local[mount]}{path[len(mount) :]}"
        if value.startswith("0.0.0.0:"):
            return f"127.0.0.1:{free_port()}"
        return value

    env = {k: here(v["value"]) for k, v in container_env(objs, wallet).items()}
    for path in local.values():
        path.mkdir()
    passphrase = Path(env["STEMEDB_PASSPHRASE_FILE"])
    passphrase.write_bytes(b"a passphrase from a Secret\n")
    passphrase.chmod(0o440)  # as the kubelet mounts it with the pod's fsGroup
    svc = Service(
        [str(BIN / "stemedb-wallet"), "--kdf-opslimit", "1", "--kdf-memlimit-bytes", "8192"],
        env["STEMEDB_HEALTH_LISTEN"], env["STEMEDB_METRICS_LISTEN"], short_dir / "wallet.log",
        env,
    )  # fmt: skip
    try:
        svc.wait_ready()
        assert health_status(svc.listen, "stemedb.v1.WalletService") == SERVING
        agent_env = {
            k: here(v["value"])
            for k, v in container_env(objs, container(agent_pod, "agent")).items()
        }
        r = subprocess.run(
            [str(BIN / "stemedb"), "wallet", "create", "agent", "--json"],
            capture_output=True, text=True, timeout=60, env={"PATH": "/usr/bin:/bin", **agent_env},
        )  # fmt: skip
        assert r.returncode == 0, r.stderr
        assert (Path(env["STEMEDB_KEYSTORE"]) / "agent.key").exists()
        assert "readable by others" not in svc.log_text()
    finally:
        svc.kill()
