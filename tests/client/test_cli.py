"""The stemedb CLI end to end: a real writer and ingestor, the console script as a subprocess."""

from __future__ import annotations

import json
import os
import stat
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from PIL import Image

from stemedb import canonical
from stemedb.client import AgentKey, make_assertion
from stemedb.jsonrecord import record_to_json
from stemedb.phash import visual_hash
from stemedb.v1 import records_pb2 as pb
from tests.client.stack import CLI, Stack, cli_env, run_cli, running_stack
from tests.support import free_port


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    with running_stack(tmp_path_factory.mktemp("cli")) as s:
        yield s


@pytest.fixture(scope="module")
def env(stack: Stack, tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    home = tmp_path_factory.mktemp("home")
    e = cli_env(home, {**stack.env, "STEMEDB_WAL_DIR": str(stack.wal_dir)})
    r = run_cli("keygen", env=e)
    assert r.returncode == 0, r.stderr
    return e


def _ok(*args: str, env: dict[str, str], input: str | None = None) -> str:
    r = run_cli(*args, env=env, input=input)
    assert r.returncode == 0, f"{args}: {r.returncode}\n{r.stderr}"
    return r.stdout


def _receipt(out: str) -> tuple[str, int]:
    digest, lsn = out.split()
    assert lsn.startswith("lsn=")
    return digest, int(lsn[4:])


def test_keygen_writes_a_0600_key_and_refuses_to_overwrite(tmp_path: Path) -> None:
    e = cli_env(tmp_path)
    out = json.loads(_ok("--json", "keygen", env=e))
    path = tmp_path / ".stemedb" / "key.json"
    assert out["path"] == str(path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert AgentKey.load(path).public_key_hex == out["public_key"]
    again = run_cli("keygen", env=e)
    assert again.returncode == 2 and again.stderr.count("\n") == 1
    assert "already exists" in again.stderr
    custom = tmp_path / "other.json"
    _ok("keygen", "--out", str(custom), env=e)
    assert stat.S_IMODE(custom.stat().st_mode) == 0o600


def test_assert_get_vote_epoch_scan_subject(env: dict[str, str], tmp_path: Path) -> None:
    png = tmp_path / "q42.png"
    img = Image.new("RGB", (64, 64))
    img.putdata([(x * 4, y * 4, (x * y) % 256) for y in range(64) for x in range(64)])
    img.save(png)
    epoch_hash, _ = _receipt(_ok("epoch", "H2G2", "--description", "the guide", env=env))
    h, lsn = _receipt(
        _ok(
            "assert",
            "cliQ42",
            "name",
            "Douglas Adams",
            "--confidence",
            "0.8",
            "--source",
            "https://www.wikidata.org/wiki/Q42",
            "--image",
            str(png),
            "--epoch",
            epoch_hash,
            env=env,
        )
    )
    record = json.loads(_ok("get", h, "--min-lsn", str(lsn), env=env))
    a = record["assertion"]
    assert a["subject"] == "cliQ42" and a["object"] == {"text": "Douglas Adams"}
    assert a["confidence"] == 0.8 and a["epoch"] == epoch_hash
    assert a["visual_hash"] == visual_hash(png.read_bytes()).to_bytes(8, "big").hex()
    assert len(a["signatures"]) == 1  # the default key signed it
    assert canonical.record_hash(pb.Record(assertion=_assertion_of(record))).hex() == h

    n, _ = _receipt(_ok("assert", "cliQ42", "born", "1952", "--number", "--unsigned", env=env))
    f, _ = _receipt(_ok("assert", "cliQ420", "fictional", "no", "--flag", env=env))
    v, vlsn = _receipt(_ok("vote", h, "-0.5", env=env))
    sup, elsn = _receipt(
        _ok("epoch", "H2G2 v2", "--supersedes", epoch_hash, "--type", "refinement", env=env)
    )

    got = json.loads(_ok("--json", "get", v, "--min-lsn", str(elsn), env=env))
    assert got["key"] == f"V:{v}" and got["record"]["vote"]["weight"] == -0.5
    got = json.loads(_ok("get", f"E:{sup}", "--json", env=env))
    assert got["record"]["epoch"]["supersession_type"] == "SUPERSESSION_TYPE_REFINEMENT"

    # scan S:cliQ42 is a raw prefix: it also matches subject cliQ420 (documented)
    lines = _ok("scan", "S:cliQ42", env=env).splitlines()
    assert len(lines) == 3
    assert any(line.startswith(f"S:cliQ42\\x00{h}\t") for line in lines)
    assert any(line.startswith("S:cliQ420\\x00") for line in lines)
    index_key = lines[0].split("\t")[0]  # printed with \x00: can be pasted into get
    assert json.loads(_ok("--json", "get", index_key, env=env))["value_hex"] == lines[0][-64:]
    rows = [
        json.loads(x)
        for x in _ok("--json", "scan", "H:", "--page-size", "1", env=env).split("\n")
        if x
    ]
    assert {r["key"] for r in rows} >= {f"H:{h}", f"H:{n}", f"H:{f}"}
    assert all("record" in r for r in rows)
    assert len(_ok("scan", "H:", "--limit", "2", env=env).splitlines()) == 2

    # subject is exact: no cliQ420
    subject = [json.loads(x) for x in _ok("--json", "subject", "cliQ42", env=env).splitlines()]
    assert {s["hash"] for s in subject} == {h, n}
    votes = _ok("votes", h, env=env).splitlines()
    assert len(votes) == 1 and votes[0].startswith(v)

    tail = _ok("--json", "tail", "--from-lsn", str(vlsn), "--no-follow", env=env).splitlines()
    assert [json.loads(x)["kind"] for x in tail] == ["vote", "epoch"]
    assert json.loads(tail[0])["hash"] == v


def _assertion_of(record: dict[str, object]) -> pb.Assertion:
    from stemedb.jsonrecord import record_from_json

    return record_from_json(record).assertion


def test_assert_without_a_key_warns_it_writes_unsigned(stack: Stack, tmp_path: Path) -> None:
    e = cli_env(tmp_path, stack.env)  # a HOME with no key file
    r = run_cli("assert", "Q42", "name", "Douglas Adams", env=e)
    assert r.returncode == 0, r.stderr
    # stdout is the receipt only, the README's hash: scripts that read it are unaffected
    digest, _ = _receipt(r.stdout)
    assert digest == "7d43129b0574ea9ac8c761b7265e9214be39c71207b47dc25b16f18654e81fb1"
    assert "UNSIGNED" in r.stderr and "stemedb keygen" in r.stderr
    assert str(tmp_path / ".stemedb" / "key.json") in r.stderr
    r = run_cli("epoch", "unsigned-epoch", env=e)
    assert r.returncode == 0 and "UNSIGNED" in r.stderr
    # said on purpose: no warning
    r = run_cli("assert", "Q42", "name", "Douglas Adams", "--unsigned", env=e)
    assert r.returncode == 0 and r.stderr == ""
    # with a key: signed, no warning
    _ok("keygen", env=e)
    r = run_cli("assert", "Q42", "name", "Douglas Adams", env=e)
    assert r.returncode == 0 and r.stderr == ""
    signed, lsn = _receipt(r.stdout)
    got = json.loads(_ok("--json", "get", signed, "--min-lsn", str(lsn), env=e))
    assert len(got["record"]["assertion"]["signatures"]) == 1


def test_control_and_bidi_characters_are_printed_escaped(env: dict[str, str]) -> None:
    evil = "red\x1b[31m\u202eevil\x07\x85"
    h, lsn = _receipt(_ok("assert", "escQ", "note", evil, "--unsigned", env=env))
    raw = [chr(c) for c in (0x00, 0x07, 0x1B, 0x85, 0x202E)]
    outputs = [
        _ok("get", h, "--min-lsn", str(lsn), env=env),
        _ok("--json", "get", h, env=env),
        _ok("scan", "S:escQ", env=env),
        _ok("--json", "scan", "H:" + h, env=env),
        _ok("subject", "escQ", env=env),
    ]
    for text in outputs:
        assert not any(ch in text for ch in raw), repr(text)
    assert "\\u001b[31m\\u202eevil\\u0007\\u0085" in outputs[0]
    assert json.loads(outputs[1])["record"]["assertion"]["object"]["text"] == evil
    assert outputs[2].startswith("S:escQ\\x00" + h)
    # a key printed by scan pastes back into get
    assert json.loads(_ok("--json", "get", outputs[2].split("\t")[0], env=env))["found"]


def test_get_missing_is_exit_1(env: dict[str, str]) -> None:
    r = run_cli("get", "ab" * 32, env=env)
    assert r.returncode == 1
    assert r.stdout == ""
    assert r.stderr.count("\n") == 1 and "not found" in r.stderr
    r = run_cli("--json", "get", "S:nothing\\x00" + "00" * 32, env=env)
    assert r.returncode == 1 and json.loads(r.stdout)["found"] is False


def test_invalid_input_is_exit_2_with_the_field(env: dict[str, str]) -> None:
    cases = [
        (["assert", "Q", "p", "o", "--confidence", "1.5"], "assertion.confidence"),
        (["assert", "Q", "p", "abc", "--number"], "assertion.object.number"),
        (["assert", "Q", "p", "o", "--source-hash", "abcd"], "assertion.source_hash"),
        (["vote", "nothex", "0.5"], "vote.assertion_hash"),
        (["vote", "ab" * 32, "2"], "vote.weight"),
        (["epoch", "E", "--supersedes", "ab" * 32], "--type"),
        (["assert", "Q", "p"], "required"),
        (["nosuchcommand"], "invalid choice"),
    ]
    for args, needle in cases:
        r = run_cli(*args, env=env)
        assert r.returncode == 2, (args, r.stderr)
        assert r.stderr.count("\n") == 1 and needle in r.stderr, (args, r.stderr)
        assert "Traceback" not in r.stderr


def test_unreachable_server_is_exit_3_one_line(tmp_path: Path) -> None:
    dead = f"127.0.0.1:{free_port()}"
    e = cli_env(tmp_path)
    for args in (["assert", "Q42", "name", "x"], ["get", "H:" + "00" * 32]):
        r = run_cli("--writer", dead, "--store", dead, "--timeout", "2", *args, env=e)
        assert r.returncode == 3, r.stderr
        assert r.stderr.count("\n") == 1 and "cannot reach" in r.stderr and dead in r.stderr
        assert ": connection refused (is it running? `make run` starts" in r.stderr, r.stderr
        assert "Traceback" not in r.stderr


def _jsonl(count: int, prefix: str) -> str:
    key = AgentKey.from_seed(b"\x31" * 32)
    lines = []
    for i in range(count):
        a = make_assertion(f"{prefix}{i % 50}", "n", i, source_hash=b"\x07" * 32, confidence=0.5)
        if i % 10 == 0:
            key.sign_assertion(a)
        lines.append(json.dumps(record_to_json(pb.Record(assertion=a))))
    return "\n".join(lines) + "\n"


def test_import_2000_lines_with_summary(env: dict[str, str], tmp_path: Path) -> None:
    path = tmp_path / "records.jsonl"
    path.write_text(_jsonl(2000, "imp"))
    r = run_cli("import", str(path), env=env)
    assert r.returncode == 0, r.stderr
    assert "imported 2,000 records in 2 batches" in r.stdout and "records/s" in r.stdout
    assert "\r" not in r.stderr  # stderr is not a terminal here: plain lines, no bar
    last = r.stdout.split("..")[1].rstrip(")\n")
    subject = _ok("subject", "imp7", "--min-lsn", last, env=env).splitlines()
    assert len(subject) == 40

    r = run_cli("--json", "import", str(path), "--batch-size", "300", "--no-progress", env=env)
    summary = json.loads(r.stdout)
    assert r.returncode == 0 and r.stderr == ""
    assert summary["records"] == 2000 and summary["batches"] == 7 and summary["ok"]
    assert summary["last_lsn"] - summary["first_lsn"] == 1999
    assert summary["records_per_second"] > 0


def _lsn_now(env: dict[str, str]) -> int:
    return _receipt(_ok("assert", "probe", "p", "o", "--unsigned", env=env))[1]


def test_import_bad_line_sends_nothing_of_its_chunk(env: dict[str, str], tmp_path: Path) -> None:
    lines = _jsonl(20, "bad").splitlines()
    broken = json.loads(lines[6])
    broken["assertion"]["confidence"] = 2.0
    lines[6] = json.dumps(broken)
    lines[12] = "{not json"
    path = tmp_path / "bad.jsonl"
    path.write_text("\n".join(lines) + "\n")

    before = _lsn_now(env)
    r = run_cli("import", str(path), env=env)
    assert r.returncode == 2
    assert r.stderr.strip().splitlines()[0] == (
        "stemedb: error: line 7: record.assertion.confidence: must be in [0, 1], got 2.0"
    )
    assert "imported 0 records" in r.stdout
    assert _lsn_now(env) == before + 1  # nothing was appended in between

    r = run_cli("--json", "import", str(path), "--keep-going", "--no-progress", env=env)
    assert r.returncode == 2
    errors = r.stderr.strip().splitlines()
    assert [e.split(":")[1].strip() for e in errors] == ["error", "error"]
    assert "line 7:" in errors[0] and "line 13: not valid JSON" in errors[1]
    summary = json.loads(r.stdout)
    assert summary["records"] == 18 and summary["skipped_lines"] == 2


def test_import_bad_signature_names_the_line(env: dict[str, str], tmp_path: Path) -> None:
    a = make_assertion("sig", "p", "o", source_hash=b"\x01" * 32)
    a.signatures.append(pb.SignatureEntry(public_key=b"\x01" * 32, signature=b"\x02" * 64))
    path = tmp_path / "sig.jsonl"
    path.write_text("\n" + json.dumps(record_to_json(pb.Record(assertion=a))) + "\n")
    r = run_cli("import", str(path), env=env)
    assert r.returncode == 2
    assert "line 2: record.assertion.signatures[0].signature" in r.stderr


def test_wal_commands_are_wired(env: dict[str, str], stack: Stack) -> None:
    out = _ok("wal", "verify", str(stack.wal_dir), env=env)
    assert "ok" in out
    dump = _ok("wal", "dump", str(stack.wal_dir), "--from", "1", env=env).splitlines()
    assert json.loads(dump[0])["lsn"] == 1


def test_tail_follows_new_records(env: dict[str, str]) -> None:
    # Without --from-lsn, tail starts after the current watermark: nothing old is printed.
    assert _ok("tail", "--no-follow", env=env) == ""
    start = _lsn_now(env) + 1
    proc = subprocess.Popen(
        [str(CLI), "tail", "--from-lsn", str(start), "--limit", "2", "--json"], env=env,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        h1, _ = _receipt(_ok("assert", "tailQ", "p", "1", "--unsigned", env=env))
        h2, _ = _receipt(_ok("assert", "tailQ", "p", "2", "--unsigned", env=env))
        out, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0, err
    assert [json.loads(x)["hash"] for x in out.splitlines()] == [h1, h2]


def test_global_options_after_the_command(env: dict[str, str]) -> None:
    dead = f"127.0.0.1:{free_port()}"
    e = {**env, "STEMEDB_WRITER": dead}
    r = run_cli("assert", "Q", "p", "o", "--writer", env["STEMEDB_WRITER"], "--json", env=e)
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["kind"] == "assertion"
    assert os.environ.get("STEMEDB_WRITER") != dead


def test_get_names_what_is_wrong_with_the_key(env: dict[str, str], tmp_path: Path) -> None:
    dead = f"127.0.0.1:{free_port()}"
    prefixes = "(H:, V:, E:, S:, VA:, HS:, MV:)"
    # No prefix at all: refused before any server is asked (the store is unreachable here).
    r = run_cli("--store", dead, "get", "nothex", env=cli_env(tmp_path))
    assert r.returncode == 2 and r.stderr.count("\n") == 1, r.stderr
    assert f"'nothex' is neither a 64-hex hash nor a key with a known prefix {prefixes}" in (
        r.stderr
    )
    r = run_cli("--store", dead, "get", "abc123", env=cli_env(tmp_path))
    assert r.returncode == 2 and "'abc123' has 6 hex digits; a record hash has 64" in r.stderr
    # A prefix the CLI does not know is still asked for; missing, the message says why.
    r = run_cli("get", "ZZ:thing", env=env)
    assert r.returncode == 1 and r.stderr.count("\n") == 1, r.stderr
    assert "not found: 'ZZ:thing' is neither a 64-hex hash nor a key with a known prefix" in (
        r.stderr
    )
    # A known prefix that is missing is plainly not found.
    r = run_cli("get", "S:nobody", env=env)
    assert r.returncode == 1 and r.stderr.strip() == "stemedb: error: not found: S:nobody"


def _text_file(tmp_path: Path) -> Path:
    path = tmp_path / "notes.txt"
    path.write_text("not an image\n")
    return path


def test_every_bad_flag_value_and_file_is_one_line_naming_it(tmp_path: Path) -> None:
    dead = f"127.0.0.1:{free_port()}"
    e = cli_env(tmp_path)
    h = "ab" * 32
    missing = str(tmp_path / "missing.pem")
    cases: list[tuple[list[str], dict[str, str], str]] = [
        (["get", h, "--min-lsn", "-1"], {}, "argument --min-lsn: must not be negative, got -1"),
        (["get", h, "--min-lsn", "abc"], {}, "argument --min-lsn: 'abc' is not a whole number"),
        (["scan", "S:", "--page-size", "-5"], {}, "argument --page-size: must not be negative"),
        (["subject", "Q", "--limit", "-2"], {}, "argument --limit: must not be negative"),
        (["tail", "--from-lsn", "-3"], {}, "argument --from-lsn: must not be negative"),
        (["--writer", "nonsense", "assert", "Q", "n", "x"], {},
         "--writer: 'nonsense' is not HOST:PORT"),
        (["--store", "h:99999", "get", h], {}, "--store: 'h:99999': port 99999 is out of range"),
        (["get", h], {"STEMEDB_STORE": "bad"}, "--store: 'bad' is not HOST:PORT"),
        (["get", h], {"STEMEDB_TIMEOUT": "abc"},
         "STEMEDB_TIMEOUT) must be a positive number of seconds, got 'abc'"),
        (["--tls-ca", missing, "get", h], {}, f"--tls-ca {missing}: no such file"),
        (["--store-tls-cert", missing, "--store-tls-key", missing, "get", h], {},
         f"--store-tls-cert {missing}: no such file"),
        (["assert", "Q", "n", "x", "--image", str(_text_file(tmp_path))], {},
         "--image " + str(tmp_path / "notes.txt") + ": not a readable PNG or JPEG image"),
        (["assert", "Q", "n", "x", "--image", str(tmp_path)], {}, "is a directory"),
        (["votes", "nothex"], {}, "ASSERTION_HASH: 'nothex' is not a 64-hex hash"),
        (["wal", "verify", str(tmp_path / "nowal")], {}, "nowal: no such directory"),
        (["import", str(tmp_path / "none.jsonl")], {}, "none.jsonl: No such file or directory"),
    ]  # fmt: skip
    for args, extra_env, needle in cases:
        # Dead addresses: every one of these is refused before any server is asked.
        targets = ["--writer", dead] + ([] if "STEMEDB_STORE" in extra_env else ["--store", dead])
        r = run_cli(*targets, *args, env={**e, **extra_env})
        assert r.returncode == 2, (args, r.returncode, r.stderr)
        assert r.stderr.count("\n") == 1 and needle in r.stderr, (args, r.stderr)
        assert "Traceback" not in r.stderr and r.stdout == "", (args, r.stdout)
