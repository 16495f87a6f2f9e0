"""Running the wallet: open the keystore, serve through the service shell, drain.

The shell (``stemedb.runtime.ServiceShell``) does what every service does: health, reflection,
TLS or mutual TLS, the metrics endpoint, the gRPC metrics, the data-path limit
(``--inflight-requests-max``; health and reflection exempt), the Unix socket (mode 0600, a stale
one replaced, a live one refused) and the drain. This module adds the wallet's own parts: the
keystore, the signer, the two servicers and the channel to the writer.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import grpc.aio
from prometheus_client import CollectorRegistry

from stemedb import validation
from stemedb.runtime import ServiceShell, decoding_generic_handler, log_event, stop_signal
from stemedb.v1 import wallet_pb2, writer_pb2
from stemedb.wallet._config import WalletConfig, read_passphrase
from stemedb.wallet._keystore import Keystore
from stemedb.wallet._metrics import WalletMetrics
from stemedb.wallet._service import WalletServicer, WriterProxyServicer
from stemedb.wallet._signer import Signer

__all__ = ["WalletServer", "open_keystore", "serve"]

_log = logging.getLogger("stemedb.wallet")
_WALLET = wallet_pb2.DESCRIPTOR.services_by_name["WalletService"]
_WRITER = writer_pb2.DESCRIPTOR.services_by_name["WriterService"]


def writer_channel(cfg: WalletConfig, options: list[tuple[str, Any]]) -> grpc.aio.Channel:
    """The proxy's channel to the writer: plaintext, or TLS (mutual with a client certificate)
    when ``--writer-tls-ca`` or ``--writer-tls-cert`` is given. An unreadable file: OSError."""
    if not cfg.writer_tls:
        return grpc.aio.insecure_channel(cfg.writer, options=options)
    creds = grpc.ssl_channel_credentials(
        root_certificates=cfg.writer_tls_ca.read_bytes() if cfg.writer_tls_ca else None,
        private_key=cfg.writer_tls_key.read_bytes() if cfg.writer_tls_key else None,
        certificate_chain=cfg.writer_tls_cert.read_bytes() if cfg.writer_tls_cert else None,
    )
    if cfg.writer_tls_server_name:
        options = [*options, ("grpc.ssl_target_name_override", cfg.writer_tls_server_name)]
    return grpc.aio.secure_channel(cfg.writer, creds, options=options)


def open_keystore(cfg: WalletConfig) -> Keystore:
    """A wrong passphrase, a tampered key file, a keystore of another version: KeystoreError."""
    return Keystore.open(cfg.keystore, read_passphrase(cfg), kdf=cfg.kdf, limits=cfg.limits)


class WalletServer:
    """One wallet process: serve WalletService and the WriterService proxy, stop cleanly."""

    def __init__(self, cfg: WalletConfig, keystore: Keystore) -> None:
        self.cfg = cfg
        self.keystore = keystore
        self.registry = CollectorRegistry()
        self.metrics = WalletMetrics(self.registry)
        self.metrics.bind_keys(
            lambda: len(keystore.list_keys()),
            lambda: sum(1 for k in keystore.list_keys() if k.retired),
        )
        options = [
            ("grpc.max_receive_message_length", cfg.max_message_bytes),
            ("grpc.max_send_message_length", cfg.max_message_bytes),
        ]
        self.shell = ServiceShell(
            cfg, self.registry, _log, options=options,
            data_rpcs_concurrent_max=cfg.inflight_requests_max,
            data_rpcs_flag="--inflight-requests-max",
        )  # fmt: skip
        self._writer = writer_channel(cfg, options)
        signer = Signer(keystore, self.metrics, validation.DEFAULT_LIMITS)
        proxy = WriterProxyServicer(
            signer, self._writer, self.metrics, validation.DEFAULT_LIMITS,
            cfg.forward_timeout_seconds,
        )  # fmt: skip
        # A field the schema does not know is refused (INVALID_ARGUMENT, naming its path), as
        # the writer does: the wallet never signs a record holding bytes its signature would
        # not cover, and a refused request takes no vote sequence.
        wallet = WalletServicer(keystore, signer)
        self.shell.add_service(
            _WALLET, decoding_generic_handler(_WALLET, wallet, refuse_unknown=True)
        )
        self.shell.add_service(
            _WRITER, decoding_generic_handler(_WRITER, proxy, refuse_unknown=True)
        )
        self._stopped = False

    @property
    def bound_port(self) -> int:
        return self.shell.bound_port

    async def start(self) -> None:
        await self.shell.start()
        cfg = self.cfg
        log_event(
            _log, logging.INFO, "wallet started",
            listen=cfg.listen, writer=cfg.writer, writer_tls=cfg.writer_tls,
            metrics_listen=cfg.metrics_listen,
            health_listen=cfg.health_listen or None, tls=self.shell.tls, mtls=self.shell.mtls,
            keystore=str(cfg.keystore), **self.keystore.describe(),
        )  # fmt: skip

    async def stop(self) -> None:
        """Drain (health NOT_SERVING, in-flight calls finish), then close the keystore."""
        if self._stopped:
            return
        self._stopped = True
        log_event(_log, logging.INFO, "wallet draining")
        try:
            await self.shell.drain()
            await self._writer.close()
        finally:
            self.keystore.close()
        log_event(_log, logging.INFO, "wallet stopped")


async def serve(cfg: WalletConfig) -> None:
    stop = stop_signal()  # before the slow part (Argon2id), so a SIGTERM then still drains
    keystore = await asyncio.to_thread(open_keystore, cfg)
    server = WalletServer(cfg, keystore)
    try:
        await server.start()
        await stop.wait()
    finally:
        await server.stop()
