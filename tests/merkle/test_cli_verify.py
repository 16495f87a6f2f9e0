"""``stemedb verify`` and ``stemedb witness`` against real processes: a record proven in the
signed log, the witness following checkpoints and failing loudly on a shrink, a fork (another
log signed with the same key) and a rewritten record."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import grpc
import pytest

from stemedb import note
from stemedb.client import _cli
from stemedb.client._cli_verify import EXIT_VERIFICATION_FAILED, register
from stemedb.v1 import writer_pb2 as wpb
from stemedb.v1 import writer_pb2_grpc
from stemedb.wal import WalReader
from stemedb.wal._encoder import encode_record
from tests.support import Service, start_ingestor, start_writer, wait_until
from tests.writer.records import assertion


def _run(store: str, *argv: str) -> int:
    """The CLI's own parser and error handling, with this module's commands registered."""
    parser = _cli._Parser(prog="stemedb")
    _cli._global_options(parser, top=True)
    common = _cli._Parser(add_help=False)
    _cli._global_options(common, top=False)
    commands = parser.add_subparsers(dest="command", required=True)

    def add(name: str, help: str) -> argparse.ArgumentParser:
        sub: argparse.ArgumentParser = commands.add_parser(name, help=help, parents=[common])
        return sub

    register(add)
    return _cli.run(parser.parse_args(["--store", store, *argv]))


def _append(writer: Service, subjects: list[str]) -> list[bytes]:
    with grpc.insecure_channel(writer.listen) as channel:
        stub = writer_pb2_grpc.WriterServiceStub(channel)
        return [
            stub.AppendAssertion(
                wpb.AppendAssertionRequest(assertion=assertion(s, "Douglas Adams")), timeout=10
            ).receipt.hash
            for s in subjects
        ]


def _served(ingestor: Service, wal_dir: Path, size: int) -> None:
    from stemedb.v1 import log_pb2, log_pb2_grpc

    verifier = note.Verifier.parse((wal_dir / "log.pub").read_text().strip())

    def reached() -> bool:
        with grpc.insecure_channel(ingestor.listen) as channel:
            stub = log_pb2_grpc.LogServiceStub(channel)
            try:
                resp = stub.GetCheckpoint(log_pb2.GetCheckpointRequest(), timeout=5)
            except grpc.RpcError:
                return False
        return note.open_checkpoint(resp.checkpoint, verifier).tree_size >= size

    wait_until(reached, 60, f"a served checkpoint of size >= {size}")


def _pair(tmp: Path, name: str) -> tuple[Service, Service, Path]:
    wal_dir = tmp / name / "wal"
    (tmp / name).mkdir(exist_ok=True)
    writer = start_writer(wal_dir)
    writer.wait_ready()
    ingestor = start_ingestor(wal_dir, tmp / name / "db")
    ingestor.wait_ready()
    return writer, ingestor, wal_dir


def test_verify_and_witness(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    writer, ingestor, wal_dir = _pair(tmp_path, "a")
    key = str(wal_dir / "log.pub")
    state = tmp_path / "witness.json"
    try:
        hashes = _append(writer, ["Q1", "Q2", "Q1"])  # Q1 twice: one hash, two LSNs
        _served(ingestor, wal_dir, 3)
        assert _run(ingestor.listen, "verify", hashes[0].hex(), "--log-key", key) == 0
        said = capsys.readouterr().out
        assert "LSN 1 is in the signed log of size 3" in said
        assert "LSN 3 is in the signed log of size 3" in said
        assert _run(ingestor.listen, "verify", "ab" * 32, "--log-key", key) == 1
        assert _run(ingestor.listen, "verify", "zz", "--log-key", key) == 2

        # Another log's key: refused loudly.
        other = note.generate_signer("stemedb.local/log").verifier.encode()
        code = _run(ingestor.listen, "verify", hashes[0].hex(), "--log-key", other)
        assert code == EXIT_VERIFICATION_FAILED
        assert "VERIFICATION FAILED" in capsys.readouterr().err

        assert _run(ingestor.listen, "witness", "--state", str(state), "--log-key", key,
                    "--once") == 0  # fmt: skip
        first = json.loads(state.read_text())["checkpoint"]
        _append(writer, ["Q3", "Q4"])
        _served(ingestor, wal_dir, 5)
        assert _run(ingestor.listen, "witness", "--state", str(state), "--log-key", key,
                    "--once") == 0  # fmt: skip
        assert "trusted the log at size 5" in capsys.readouterr().out
        second = json.loads(state.read_text())["checkpoint"]
        assert first != second

        # A shrink: the witness trusts size 5, a store serving size 3 is refused.
        writer2, ingestor2, wal2 = _pair(tmp_path, "b")
        try:
            # A fork: a second log signed with the same key, of the same records but one.
            _append(writer2, ["Q1", "Q2", "Q9", "Q3", "Q4", "Q5"])
        finally:
            writer2.terminate()
            ingestor2.terminate()
        (wal2 / "log.key").write_bytes((wal_dir / "log.key").read_bytes())
        for name in ("CHECKPOINT", "TREE", "log.pub"):
            (wal2 / name).unlink()
        writer2 = start_writer(wal2)  # rehashes its log once and signs it with the first key
        writer2.wait_ready()
        ingestor2 = start_ingestor(wal2, tmp_path / "b" / "db2")
        try:
            ingestor2.wait_ready()
            _served(ingestor2, wal2, 6)
            code = _run(ingestor2.listen, "witness", "--state", str(state), "--log-key", key,
                        "--once")  # fmt: skip
            assert code == EXIT_VERIFICATION_FAILED
            assert "fork or a rewritten history" in capsys.readouterr().err
            assert json.loads(state.read_text())["checkpoint"] == second  # kept
        finally:
            writer2.kill()
            ingestor2.kill()
    finally:
        writer.terminate()
        ingestor.terminate()

    # A rewritten record: rebuilt from the tampered WAL, the store cannot serve a checkpoint
    # matching the signed one; verify and witness both fail loudly.
    with WalReader(wal_dir, from_lsn=2) as reader:
        rec = reader.read_available(1)[0]
    tampered = rec.payload.replace(b"Douglas Adams", b"Douglas Adamz")
    with open(rec.segment, "r+b") as f:
        f.seek(rec.offset)
        f.write(encode_record(rec.lsn, rec.record_type, rec.timestamp_ns, tampered))
    rebuilt = start_ingestor(wal_dir, tmp_path / "a" / "db-rebuilt")
    try:
        rebuilt.wait_ready()
        wait_until(
            lambda: _run(rebuilt.listen, "witness", "--state", str(state), "--log-key", key,
                         "--once") == EXIT_VERIFICATION_FAILED,
            60, "the witness to refuse the rebuilt log",
        )  # fmt: skip
        assert "does not match what the writer signed" in capsys.readouterr().err
        code = _run(rebuilt.listen, "verify", hashes[1].hex(), "--log-key", key)
        assert code == EXIT_VERIFICATION_FAILED
    finally:
        rebuilt.kill()


def test_witness_refuses_a_smaller_log(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    writer, ingestor, wal_dir = _pair(tmp_path, "a")
    key = str(wal_dir / "log.pub")
    state = tmp_path / "witness.json"
    try:
        _append(writer, ["Q1", "Q2"])
        _served(ingestor, wal_dir, 2)
        signer = note.load_or_create_signer(wal_dir / "log.key", "stemedb.local/log")
        bigger = note.Checkpoint("stemedb.local/log", 9, b"\x01" * 32).sign(signer)
        state.write_text(json.dumps({"checkpoint": bigger}))
        code = _run(ingestor.listen, "witness", "--state", str(state), "--log-key", key, "--once")
        assert code == EXIT_VERIFICATION_FAILED
        assert "the log shrank" in capsys.readouterr().err
    finally:
        writer.kill()
        ingestor.kill()
