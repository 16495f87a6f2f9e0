"""Channels: plaintext on loopback by default, TLS or mutual TLS when configured."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import grpc

from stemedb.client._errors import ClientError

__all__ = ["DEFAULT_STORE", "DEFAULT_WRITER", "TlsConfig", "aio_channel", "sync_channel"]

DEFAULT_WRITER = "127.0.0.1:50051"
DEFAULT_STORE = "127.0.0.1:50052"

# The writer accepts AppendBatch requests up to 16 MiB (DESIGN section 3); gRPC's default limit
# of 4 MiB would refuse them on the client side first, so both directions get headroom.
MESSAGE_BYTES_MAX = 20 * 1024 * 1024


@dataclass(frozen=True)
class TlsConfig:
    """TLS settings. ``root_ca``: PEM CA bundle to trust (None: the system's roots).
    ``client_cert`` and ``client_key`` (PEM, both or neither): present a client certificate
    (mutual TLS). ``server_name``: the name to check the server certificate against, when it
    differs from the host in the target."""

    root_ca: Path | None = None
    client_cert: Path | None = None
    client_key: Path | None = None
    server_name: str | None = None

    def __post_init__(self) -> None:
        if (self.client_cert is None) != (self.client_key is None):
            raise ValueError("client_cert and client_key go together (mutual TLS needs both)")

    def credentials(self) -> grpc.ChannelCredentials:
        return grpc.ssl_channel_credentials(
            root_certificates=_read(self.root_ca),
            private_key=_read(self.client_key),
            certificate_chain=_read(self.client_cert),
        )


def _read(path: Path | None) -> bytes | None:
    if path is None:
        return None
    try:
        return Path(path).expanduser().read_bytes()
    except OSError as exc:
        raise ClientError(f"{path}: cannot read TLS file: {exc.strerror or exc}") from exc


def _options(tls: TlsConfig | None) -> list[tuple[str, object]]:
    options: list[tuple[str, object]] = [
        ("grpc.max_send_message_length", MESSAGE_BYTES_MAX),
        ("grpc.max_receive_message_length", MESSAGE_BYTES_MAX),
        # Retries are ours (see _retry); gRPC's transparent ones would multiply them.
        ("grpc.enable_retries", 0),
    ]
    if tls is not None and tls.server_name:
        options.append(("grpc.ssl_target_name_override", tls.server_name))
    return options


def sync_channel(target: str, tls: TlsConfig | None) -> grpc.Channel:
    if tls is None:
        return grpc.insecure_channel(target, options=_options(None))
    return grpc.secure_channel(target, tls.credentials(), options=_options(tls))


def aio_channel(target: str, tls: TlsConfig | None) -> grpc.aio.Channel:
    if tls is None:
        return grpc.aio.insecure_channel(target, options=_options(None))
    return grpc.aio.secure_channel(target, tls.credentials(), options=_options(tls))
