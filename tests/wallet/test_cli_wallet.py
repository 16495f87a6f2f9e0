"""``stemedb wallet create | list | pubkey | default | retire``: the real ``stemedb`` CLI against
a real ``stemedb-wallet`` process on its Unix socket."""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest

from stemedb.wallet import Keystore
from tests.runtime.tlslib import ThrowawayCA, write_server_files
from tests.support import BIN, Service, free_port, start_ingestor, start_writer
from tests.wallet.wallet_testlib import FAST_KDF, PASSPHRASE, leaks, secrets_of, start_wallet


@pytest.fixture
def wallet(tmp_path: Path, sock_dir: Path) -> Iterator[Service]:
    svc = start_wallet(tmp_path / "ks", sock_dir)
    try:
        svc.wait_ready()
        yield svc
    finally:
        svc.kill()


def stemedb(*argv: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("STEMEDB_")}
    return subprocess.run(
        [str(BIN / "stemedb"), *argv], capture_output=True, text=True, timeout=60, env=env,
        cwd=cwd,
    )  # fmt: skip


def test_create_list_pubkey_default_retire(tmp_path: Path, wallet: Service) -> None:
    w = ["--wallet", wallet.listen]
    outputs: list[str] = []

    def ok(*argv: str) -> str:
        r = stemedb("wallet", *argv)
        assert r.returncode == 0, r.stderr
        outputs.append(r.stdout + r.stderr)
        return r.stdout

    first = json.loads(ok(*w, "create", "alice", "--json"))
    assert first["name"] == "alice" and first["default"] is True and first["retired"] is False
    line = ok("create", "bob", *w).strip().split("\t")
    assert line[0] == "bob" and len(bytes.fromhex(line[1])) == 32 and line[3] == "-"
    # The global options before the command work too.
    listed = json.loads(stemedb("--json", "wallet", *w, "list").stdout)
    assert [(k["name"], k["default"], k["retired"]) for k in listed] == [
        ("alice", True, False), ("bob", False, False),
    ]  # fmt: skip
    assert ok(*w, "pubkey").strip() == first["public_key"], "no NAME: the default key"
    assert ok(*w, "pubkey", "bob").strip() == line[1]
    # Rotation: bob becomes the default, alice is retired, stays listed.
    assert ok(*w, "default", "bob").split("\t")[3].strip() == "default"
    retired = json.loads(ok(*w, "retire", "alice", "--json"))
    assert retired["retired"] is True and retired["public_key"] == first["public_key"]
    table = [row.split("\t") for row in ok(*w, "list").splitlines()]
    assert [(r[0], r[3]) for r in table] == [("alice", "retired"), ("bob", "default")]

    # Refusals: one line on stderr, the CLI's exit codes.
    r = stemedb("wallet", *w, "pubkey", "nobody")
    assert r.returncode == 1 and "NOT_FOUND" in r.stderr and r.stdout == ""
    r = stemedb("wallet", *w, "create", "alice")
    assert r.returncode == 2 and "ALREADY_EXISTS" in r.stderr
    r = stemedb("wallet", *w, "create", "../evil")
    assert r.returncode == 2 and "INVALID_ARGUMENT: name" in r.stderr
    r = stemedb("wallet", *w, "retire", "bob")
    assert r.returncode == 2 and "FAILED_PRECONDITION" in r.stderr, "the default key stays"
    r = stemedb("wallet", "--wallet", f"unix:{tmp_path}/none.sock", "list")
    assert r.returncode == 3 and "cannot reach the wallet" in r.stderr
    assert stemedb("wallet").returncode == 2, "a wallet command is required"

    assert wallet.terminate() == 0
    store = Keystore.open(tmp_path / "ks", PASSPHRASE, kdf=FAST_KDF)
    secrets = [s for group in secrets_of(store).values() for s in group]
    store.close()
    for text in outputs:
        assert leaks(text.encode(), secrets) == []


def test_the_default_address_is_the_wallets_default(tmp_path: Path, sock_dir: Path) -> None:
    # Both run in the same directory with no flags: unix:./data/wallet.sock.
    work = Path(str(sock_dir))
    svc = start_wallet(tmp_path / "ks", sock_dir, socket=work / "data" / "wallet.sock")
    try:
        svc.wait_ready()
        r = stemedb("wallet", "create", "agent", cwd=work)
        assert r.returncode == 0, r.stderr
        assert stemedb("wallet", "list", cwd=work).stdout.startswith("agent\t")
    finally:
        svc.kill()


def test_an_unsigned_cli_assertion_is_signed_by_the_wallet(tmp_path: Path, sock_dir: Path) -> None:
    """`stemedb --writer unix:WALLET assert ... --unsigned`: the agent holds no key; the store
    shows the assertion signed by the wallet's default key."""
    writer = start_writer(tmp_path / "wal")
    ingestor = start_ingestor(tmp_path / "wal", tmp_path / "db")
    wallet = start_wallet(tmp_path / "ks", sock_dir, writer=writer.listen)
    try:
        for svc in (writer, ingestor, wallet):
            svc.wait_ready()
        w = ["--wallet", wallet.listen]
        assert stemedb("wallet", *w, "create", "agent").returncode == 0
        public_key = stemedb("wallet", *w, "pubkey").stdout.strip()
        r = stemedb("--writer", wallet.listen, "--store", ingestor.listen, "--json",
                    "assert", "Q42", "name", "Douglas Adams", "--unsigned")  # fmt: skip
        assert r.returncode == 0, r.stderr
        receipt = json.loads(r.stdout)
        r = stemedb("--store", ingestor.listen, "--json", "get", receipt["hash"],
                    "--min-lsn", str(receipt["lsn"]))  # fmt: skip
        assert r.returncode == 0, r.stderr
        assert public_key in r.stdout and "Douglas Adams" in r.stdout
    finally:
        for svc in (wallet, ingestor, writer):
            svc.kill()


def test_the_cli_reaches_a_wallet_on_mutual_tls(tmp_path: Path, sock_dir: Path) -> None:
    ca = ThrowawayCA("wallet CA")
    cert, key = write_server_files(ca, tmp_path)
    (tmp_path / "ca.crt").write_bytes(ca.pem)
    client_key, client_cert = ca.issue("agent", server=False)
    (tmp_path / "agent.key").write_bytes(client_key)
    (tmp_path / "agent.crt").write_bytes(client_cert)
    port = free_port()
    svc = start_wallet(
        tmp_path / "ks", sock_dir, "--listen", f"127.0.0.1:{port}", "--tls-cert", str(cert),
        "--tls-key", str(key), "--tls-client-ca", str(tmp_path / "ca.crt"),
    )  # fmt: skip
    svc.listen = f"127.0.0.1:{port}"
    tls = ["--writer-tls-ca", str(tmp_path / "ca.crt")]
    mtls = [*tls, "--writer-tls-cert", str(tmp_path / "agent.crt"),
            "--writer-tls-key", str(tmp_path / "agent.key")]  # fmt: skip
    try:
        svc.wait_ready(credentials=grpc.ssl_channel_credentials(ca.pem, client_key, client_cert))
        r = stemedb(*mtls, "wallet", "--wallet", svc.listen, "create", "agent")
        assert r.returncode == 0, r.stderr
        r = stemedb(*tls, "wallet", "--wallet", svc.listen, "list")
        assert r.returncode == 3 and "cannot reach the wallet" in r.stderr, "no client cert"
    finally:
        svc.kill()


def test_every_writing_command_works_through_the_wallet(tmp_path: Path, sock_dir: Path) -> None:
    """assert, epoch, vote and import through the wallet's socket: no key of the agent's own
    (even with a key file at the default path, which a wallet write must not use), the
    wallet's default key or the one --wallet-key names signs, and a vote gets the wallet key's
    agent and sequence."""
    writer = start_writer(tmp_path / "wal")
    ingestor = start_ingestor(tmp_path / "wal", tmp_path / "db")
    wallet = start_wallet(tmp_path / "ks", sock_dir, writer=writer.listen)
    home = tmp_path / "home"
    home.mkdir()
    try:
        for svc in (writer, ingestor, wallet):
            svc.wait_ready()
        w = ["--wallet", wallet.listen]
        assert stemedb("wallet", *w, "create", "agent").returncode == 0
        assert stemedb("wallet", *w, "create", "second").returncode == 0
        agent = stemedb("wallet", *w, "pubkey", "agent").stdout.strip()
        second = stemedb("wallet", *w, "pubkey", "second").stdout.strip()
        env = {"HOME": str(home)}
        own = json.loads(_run(env, "--json", "keygen").stdout)["public_key"]  # ~/.stemedb/key.json
        via = ["--writer", wallet.listen, "--store", ingestor.listen, "--json"]

        def ok(*argv: str, extra: dict[str, str] | None = None) -> dict[str, object]:
            r = _run({**env, **(extra or {})}, *via, *argv)
            assert r.returncode == 0, r.stderr
            assert "UNSIGNED" not in r.stderr, "a wallet write is signed: no warning"
            body: dict[str, object] = json.loads(r.stdout)
            return body

        a = ok("assert", "Q42", "name", "Douglas Adams")
        e = ok("epoch", "Hitchhiker", "--wallet-key", "second")
        v = ok("vote", str(a["hash"]), "0.5")
        v2 = ok("vote", str(a["hash"]), "-0.25", extra={"STEMEDB_WALLET_KEY": "second"})
        lines = tmp_path / "records.jsonl"
        lines.write_text(
            json.dumps({"assertion": {"subject": "Q1", "predicate": "p", "object": {"text": "o"},
                        "confidence": 1.0, "source_hash": "05" * 32}}) + "\n"
            + json.dumps({"vote": {"assertion_hash": a["hash"], "weight": 1.0}}) + "\n"
        )  # fmt: skip
        imported = ok("import", str(lines), "--no-progress", "--wallet-key", "second")
        assert imported["ok"] is True and imported["records"] == 2
        last = int(str(imported["last_lsn"]))

        def stored(content_hash: object) -> dict[str, object]:
            r = _run(env, "--store", ingestor.listen, "--json", "get", str(content_hash),
                     "--min-lsn", str(last))  # fmt: skip
            assert r.returncode == 0, r.stderr
            record: dict[str, object] = json.loads(r.stdout)["record"]
            return record

        sa = stored(a["hash"])["assertion"]
        assert [s["public_key"] for s in sa["signatures"]] == [agent]  # type: ignore[index]
        se = stored(e["hash"])["epoch"]
        assert [s["public_key"] for s in se["signatures"]] == [second]  # type: ignore[index]
        sv = stored(v["hash"])["vote"]
        assert sv["agent_id"] == agent and sv["sequence"] == 1 and sv["weight"] == 0.5  # type: ignore[index]
        sv2 = stored(v2["hash"])["vote"]
        assert sv2["agent_id"] == second and sv2["sequence"] == 1  # type: ignore[index]
        r = _run(env, "--store", ingestor.listen, "--json", "scan", "V:", "--min-lsn", str(last))
        agents = [json.loads(x)["record"]["vote"]["agent_id"] for x in r.stdout.splitlines()]
        assert sorted(agents) == sorted([agent, second, second]) and own not in agents
        # The lattice counts them: agent +0.5 (its vote over its signature), second +1.0 (its
        # imported vote, sequence 2, over its earlier -0.25).
        r = _run(env, "--store", ingestor.listen, "--json", "tally", str(a["hash"]))
        tally = json.loads(r.stdout)["tally"]
        assert (tally["supporters"], tally["support"], tally["votes"]) == (2, 1.5, 2)
        # A locally signed vote passes the wallet as it is (--key: the agent's own key).
        mine = ok("vote", str(a["hash"]), "1", "--key", str(home / ".stemedb" / "key.json"))
        r = _run(env, "--store", ingestor.listen, "--json", "get", str(mine["hash"]),
                 "--min-lsn", str(mine["lsn"]))  # fmt: skip
        assert json.loads(r.stdout)["record"]["vote"]["agent_id"] == own
        # A key the wallet does not hold: its refusal, one line, exit 3 (a server error).
        r = _run(env, *via, "vote", str(a["hash"]), "1", "--wallet-key", "nobody")
        assert r.returncode == 3 and "NOT_FOUND" in r.stderr and "nobody" in r.stderr, r.stderr
    finally:
        for svc in (wallet, ingestor, writer):
            svc.kill()


def _run(env: dict[str, str], *argv: str) -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith("STEMEDB_")}
    return subprocess.run(
        [str(BIN / "stemedb"), *argv], capture_output=True, text=True, timeout=60,
        env={**base, **env},
    )  # fmt: skip
