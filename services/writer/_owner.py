"""The WAL owner of a writer with front-end processes (``--frontend-processes N``, N >= 1).

This process opens the WAL and the verifiable log (``WriterServer``'s own steps), serves
``/metrics``, and starts N front-end processes (``_frontend.py``) that serve gRPC on
``--listen`` together (SO_REUSEPORT). They connect to a Unix socket in a private directory
(0700, the socket 0600, a per-start token in the first frame) and send APPEND frames of ready
WAL entries; the owner appends each frame's records in one group commit (consecutive LSNs, in
frame order) and answers each request with its LSNs and tree size, or with the gRPC status its
error maps to. Lifecycle (docs/writer.md, "Front-end processes"):

- SIGTERM: each front end drains (health NOT_SERVING, in-flight calls answered; the owner keeps
  committing their frames), then the owner closes the log and exits 0.
- A front end that exits is logged and started again, at most ``FRONTEND_RESTARTS_MAX`` times
  in ``FRONTEND_RESTART_WINDOW_SECONDS``; past that the writer stops (exit 1), so that its
  supervisor sees it. A front end that sends a malformed frame is logged and killed (and so
  restarted); the owner carries on.
- The owner SIGKILLed: the kernel kills the front ends (PR_SET_PDEATHSIG).

Metrics: the owner's ``/metrics`` sums the front ends' gRPC and admission families
(``FORWARDED_FAMILIES``), asked for at scrape time, with its own.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import json
import logging
import os
import pickle
import shutil
import signal
import socket
import stat
import sys
import tempfile
import threading
import time
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

import grpc
from prometheus_client import CollectorRegistry, Counter, Gauge
from prometheus_client.metrics_core import Metric
from prometheus_client.registry import Collector
from prometheus_client.samples import Sample

from stemedb.errors import StemeError
from stemedb.runtime import log_event, parse_host_port, start_metrics_http_server, stop_signal
from stemedb.wal import Wal
from stemedb.walrecord import (
    HASH_BYTES,
    KIND_OF_TYPE,
    TYPE_WITH_JOB_OF_KIND,
    encode_payload_with_job,
)
from stemedb.writer import _frames as fr
from stemedb.writer._admission import AdmissionBounds
from stemedb.writer._config import WriterConfig
from stemedb.writer._core import Writer
from stemedb.writer._frontend import FORWARDED_FAMILIES, FrontendSpec
from stemedb.writer._meter import Charge, MeterRefused, charge_ask
from stemedb.writer._meter_service import budget_response
from stemedb.writer._server import WriterServer
from stemedb.writer._service import meter_status_proto, status_of
from stemedb.writer._verify import SignatureVerifier

__all__ = [
    "FRONTEND_RESTARTS_MAX",
    "FRONTEND_RESTART_WINDOW_SECONDS",
    "SOCKET_PATH_BYTES_MAX",
    "WalOwner",
    "frontend_bounds",
    "merge_families",
    "serve_owner",
]

_log = logging.getLogger("stemedb.writer")
FRONTEND_RESTARTS_MAX = 5
FRONTEND_RESTART_WINDOW_SECONDS = 60.0
SOCKET_PATH_BYTES_MAX = 107  # sun_path is 108 bytes with its NUL
_HELLO_SECONDS_MAX = 30.0  # a connection that sends no HELLO in this long is dropped
_READY_SECONDS_MAX = 120.0  # a front end that does not serve in this long fails the start
_METRICS_ASK_SECONDS = 1.5  # a scrape waits this long for the front ends' counters
_STATE_SEEN_SECONDS = 2.0  # a fatal WAL error waits this long for the front ends' health
_SOCKET_MODE = 0o600

Family = dict[str, Any]  # one metric family of a snapshot: name, documentation, type, ...


def frontend_bounds(bounds: AdmissionBounds, processes: int) -> AdmissionBounds:
    """Each front end's share of the writer's in-flight bounds, so that the writer as a whole
    never holds more than the flags say (at least 1 each)."""
    return AdmissionBounds(
        max(1, bounds.inflight_requests_max // processes),
        max(1, bounds.inflight_records_max // processes),
        max(1, bounds.inflight_bytes_max // processes),
    )


def _families_of(metrics: Iterable[Metric]) -> list[Family]:
    return [
        {"name": m.name, "documentation": m.documentation, "type": m.type, "unit": m.unit,
         "samples": [[s.name, s.labels, s.value] for s in m.samples]}
        for m in metrics
    ]  # fmt: skip


def merge_families(snapshots: Iterable[Sequence[Family]]) -> list[Family]:
    """Families of several processes summed sample by sample (the same name and labels),
    in the order first seen."""
    merged: dict[str, Family] = {}
    values: dict[str, dict[tuple[str, tuple[tuple[str, str], ...]], list[Any]]] = {}
    for families in snapshots:
        for family in families:
            name = family["name"]
            if name not in merged:
                merged[name] = {k: family[k] for k in ("name", "documentation", "type", "unit")}
                values[name] = {}
            samples = values[name]
            for sample_name, labels, value in family["samples"]:
                key = (str(sample_name), tuple(sorted((str(k), str(v)) for k, v in labels.items())))
                if key in samples:
                    samples[key][1] += float(value)
                else:
                    samples[key] = [dict(labels), float(value)]
    out = []
    for name, family in merged.items():
        family["samples"] = [[k[0], lv[0], lv[1]] for k, lv in values[name].items()]
        out.append(family)
    return out


def _parse_snapshot(data: bytes) -> list[Family]:
    try:
        raw = json.loads(data)
        families = []
        for f in raw:
            if f["name"] not in FORWARDED_FAMILIES:
                raise ValueError(f"family {f['name']!r} is not one a front end forwards")
            samples = [[str(n), {str(k): str(v) for k, v in lb.items()}, float(v)]
                       for n, lb, v in f["samples"]]  # fmt: skip
            families.append({"name": str(f["name"]), "documentation": str(f["documentation"]),
                             "type": str(f["type"]), "unit": str(f["unit"]),
                             "samples": samples})  # fmt: skip
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise fr.FrameError(f"METRICS: malformed snapshot: {exc}") from None
    return families


class _FrontendMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.processes = Gauge(
            "stemedb_writer_frontend_processes",
            "Front-end processes serving gRPC for this writer now (--frontend-processes).",
            registry=registry,
        )
        self.frames = Counter(
            "stemedb_writer_frontend_frames",
            "APPEND frames received from front ends (one group commit each).",
            registry=registry,
        )
        self.records = Counter(
            "stemedb_writer_frontend_records",
            "Records received from front ends in APPEND frames.",
            registry=registry,
        )
        self.restarts = Counter(
            "stemedb_writer_frontend_restarts",
            "Front-end processes started again after one exited.",
            registry=registry,
        )
        self.refused_frames = Counter(
            "stemedb_writer_frontend_malformed_frames",
            "Malformed frames from front ends (the front end is killed and restarted).",
            registry=registry,
        )


class _Merged(Collector):
    """The owner's /metrics: its own families plus the front ends' forwarded ones, summed."""

    def __init__(self, own: CollectorRegistry, owner: WalOwner) -> None:
        self._own = own
        self._owner = owner

    def collect(self) -> Iterator[Metric]:
        snapshots = [_families_of(self._own.collect()), *self._owner.front_end_snapshots()]
        for family in merge_families(snapshots):
            metric = Metric(family["name"], family["documentation"], family["type"],
                            family["unit"])  # fmt: skip
            metric.samples = [Sample(n, lb, v, None, None) for n, lb, v in family["samples"]]
            yield metric


class _Conn:
    """One front end's connection."""

    def __init__(self, index: int, writer: asyncio.StreamWriter) -> None:
        self.index = index
        self.writer = writer
        self.snapshot: list[Family] = []
        self.asks: dict[int, asyncio.Future[None]] = {}
        self.state_seen: asyncio.Future[None] | None = None
        self.in_flight = 0  # APPEND frames not answered yet


class WalOwner(WriterServer):
    """The writer process that owns the WAL and runs the front ends; see the module doc."""

    def __init__(self, cfg: WriterConfig) -> None:
        super().__init__(cfg)
        self.front = _FrontendMetrics(self.registry)
        self.exported = CollectorRegistry()
        self.exported.register(_Merged(self.registry, self))
        self.failed = asyncio.Event()  # too many front-end restarts
        self._token = os.urandom(fr.TOKEN_BYTES)
        self._dir: Path | None = None
        self._socket_path = ""
        self._unix: asyncio.AbstractServer | None = None
        self._writer: Writer | None = None
        self._procs: dict[int, asyncio.subprocess.Process] = {}
        self._ready = [asyncio.Event() for _ in range(cfg.frontend_processes)]
        self._conns: dict[int, _Conn] = {}
        self._retired: list[Family] = []  # counters of front ends that exited
        self._supervisors: list[asyncio.Task[None]] = []
        self._tasks: set[asyncio.Task[None]] = set()
        self._restart_times: list[float] = []
        self._stopping = False
        self._loop: asyncio.AbstractEventLoop | None = None
        self._metrics_server: Any = None
        self._ask_id = 0
        self._snap_lock = threading.Lock()
        self.front.processes.set_function(lambda: float(len(self._procs)))

    def stopping(self) -> bool:
        return self._stopping

    def _new_verifier(self) -> SignatureVerifier:
        return SignatureVerifier(0, self.cfg.inline_signatures_max)  # front ends verify

    async def start(self) -> None:
        started = time.monotonic()
        self._loop = asyncio.get_running_loop()
        wal = await self._open_wal()
        await self._open_tree(wal)
        if self._verifier is None:
            raise RuntimeError("the verifier starts with the WAL")
        writer = Writer(wal, self._verifier, self._tree)
        writer.on_wal_fatal(self._broadcast_fatal)
        self.metrics.wal_fatal.set_function(lambda: 0.0 if writer.wal_failure is None else 1.0)
        self._writer = writer
        if self._meter is not None:
            meter = self._meter
            self.metrics.meter_agents.set_function(lambda: float(meter.agents()))
            asyncio.get_running_loop().add_signal_handler(signal.SIGHUP, self.reload_meter)
        try:
            _check_port_free(self.cfg.listen)
            await self._listen_unix()
            self._metrics_server = start_metrics_http_server(self.cfg.metrics_listen, self.exported)
            for index in range(self.cfg.frontend_processes):
                self._supervisors.append(asyncio.ensure_future(self._supervise(index)))
            await self._wait_ready()
        except BaseException:
            await self._close()
            raise
        log_event(
            _log, logging.INFO, "writer started",
            listen=self.cfg.listen, metrics_listen=self.cfg.metrics_listen,
            wal_dir=str(self.cfg.wal_dir), frontend_processes=self.cfg.frontend_processes,
            frontend_socket=self._socket_path,
            require_signatures=self.cfg.require_signatures, sync=self.cfg.sync_mode,
            durable_lsn=wal.durable_lsn, recovery_seconds=round(time.monotonic() - started, 3),
        )  # fmt: skip

    async def _listen_unix(self) -> None:
        base = os.environ.get("XDG_RUNTIME_DIR") or tempfile.gettempdir()
        self._dir = Path(tempfile.mkdtemp(prefix="stemedb-writer-", dir=base))  # mode 0700
        path = self._dir / "frontends.sock"
        if len(os.fsencode(path)) > SOCKET_PATH_BYTES_MAX:
            raise OSError(
                f"front-end socket path {path} is longer than {SOCKET_PATH_BYTES_MAX} bytes: "
                "set TMPDIR to a shorter directory"
            )
        old = os.umask(0o177)
        try:
            self._unix = await asyncio.start_unix_server(
                self._serve_conn, str(path), limit=fr.FRAME_BYTES_MAX + fr.HEADER.size
            )
        finally:
            os.umask(old)
        os.chmod(path, _SOCKET_MODE)
        if stat.S_IMODE(path.stat().st_mode) != _SOCKET_MODE:
            raise OSError(f"{path}: socket mode is not {_SOCKET_MODE:o}")
        self._socket_path = str(path)

    async def _wait_ready(self) -> None:
        deadline = time.monotonic() + _READY_SECONDS_MAX
        for index, ready in enumerate(self._ready):
            while not ready.is_set():
                if self.failed.is_set():
                    raise OSError(f"writer front end {index} exited before serving (see the log)")
                if time.monotonic() > deadline:
                    raise OSError(f"writer front end {index} did not serve within "
                                  f"{_READY_SECONDS_MAX:.0f} s")  # fmt: skip
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(ready.wait(), 0.1)

    def _spec(self, index: int) -> FrontendSpec:
        cfg = self.cfg
        bounds = AdmissionBounds(
            cfg.inflight_requests_max, cfg.inflight_records_max, cfg.inflight_bytes_max
        )
        return FrontendSpec(
            cfg, self._socket_path, self._token, index, os.getpid(),
            frontend_bounds(bounds, cfg.frontend_processes),
        )  # fmt: skip

    async def _supervise(self, index: int) -> None:
        """Run front end ``index``; start it again when it exits (bounded)."""
        while not self.stopping():
            proc = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "stemedb.writer._frontend", stdin=asyncio.subprocess.PIPE
            )
            self._procs[index] = proc
            assert proc.stdin is not None
            proc.stdin.write(pickle.dumps(self._spec(index)))
            with contextlib.suppress(OSError):
                await proc.stdin.drain()
            proc.stdin.close()
            code = await proc.wait()
            self._procs.pop(index, None)
            if self.stopping():
                return
            started = self._ready[index].is_set()
            log_event(_log, logging.ERROR, "writer front end exited", index=index,
                      pid=proc.pid, exit_code=code)  # fmt: skip
            now = time.monotonic()
            self._restart_times = [
                t for t in self._restart_times if now - t < FRONTEND_RESTART_WINDOW_SECONDS
            ]
            if not started or len(self._restart_times) >= FRONTEND_RESTARTS_MAX:
                log_event(
                    _log, logging.CRITICAL,
                    "writer front end cannot be kept running: stopping the writer",
                    index=index, restarts=len(self._restart_times),
                    restarts_max=FRONTEND_RESTARTS_MAX,
                    window_seconds=FRONTEND_RESTART_WINDOW_SECONDS,
                )  # fmt: skip
                self.failed.set()
                return
            self._restart_times.append(now)
            self.front.restarts.inc()
            log_event(_log, logging.WARNING, "writer front end restarting", index=index)

    # -- the socket --------------------------------------------------------------------------

    async def _serve_conn(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        conn: _Conn | None = None
        try:
            got = await asyncio.wait_for(fr.read_frame(reader), _HELLO_SECONDS_MAX)
            if got is None or got[0].kind != fr.HELLO:
                raise fr.FrameError("the first frame is not HELLO")
            token, index, pid = fr.decode_hello(got[1])
            if not hmac.compare_digest(token, self._token):
                raise fr.FrameError("HELLO: wrong token")
            proc = self._procs.get(index)
            if proc is None or proc.pid != pid:
                raise fr.FrameError(f"HELLO: front end {index} is not process {pid}")
            conn = _Conn(index, writer)
            self._conns[index] = conn
            failed = self._writer is not None and self._writer.wal_failure is not None
            writer.write(fr.encode_frame(fr.STATE, b"\x01" if failed else b"\x00"))
            await self._read_frames(conn, reader)
        except (fr.FrameError, TimeoutError) as exc:
            self.front.refused_frames.inc()
            log_event(
                _log, logging.ERROR, "writer front end frame refused; dropping it",
                index=conn.index if conn is not None else None,
                reason=str(exc) or type(exc).__name__,
            )  # fmt: skip
            if conn is not None:
                self._kill(conn.index)
        except OSError as exc:
            log_event(_log, logging.WARNING, "writer front end socket failed", error=str(exc))
        finally:
            if conn is not None:
                self._retire(conn)
            writer.close()

    async def _read_frames(self, conn: _Conn, reader: asyncio.StreamReader) -> None:
        while True:
            got = await fr.read_frame(reader)
            if got is None:
                return
            header, body = got
            if header.kind == fr.APPEND:
                if conn.in_flight >= fr.FRAMES_IN_FLIGHT_MAX:
                    raise fr.FrameError(
                        f"APPEND: more than {fr.FRAMES_IN_FLIGHT_MAX} frames unanswered"
                    )
                requests = fr.decode_append(header, body)
                conn.in_flight += 1
                task = asyncio.ensure_future(self._append(conn, requests))
                self._tasks.add(task)
                task.add_done_callback(self._tasks.discard)
            elif header.kind == fr.STATE_SEEN:
                if conn.state_seen is not None and not conn.state_seen.done():
                    conn.state_seen.set_result(None)
            elif header.kind == fr.BUDGET_ASK:
                if len(body) < 8:
                    raise fr.FrameError("BUDGET_ASK: shorter than its ask id")
                try:
                    agent = body[8:].decode("utf-8")
                except UnicodeDecodeError:
                    raise fr.FrameError("BUDGET_ASK: the agent is not UTF-8") from None
                answer = budget_response(self._meter, agent).SerializeToString()
                conn.writer.write(fr.encode_frame(fr.BUDGET, body[:8] + answer))
            elif header.kind == fr.READY:
                self._ready[conn.index].set()
            elif header.kind == fr.METRICS:
                if len(body) < 8:
                    raise fr.FrameError("METRICS: shorter than its ask id")
                snapshot = _parse_snapshot(body[8:])
                with self._snap_lock:
                    conn.snapshot = snapshot
                ask = conn.asks.pop(int.from_bytes(body[:8], "little"), None)
                if ask is not None and not ask.done():
                    ask.set_result(None)
            else:
                raise fr.FrameError(f"frame kind {header.kind} is not one a front end sends")

    async def _append(self, conn: _Conn, requests: list[fr.AppendRequest]) -> None:
        """Commit one APPEND frame and answer it: every frame gets its RESULT (a front end
        sends its next frame only then), whatever fails."""
        try:
            outcomes = await self._commit_frame(requests)
        except Exception as exc:  # a bug must not leave a front end waiting for ever
            _log.exception("writer front end frame failed")
            outcomes = [fr.Outcome(r.request_id, code=grpc.StatusCode.INTERNAL.value[0],
                                   message=f"the WAL owner failed: {exc!r}")
                        for r in requests]  # fmt: skip
        conn.in_flight -= 1
        if not conn.writer.is_closing():
            conn.writer.write(fr.encode_result(outcomes))

    async def _commit_frame(self, requests: list[fr.AppendRequest]) -> list[fr.Outcome]:
        writer = self._writer
        if writer is None:
            raise RuntimeError("a frame before the WAL is open")
        self.front.frames.inc()
        refused, charges, admitted = self._charge(requests)
        entries = [e for r in admitted for e in r.entries]
        suffixes = [s for r in admitted for s in r.suffixes]
        self.front.records.inc(len(entries))
        outcomes = list(refused)
        try:
            lsns = await writer.commit(entries, suffixes) if entries else []
        except StemeError as exc:
            code, _ = status_of(exc)
            outcomes += [fr.Outcome(r.request_id, code=code.value[0], message=str(exc))
                         for r in admitted]  # fmt: skip
            if self._meter is not None:
                for charge in charges:
                    self._meter.refund(charge.decision)
        else:
            tree_size = writer.wal.durable_lsn
            pos = 0
            for r in admitted:
                n = len(r.entries)
                outcomes.append(fr.Outcome(r.request_id, lsns[pos : pos + n], tree_size))
                pos += n
            for charge in charges:
                self.metrics.meter_requests.labels("admitted").inc()
                self.metrics.meter_units.inc(charge.decision.cost)
        return outcomes

    def _charge(
        self, requests: list[fr.AppendRequest]
    ) -> tuple[list[fr.Outcome], list[Charge], list[fr.AppendRequest]]:
        """The meter's decisions for a frame's metered requests, in frame order: the refused
        (with the status a single-process writer answers), the charges, and the requests to
        append, the first record of each metered one carrying its job envelope."""
        meter = self._meter
        if meter is None or not any(r.meter is not None for r in requests):
            return [], [], requests
        refused: list[fr.Outcome] = []
        charges: list[Charge] = []
        admitted: list[fr.AppendRequest] = []
        now = time.monotonic()
        for r in requests:
            if r.meter is None:
                admitted.append(r)
                continue
            try:
                charge = charge_ask(meter, r.meter, now)
            except MeterRefused as exc:
                code, _ = status_of(exc)
                self.metrics.meter_requests.labels(exc.decision.outcome.value).inc()
                details = meter_status_proto(code, exc).SerializeToString()
                refused.append(fr.Outcome(r.request_id, code=code.value[0], message=str(exc),
                                          details=details))  # fmt: skip
                continue
            charges.append(charge)
            first_type, first_payload = r.entries[0]
            first = (
                TYPE_WITH_JOB_OF_KIND[KIND_OF_TYPE[first_type]],
                encode_payload_with_job(
                    first_payload[:HASH_BYTES], first_payload[HASH_BYTES:], charge.job
                ),
            )
            admitted.append(
                fr.AppendRequest(r.request_id, [first, *r.entries[1:]], r.suffixes, r.meter)
            )
        return refused, charges, admitted

    async def _broadcast_fatal(self, _reason: str) -> None:
        """Tell every front end, and wait (bounded) until each has turned NOT_SERVING."""
        waits = []
        for conn in list(self._conns.values()):
            if not conn.writer.is_closing():
                conn.state_seen = asyncio.get_running_loop().create_future()
                conn.writer.write(fr.encode_frame(fr.STATE, b"\x01"))
                waits.append(conn.state_seen)
        if waits:
            await asyncio.wait(waits, timeout=_STATE_SEEN_SECONDS)

    def _retire(self, conn: _Conn) -> None:
        if self._conns.get(conn.index) is conn:
            del self._conns[conn.index]
        with self._snap_lock:
            kept = [f for f in conn.snapshot if f["type"] in ("counter", "histogram")]
            self._retired = merge_families([self._retired, kept])
        for ask in [*conn.asks.values(), conn.state_seen]:
            if ask is not None and not ask.done():
                ask.set_result(None)

    def _kill(self, index: int) -> None:
        proc = self._procs.get(index)
        if proc is not None and proc.returncode is None:
            proc.send_signal(signal.SIGKILL)

    # -- metrics -------------------------------------------------------------------------------

    def front_end_snapshots(self) -> list[list[Family]]:
        """Called from the metrics thread: ask every front end for its counters (bounded wait),
        then the snapshots of the live ones and the counters of those that exited."""
        loop = self._loop
        if loop is not None and not loop.is_closed():
            future = asyncio.run_coroutine_threadsafe(self._ask_metrics(), loop)
            try:
                future.result(timeout=_METRICS_ASK_SECONDS + 0.5)
            except Exception:  # a slow front end: its last snapshot is served
                future.cancel()
        with self._snap_lock:
            return [self._retired, *(c.snapshot for c in list(self._conns.values()))]

    async def _ask_metrics(self) -> None:
        waits = []
        for conn in list(self._conns.values()):
            if conn.writer.is_closing():
                continue
            self._ask_id += 1
            future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
            conn.asks[self._ask_id] = future
            conn.writer.write(fr.encode_frame(fr.METRICS_ASK, self._ask_id.to_bytes(8, "little")))
            waits.append(future)
        if waits:
            await asyncio.wait(waits, timeout=_METRICS_ASK_SECONDS)

    # -- stopping ------------------------------------------------------------------------------

    async def stop(self) -> None:
        """Drain: every front end drains (its in-flight calls committed here), then the log
        closes."""
        if self._draining:
            await self._stopped.wait()
            return
        self._draining = True
        log_event(_log, logging.INFO, "writer draining")
        await self._close()
        durable = self._wal.durable_lsn if self._wal is not None else 0
        log_event(_log, logging.INFO, "writer stopped", durable_lsn=durable)
        self._stopped.set()

    async def _close(self) -> None:
        self._stopping = True
        procs = list(self._procs.values())
        for proc in procs:
            if proc.returncode is None:
                proc.send_signal(signal.SIGTERM)
        grace = self.cfg.shutdown_grace_seconds + 10.0
        for proc in procs:
            try:
                await asyncio.wait_for(proc.wait(), grace)
            except TimeoutError:
                log_event(_log, logging.ERROR, "writer front end did not drain; killing it",
                          pid=proc.pid)  # fmt: skip
                proc.send_signal(signal.SIGKILL)
                await proc.wait()
        for task in self._supervisors:
            task.cancel()
        if self._tasks:
            await asyncio.wait(list(self._tasks), timeout=self.cfg.shutdown_grace_seconds)
        if self._unix is not None:
            self._unix.close()
        for conn in list(self._conns.values()):
            conn.writer.close()
        loop = asyncio.get_running_loop()
        wal: Wal | None = self._wal
        if wal is not None:
            await loop.run_in_executor(None, wal.close)
        if self._tree is not None:
            await loop.run_in_executor(None, self._tree.close)
        if self._verifier is not None:
            await loop.run_in_executor(None, self._verifier.close)
        if self._metrics_server is not None:
            self._metrics_server.shutdown()
            self._metrics_server.server_close()
        if self._dir is not None:
            shutil.rmtree(self._dir, ignore_errors=True)


def _check_port_free(listen: str) -> None:
    """Refuse a port another process serves on: the front ends' SO_REUSEPORT would otherwise
    share it with any process of this user that set SO_REUSEPORT too."""
    host, port = parse_host_port(listen)
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        # As gRPC binds: a connection in TIME_WAIT does not hold the port, a listener does.
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError as exc:
            raise OSError(f"cannot listen on {listen}: {exc.strerror or exc}") from None


async def serve_owner(cfg: WriterConfig) -> int:
    owner = WalOwner(cfg)
    stop = stop_signal()
    await owner.start()
    stopping = asyncio.ensure_future(stop.wait())
    failing = asyncio.ensure_future(owner.failed.wait())
    await asyncio.wait((stopping, failing), return_when=asyncio.FIRST_COMPLETED)
    stopping.cancel()
    failing.cancel()
    await owner.stop()
    return 1 if owner.failed.is_set() else 0
