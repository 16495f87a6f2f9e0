"""A writer, an ingestor and a gateway on loopback, as real processes, for the gateway's tests."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx

from stemedb.client import AgentKey, make_assertion, make_epoch, source_hash_of
from stemedb.jsonrecord import record_to_json
from stemedb.v1 import records_pb2
from tests.client.stack import Stack, running_stack
from tests.support import BIN, free_port, wait_until

GATEWAY = BIN / "stemedb-gateway"


class Gateway:
    """A stemedb-gateway process on a free port."""

    def __init__(self, log: Path, *flags: str, env: dict[str, str] | None = None) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = log
        self._log = open(log, "ab")  # noqa: SIM115 - closed in stop()
        clean = {k: v for k, v in os.environ.items() if not k.startswith("STEMEDB_")}
        self.proc = subprocess.Popen(
            [str(GATEWAY), "--listen", f"127.0.0.1:{self.port}", *flags],
            stdout=self._log, stderr=subprocess.STDOUT, start_new_session=True,
            env={**clean, **(env or {})},
        )  # fmt: skip

    def wait_listening(self, timeout_seconds: float = 30.0) -> None:
        def up() -> bool:
            if self.proc.poll() is not None:
                raise AssertionError(f"gateway exited {self.proc.returncode}:\n{self.log_text()}")
            try:
                httpx.get(self.url + "/openapi.json", timeout=1)
            except httpx.HTTPError:
                return False
            return True

        wait_until(up, timeout_seconds, "the gateway to listen")

    def log_text(self) -> str:
        return self.log_path.read_text(errors="replace")

    def terminate(self, timeout_seconds: float = 30.0) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        code = self.proc.wait(timeout=timeout_seconds)
        self._log.close()
        return code

    def kill(self) -> None:
        """SIGKILL the gateway and whatever it spawned (--workers): its own process group."""
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait(timeout=30)
        self._log.close()


@dataclass
class GatewayStack:
    stack: Stack
    gateway: Gateway

    @property
    def url(self) -> str:
        return self.gateway.url


@contextmanager
def running_gateway(root: Path, *gateway_flags: str) -> Iterator[GatewayStack]:
    """Writer + ingestor + gateway, each a process on loopback."""
    with running_stack(root) as stack:
        flags = ["--writer", stack.writer.listen, "--store", stack.ingestor.listen]
        gateway = Gateway(root / "gateway.log", *flags, *gateway_flags)
        try:
            gateway.wait_listening()
            yield GatewayStack(stack, gateway)
        finally:
            gateway.kill()


def signed_assertion_json(
    key: AgentKey,
    subject: str,
    predicate: str,
    text: str,
    confidence: float = 0.9,
    epoch: str = "",
) -> dict[str, object]:
    a = make_assertion(subject, predicate, text, source_hash=source_hash_of(f"src:{text}"),
                       confidence=confidence, epoch=bytes.fromhex(epoch))  # fmt: skip
    body: dict[str, object] = record_to_json(records_pb2.Record(assertion=key.sign_assertion(a)))[
        "assertion"
    ]
    return body


def vote_json(key: AgentKey, assertion_hash_hex: str, weight: float) -> dict[str, object]:
    vote = key.vote(bytes.fromhex(assertion_hash_hex), weight)
    body: dict[str, object] = record_to_json(records_pb2.Record(vote=vote))["vote"]
    return body


def signed_epoch_json(
    key: AgentKey, name: str, supersedes: str = "", how: str = "SUPERSESSION_TYPE_UNSPECIFIED"
) -> dict[str, object]:
    e = key.sign_epoch(make_epoch(name, f"the {name} epoch", supersedes=bytes.fromhex(supersedes),
                                  supersession_type=how))  # fmt: skip
    body: dict[str, object] = record_to_json(records_pb2.Record(epoch=e))["epoch"]
    return body
