"""Running the writer: open the WAL, serve WriterService through the service shell, drain.

The shell (``stemedb.runtime.ServiceShell``) does what every service does: health, reflection,
TLS, the metrics endpoint, the gRPC metrics and the drain. This module adds the writer's own
parts: the signature verifier, the WAL and the servicer.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import time

from prometheus_client import CollectorRegistry

from stemedb import validation
from stemedb.runtime import ServiceShell, decoding_generic_handler, log_event, stop_signal
from stemedb.v1 import meter_pb2, writer_pb2
from stemedb.wal import SyncMode, Wal, WalConfig
from stemedb.writer._admission import AdmissionBounds, SignaturePolicy
from stemedb.writer._config import WriterConfig
from stemedb.writer._core import Writer
from stemedb.writer._meter import Meter, MeterConfigError, load_meter_config
from stemedb.writer._meter_service import MeterServicer
from stemedb.writer._metrics import WriterMetrics
from stemedb.writer._service import WriterServicer
from stemedb.writer._tree import BENCH_NO_LOG_TREE_ENV, LogTree
from stemedb.writer._verify import SignatureVerifier

__all__ = ["WriterServer", "serve"]

_log = logging.getLogger("stemedb.writer")
_DESCRIPTOR = writer_pb2.DESCRIPTOR.services_by_name["WriterService"]
_METER_DESCRIPTOR = meter_pb2.DESCRIPTOR.services_by_name["MeterService"]


class WriterServer:
    """One writer process: open the WAL, serve gRPC and metrics, drain on stop."""

    def __init__(self, cfg: WriterConfig) -> None:
        self.cfg = cfg
        self.registry = CollectorRegistry()
        self.metrics = WriterMetrics(self.registry, cfg.wal_dir)
        self._draining = False
        self._stopped = asyncio.Event()
        self._wal: Wal | None = None
        self._verifier: SignatureVerifier | None = None
        self._servicer_: WriterServicer | None = None
        self._tree: LogTree | None = None
        # Read before anything starts: a malformed meter config refuses the start (exit 2).
        self._meter = Meter(load_meter_config(cfg.meter_config)) if cfg.meter_config else None
        self.shell = ServiceShell(
            cfg, self.registry, _log,
            options=[
                ("grpc.max_receive_message_length", cfg.max_message_bytes),
                ("grpc.max_send_message_length", cfg.max_message_bytes),
            ],
        )  # fmt: skip

    @property
    def bound_port(self) -> int:
        return self.shell.bound_port

    async def start(self) -> None:
        """Open (and recover) the WAL, then serve; health is SERVING only once appends work."""
        started = time.monotonic()
        wal = await self._open_wal()
        await self._open_tree(wal)
        self._servicer_ = self._servicer(wal)
        self.shell.add_service(_DESCRIPTOR, self._servicer_.generic_handler())
        meter = MeterServicer(lambda: self._meter)
        self.shell.add_service(
            _METER_DESCRIPTOR, decoding_generic_handler(_METER_DESCRIPTOR, meter)
        )
        if self._meter is not None:
            meter_obj = self._meter
            self.metrics.meter_agents.set_function(lambda: float(meter_obj.agents()))
            asyncio.get_running_loop().add_signal_handler(signal.SIGHUP, self.reload_meter)
        await self.shell.start()
        self._log_started(wal, time.monotonic() - started)

    async def _open_wal(self) -> Wal:
        cfg = self.cfg
        self._verifier = self._new_verifier()
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(None, self._verifier.warm_up)
        wal_config = WalConfig(
            dir=cfg.wal_dir,
            segment_size_bytes=cfg.segment_size_bytes,
            sync_mode=SyncMode(cfg.sync_mode),
            retention=cfg.retention,
            retention_consumer_stale_seconds=cfg.retention_consumer_stale_seconds,
            fsync_warn_seconds=cfg.fsync_warn_seconds,
            observer=self.metrics,
        )
        wal = await loop.run_in_executor(None, Wal.open, wal_config)
        self._wal = wal
        self.metrics.bind_lsns(lambda: wal.last_lsn, lambda: wal.durable_lsn)
        return wal

    def _new_verifier(self) -> SignatureVerifier:
        return SignatureVerifier(self.cfg.verify_workers, self.cfg.inline_signatures_max)

    async def _open_tree(self, wal: Wal) -> None:
        """Load the log key, check CHECKPOINT and TREE against the log, start checkpointing.
        On a mismatch the WAL is closed again and the start fails with both files named."""
        cfg = self.cfg
        if os.environ.get(BENCH_NO_LOG_TREE_ENV) == "1":  # tests/bench/test_log_bench's baseline
            log_event(_log, logging.WARNING, f"{BENCH_NO_LOG_TREE_ENV}=1: no verifiable log "
                      "(no CHECKPOINT, no proofs); for benchmarks only")  # fmt: skip
            return
        loop = asyncio.get_running_loop()
        sync = cfg.sync_mode == SyncMode.FDATASYNC.value
        try:
            tree = await loop.run_in_executor(
                None, LogTree.open, cfg.wal_dir, cfg.log_key_path, cfg.log_origin, sync,
                lambda: wal.durable_lsn, cfg.log_checkpoint_interval_seconds,
            )  # fmt: skip
        except BaseException:
            await loop.run_in_executor(None, wal.close)
            raise
        self._tree = tree
        self.metrics.bind_log_tree(tree)
        tree.start()
        log_event(
            _log, logging.INFO, "log verifier key", verifier_key=tree.verifier_key,
            log_key=str(cfg.log_key_path), tree_size=tree.status.tree_size,
        )  # fmt: skip

    def _servicer(self, wal: Wal) -> WriterServicer:
        cfg = self.cfg
        if self._verifier is None:
            raise RuntimeError("the verifier starts before the servicer")
        writer = Writer(wal, self._verifier, self._tree)
        writer.on_wal_fatal(lambda _reason: self.shell.set_all_health(False))
        return WriterServicer(
            writer, self.metrics, validation.DEFAULT_LIMITS,
            SignaturePolicy.of(cfg.require_signatures, cfg.trusted_keys),
            AdmissionBounds(cfg.inflight_requests_max, cfg.inflight_records_max,
                            cfg.inflight_bytes_max),
            lambda: self._draining, self._meter, cfg.tls_client_ca is not None,
        )  # fmt: skip

    def reload_meter(self) -> None:
        """SIGHUP: read --meter-config again; a file that fails keeps the config in force."""
        if self._meter is None or self.cfg.meter_config is None:
            return
        try:
            config = load_meter_config(self.cfg.meter_config)
        except MeterConfigError as exc:
            self.metrics.meter_reloads.labels("failed").inc()
            log_event(_log, logging.ERROR, "meter config reload failed; keeping the old one",
                      error=str(exc))  # fmt: skip
            return
        self._meter.reload(config)
        self.metrics.meter_reloads.labels("ok").inc()
        log_event(
            _log, logging.INFO, "meter config reloaded",
            agents=len(config.agents), default_rate=config.default.rate,
            default_burst=config.default.burst,
        )  # fmt: skip

    def _log_started(self, wal: Wal, recovery_seconds: float) -> None:
        cfg = self.cfg
        log_event(
            _log, logging.INFO, "writer started",
            listen=cfg.listen, metrics_listen=cfg.metrics_listen, wal_dir=str(cfg.wal_dir),
            health_listen=cfg.health_listen or None, tls=self.shell.tls, mtls=self.shell.mtls,
            require_signatures=cfg.require_signatures,
            trusted_keys=len(cfg.trusted_keys) if cfg.trusted_keys is not None else None,
            sync=cfg.sync_mode, durable_lsn=wal.durable_lsn,
            event_loop=type(asyncio.get_running_loop()).__module__.split(".")[0],
            recovery_seconds=round(recovery_seconds, 3),
        )  # fmt: skip

    async def stop(self) -> None:
        """Drain: refuse new appends, let in-flight commits finish, close the WAL."""
        if self._draining:
            await self._stopped.wait()
            return
        self._draining = True
        log_event(_log, logging.INFO, "writer draining")
        await self.shell.drain()
        loop = asyncio.get_running_loop()
        if self._wal is not None:
            await loop.run_in_executor(None, self._wal.close)
        if self._tree is not None:
            await loop.run_in_executor(None, self._tree.close)
        if self._verifier is not None:
            await loop.run_in_executor(None, self._verifier.close)
        durable = self._wal.durable_lsn if self._wal is not None else 0
        log_event(_log, logging.INFO, "writer stopped", durable_lsn=durable)
        self._stopped.set()

    async def wait_stopped(self) -> None:
        await self._stopped.wait()


async def serve(cfg: WriterConfig) -> int:
    if cfg.frontend_processes > 0:
        from stemedb.writer._owner import serve_owner

        return await serve_owner(cfg)
    server = WriterServer(cfg)
    stop = stop_signal()
    await server.start()
    await stop.wait()
    await server.stop()
    return 0
