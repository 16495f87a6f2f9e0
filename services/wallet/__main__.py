"""``stemedb-wallet``: the StemeDB agent wallet (a signing sidecar)."""

from __future__ import annotations

import logging
import sys

from stemedb.runtime import run_service
from stemedb.wallet._config import config_from_args
from stemedb.wallet._errors import KeystoreError
from stemedb.wallet._server import serve

_log = logging.getLogger("stemedb.wallet")


def main(argv: list[str] | None = None) -> int:
    cfg = config_from_args(argv)
    # No passphrase, a wrong one, a tampered key file, a keystore of another version, a socket
    # another process serves on: refuse to start, exit 2, say why.
    return run_service(
        "stemedb-wallet", _log, cfg.log_level, lambda: serve(cfg), (KeystoreError, OSError),
        event_loop=cfg.event_loop,
    )  # fmt: skip


if __name__ == "__main__":
    sys.exit(main())
