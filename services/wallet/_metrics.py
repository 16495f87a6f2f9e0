"""The wallet's Prometheus metrics: signatures by kind, keys, sequence reservations, proxy errors.

Labels are bounded: record kinds and gRPC code names, never key names or public keys.
"""

from __future__ import annotations

from collections.abc import Callable

from prometheus_client import CollectorRegistry, Counter, Gauge

__all__ = ["WalletMetrics"]

_KINDS = ("assertion", "vote", "epoch")


class WalletMetrics:
    """Every metric of one wallet process, registered in ``registry``."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.signatures = Counter(
            "stemedb_wallet_signatures",
            "Signatures made by the wallet, by record kind.",
            ["kind"],
            registry=registry,
        )
        for kind in _KINDS:
            self.signatures.labels(kind)
        self.proxied_records = Counter(
            "stemedb_wallet_proxied_records",
            "Records forwarded to the writer by the WriterService proxy, by whether the wallet "
            "signed them (signed) or they arrived signed (passed).",
            ["how"],
            registry=registry,
        )
        for how in ("signed", "passed"):
            self.proxied_records.labels(how)
        self.writer_errors = Counter(
            "stemedb_wallet_writer_errors",
            "Errors the writer answered to proxied appends (passed to the agent unchanged), by "
            "gRPC code.",
            ["grpc_code"],
            registry=registry,
        )
        self.keys = Gauge("stemedb_wallet_keys", "Keys in the keystore.", registry=registry)
        self.retired_keys = Gauge(
            "stemedb_wallet_retired_keys", "Retired keys in the keystore.", registry=registry
        )

    def bind_keys(self, keys: Callable[[], int], retired: Callable[[], int]) -> None:
        self.keys.set_function(lambda: float(keys()))
        self.retired_keys.set_function(lambda: float(retired()))
