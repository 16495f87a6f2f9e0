"""``stemedb-wallet``: the StemeDB agent wallet (a signing sidecar)."""

from __future__ import annotations

import asyncio
import logging
import sys

from prometheus_client import disable_created_metrics
from stemedb.wallet._config import config_from_args, read_passphrase
from stemedb.wallet._errors import KeystoreError
from stemedb.wallet._keystore import Keystore
from stemedb.wallet._server import serve

from stemedb.runtime import configure_json_logging, log_event

_log = logging.getLogger("stemedb.wallet")


def _refuse(exc: BaseException) -> int:
    log_event(_log, logging.CRITICAL, "wallet cannot start", error=str(exc))
    print(f"stemedb-wallet: {exc}", file=sys.stderr)
    return 2


def main(argv: list[str] | None = None) -> int:
    cfg = config_from_args(argv)
    configure_json_logging(cfg.log_level)
    disable_created_metrics()  # type: ignore[no-untyped-call]
    try:
        # A wrong passphrase, a tampered key file, a keystore of another version: exit 2.
        keystore = Keystore.open(cfg.keystore, read_passphrase(cfg), kdf=cfg.kdf, limits=cfg.limits)
    except (KeystoreError, OSError) as exc:
        return _refuse(exc)
    try:
        asyncio.run(serve(cfg, keystore))
    except OSError as exc:
        keystore.close()
        return _refuse(exc)
    return 0


if __name__ == "__main__":
    sys.exit(main())
