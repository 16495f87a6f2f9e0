"""A writer front-end process (``--frontend-processes N``): gRPC in, ready WAL entries out.

The WAL owner (``_owner.py``) starts each front end as ``python -m stemedb.writer._frontend``
and writes its :class:`FrontendSpec` (the writer's config, the owner's Unix socket, a token) on
its stdin. The front end serves WriterService, health, reflection and MeterService on
``--listen`` with SO_REUSEPORT beside its siblings, runs the same admission pipeline as a
single-process writer (``WriterServicer``: budget, decoding, validation, hashing, policy) and
verifies signatures, then hands the WAL payloads to the owner: every request of one event-loop
turn goes in one APPEND frame (``_frames.py``), and each call is answered from the owner's
RESULT, after the group commit is durable.

If the owner dies, the kernel kills the front end (``PR_SET_PDEATHSIG``), and the end of the
socket makes it exit too: nothing is answered that the owner did not make durable.
"""

from __future__ import annotations

import asyncio
import ctypes
import json
import logging
import os
import pickle
import signal
import sys
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass

from google.protobuf.message import DecodeError
from prometheus_client import CollectorRegistry

from stemedb import validation
from stemedb.errors import StemeError
from stemedb.merkle import leaf_suffix
from stemedb.runtime import ServiceShell, decoding_generic_handler, log_event, run_service
from stemedb.runtime import stop_signal as _stop_signal
from stemedb.v1 import meter_pb2, writer_pb2
from stemedb.walrecord import JobEnvelope
from stemedb.writer import _frames as fr
from stemedb.writer._admission import AdmissionBounds, Admitted, SignaturePolicy
from stemedb.writer._config import WriterConfig
from stemedb.writer._core import Appender, OwnerStatus, Receipt, wal_entries
from stemedb.writer._meter import MeterAsk
from stemedb.writer._meter_service import MeterServicer
from stemedb.writer._metrics import WriterMetrics
from stemedb.writer._service import WriterServicer
from stemedb.writer._verify import SignatureVerifier

__all__ = [
    "FORWARDED_FAMILIES",
    "ForwardingWriter",
    "FrontendSpec",
    "OwnerLink",
    "main",
    "metrics_snapshot",
]

_log = logging.getLogger("stemedb.writer")
_DESCRIPTOR = writer_pb2.DESCRIPTOR.services_by_name["WriterService"]
_METER_DESCRIPTOR = meter_pb2.DESCRIPTOR.services_by_name["MeterService"]
_PR_SET_PDEATHSIG = 1
# The families a front end counts and the owner's /metrics sums over front ends (the owner
# counts the WAL's own: group commits, fsyncs, LSNs, the volume, the log tree).
FORWARDED_FAMILIES = frozenset({
    "grpc_server_started", "grpc_server_handled", "grpc_server_handling_seconds",
    "stemedb_writer_records", "stemedb_writer_admission_refused",
    "stemedb_writer_inflight_requests", "stemedb_writer_inflight_records",
    "stemedb_writer_inflight_bytes", "stemedb_writer_signatures_verified",
})  # fmt: skip
# Exit code of a front end whose owner is gone (the owner restarts front ends only while it
# runs, so nobody acts on it; it tells a reader of the logs why).
OWNER_GONE_EXIT = 3


@dataclass(frozen=True)
class FrontendSpec:
    """What the owner tells a front end on its stdin (pickled; the owner is its parent)."""

    cfg: WriterConfig
    socket_path: str
    token: bytes
    index: int
    owner_pid: int
    bounds: AdmissionBounds  # this front end's share of the writer's in-flight bounds


def metrics_snapshot(registry: CollectorRegistry) -> bytes:
    """The forwarded families of ``registry`` as JSON, for the owner to sum."""
    families = []
    for metric in registry.collect():
        if metric.name not in FORWARDED_FAMILIES:
            continue
        families.append({
            "name": metric.name, "documentation": metric.documentation, "type": metric.type,
            "unit": metric.unit,
            "samples": [[s.name, s.labels, s.value] for s in metric.samples],
        })  # fmt: skip
    return json.dumps(families).encode()


class OwnerLink:
    """The front end's end of the owner's socket: batched APPEND frames out, RESULTs in."""

    def __init__(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
        registry: CollectorRegistry, on_wal_fatal: Callable[[bool], Awaitable[None]],
    ) -> None:  # fmt: skip
        self._reader = reader
        self._writer = writer
        self._registry = registry
        self._on_wal_fatal = on_wal_fatal
        self._pending: dict[int, asyncio.Future[fr.Outcome]] = {}
        self._queued: list[fr.AppendRequest] = []
        self._next_id = 1
        self._frames_in_flight = 0
        self._budgets: dict[int, asyncio.Future[meter_pb2.GetBudgetResponse]] = {}
        self.frames_sent = 0

    async def budget(self, agent: str) -> meter_pb2.GetBudgetResponse:
        """GetBudget, answered by the owner's meter."""
        ask_id = self._next_id
        self._next_id += 1
        future: asyncio.Future[meter_pb2.GetBudgetResponse] = (
            asyncio.get_running_loop().create_future()
        )
        self._budgets[ask_id] = future
        body = ask_id.to_bytes(8, "little") + agent.encode("utf-8")
        self._writer.write(fr.encode_frame(fr.BUDGET_ASK, body))
        try:
            return await future
        finally:
            self._budgets.pop(ask_id, None)

    def send(self, frame: bytes) -> None:
        self._writer.write(frame)

    async def submit(
        self, entries: Sequence[tuple[int, bytes]], suffixes: Sequence[bytes],
        meter: MeterAsk | None = None,
    ) -> fr.Outcome:  # fmt: skip
        """Forward one request's records; its outcome once the owner answers. Requests of one
        loop turn share one frame (sent by ``_flush``, scheduled by the turn's first)."""
        loop = asyncio.get_running_loop()
        request_id = self._next_id
        self._next_id += 1
        future: asyncio.Future[fr.Outcome] = loop.create_future()
        self._pending[request_id] = future
        self._queued.append(fr.AppendRequest(request_id, entries, suffixes, meter))
        if len(self._queued) == 1 and self._frames_in_flight < fr.FRAMES_IN_FLIGHT_MAX:
            loop.call_soon(self._flush)
        try:
            return await future
        finally:
            # A cancelled call (its RPC ended) forgets its answer; the records may still
            # commit, which is safe since a record is its hash (as in the WAL's own path).
            self._pending.pop(request_id, None)

    def _flush(self) -> None:
        """Send the queued requests in as few frames as the bounds allow, while fewer than
        ``FRAMES_IN_FLIGHT_MAX`` frames await their RESULT; the rest wait for the next RESULT."""
        queued = self._queued
        start = 0
        while start < len(queued) and self._frames_in_flight < fr.FRAMES_IN_FLIGHT_MAX:
            end, records, size = start, 0, 0
            while end < len(queued):
                n, b = len(queued[end].entries), fr.append_size(queued[end])
                if end > start and (
                    records + n > fr.FRAME_RECORDS_MAX or size + b > fr.FRAME_BYTES_MAX
                ):
                    break
                records += n
                size += b
                end += 1
            self._writer.write(fr.encode_append(queued[start:end]))
            self._frames_in_flight += 1
            self.frames_sent += 1
            start = end
        self._queued = queued[start:]

    async def run(self) -> str:
        """Read the owner's frames until the socket ends; the reason it ended."""
        while True:
            try:
                got = await fr.read_frame(self._reader)
            except (fr.FrameError, OSError) as exc:
                return str(exc)
            if got is None:
                return "the owner closed the socket"
            header, body = got
            if header.kind == fr.RESULT:
                try:
                    outcomes = fr.decode_result(body)
                except fr.FrameError as exc:
                    return str(exc)
                for outcome in outcomes:
                    future = self._pending.get(outcome.request_id)
                    if future is not None and not future.done():
                        future.set_result(outcome)
                self._frames_in_flight = max(0, self._frames_in_flight - 1)
                if self._queued:
                    self._flush()  # what queued up meanwhile: one frame, one group commit
            elif header.kind == fr.STATE:
                # Awaited before the next frame: health is NOT_SERVING before the RESULT that
                # carries the failure is answered (the owner writes STATE first).
                await self._on_wal_fatal(body[:1] == b"\x01")
                self._writer.write(fr.encode_frame(fr.STATE_SEEN, b""))
            elif header.kind == fr.BUDGET:
                waiting = self._budgets.get(int.from_bytes(body[:8], "little"))
                if waiting is not None and not waiting.done():
                    try:
                        waiting.set_result(meter_pb2.GetBudgetResponse.FromString(body[8:]))
                    except DecodeError:
                        return "BUDGET: the owner's answer does not decode"
            elif header.kind == fr.METRICS_ASK:
                snapshot = metrics_snapshot(self._registry)
                self._writer.write(fr.encode_frame(fr.METRICS, body[:8] + snapshot))
            else:
                return f"unexpected frame kind {header.kind} from the owner"


class ForwardingWriter(Appender):
    """The servicer's appender in a front end: verify here, commit in the owner."""

    def __init__(self, verifier: SignatureVerifier) -> None:
        super().__init__(verifier)
        self.link: OwnerLink | None = None

    async def append(
        self,
        admitted: Sequence[Admitted],
        timeout_seconds: float | None = None,
        job: JobEnvelope | None = None,
        meter: MeterAsk | None = None,
    ) -> list[Receipt]:
        await self.verify(admitted)
        if self.link is None:
            raise RuntimeError("the front end appends only once it is linked to the owner")
        outcome = await self.link.submit(
            wal_entries(admitted, job),
            [leaf_suffix(a.record, a.canonical) for a in admitted],
            meter,
        )
        if outcome.code != 0:
            raise OwnerStatus(outcome.code, outcome.message, outcome.details)
        if len(outcome.lsns) != len(admitted):
            raise StemeError(
                f"the WAL owner answered {len(outcome.lsns)} LSNs for {len(admitted)} records"
            )
        return [
            Receipt(a.content_hash, lsn, outcome.tree_size)
            for a, lsn in zip(admitted, outcome.lsns, strict=True)
        ]


def _die_with_parent(owner_pid: int) -> None:
    """SIGKILL this process when the owner dies (Linux), and exit if it is already gone."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    except (OSError, AttributeError):
        pass  # not Linux: the end of the owner's socket ends the front end instead
    if os.getppid() != owner_pid:
        os._exit(OWNER_GONE_EXIT)


async def serve_frontend(spec: FrontendSpec) -> int:
    cfg = spec.cfg
    stop = _stop_signal()
    draining = False
    registry = CollectorRegistry()
    metrics = WriterMetrics(registry, cfg.wal_dir)
    verifier = SignatureVerifier(cfg.verify_workers, cfg.inline_signatures_max)
    loop = asyncio.get_running_loop()
    await loop.run_in_executor(None, verifier.warm_up)
    forwarder = ForwardingWriter(verifier)
    metered = cfg.meter_config is not None  # the owner holds the meter: forward what it needs
    servicer = WriterServicer(
        forwarder, metrics, validation.DEFAULT_LIMITS,
        SignaturePolicy.of(cfg.require_signatures, cfg.trusted_keys), spec.bounds,
        lambda: draining, None, cfg.tls_client_ca is not None, forward_meter=metered,
    )  # fmt: skip
    shell = ServiceShell(
        cfg, registry, _log,
        options=[
            ("grpc.max_receive_message_length", cfg.max_message_bytes),
            ("grpc.max_send_message_length", cfg.max_message_bytes),
        ],
        reuse_port=True, serve_metrics=False,
    )  # fmt: skip
    shell.add_service(_DESCRIPTOR, servicer.generic_handler())

    async def remote_budget(agent: str) -> meter_pb2.GetBudgetResponse:
        if forwarder.link is None:
            raise RuntimeError("GetBudget before the front end is linked to the owner")
        return await forwarder.link.budget(agent)

    meter = MeterServicer(lambda: None, remote_budget)
    shell.add_service(_METER_DESCRIPTOR, decoding_generic_handler(_METER_DESCRIPTOR, meter))

    async def wal_state(fatal: bool) -> None:
        forwarder.wal_failure = "the WAL owner reports the WAL unusable" if fatal else None
        if fatal:
            await shell.set_all_health(False)

    reader, writer = await asyncio.open_unix_connection(spec.socket_path, limit=1 << 20)
    link = OwnerLink(reader, writer, registry, wal_state)
    forwarder.link = link
    writer.write(fr.encode_hello(spec.token, spec.index, os.getpid()))
    await shell.start()
    if forwarder.wal_failure is not None:
        await shell.set_all_health(False)
    writer.write(fr.encode_frame(fr.READY, b""))
    log_event(_log, logging.INFO, "writer front end serving", index=spec.index,
              listen=cfg.listen)  # fmt: skip
    reading = asyncio.ensure_future(link.run())
    stopping = asyncio.ensure_future(stop.wait())
    await asyncio.wait((reading, stopping), return_when=asyncio.FIRST_COMPLETED)
    if reading.done():
        # The owner is gone: nothing more can become durable, so nothing more is answered.
        log_event(_log, logging.CRITICAL, "writer front end: WAL owner gone, exiting",
                  index=spec.index, reason=reading.result())  # fmt: skip
        os._exit(OWNER_GONE_EXIT)
    draining = True
    await shell.drain()  # in-flight calls are answered: the owner serves until we exit
    stopping.cancel()
    reading.cancel()
    writer.close()
    await loop.run_in_executor(None, verifier.close)
    log_event(_log, logging.INFO, "writer front end stopped", index=spec.index)
    return 0


def main() -> int:
    spec = pickle.loads(sys.stdin.buffer.read())  # written by our parent, the owner
    if not isinstance(spec, FrontendSpec):
        print("stemedb-writer front end: stdin is not a FrontendSpec", file=sys.stderr)
        return 2
    _die_with_parent(spec.owner_pid)
    # SIGHUP reloads the meter in the owner; a front end holds no config to reload.
    signal.signal(signal.SIGHUP, signal.SIG_IGN)
    cfg = spec.cfg
    return run_service(
        "stemedb-writer-frontend", _log, cfg.log_level, lambda: serve_frontend(spec),
        (StemeError, OSError), log_format=cfg.log_format, event_loop=cfg.event_loop,
    )  # fmt: skip


if __name__ == "__main__":
    # Run as ``-m``: this file is ``__main__``; the spec's classes are the package module's.
    from stemedb.writer._frontend import main as _main

    sys.exit(_main())
