"""``stemedb-ingestor``: tail the WAL into RocksDB and serve StoreService reads."""

from __future__ import annotations

import logging
import sys

from stemedb.errors import StemeError
from stemedb.ingestor._config import config_from_args
from stemedb.ingestor._server import serve
from stemedb.runtime import run_service

_log = logging.getLogger("stemedb.ingestor")


def main(argv: list[str] | None = None) -> int:
    cfg = config_from_args(argv)
    # RocksDB reports a locked or unreadable database as a plain Exception: "failed", exit 2.
    return run_service(
        "stemedb-ingestor", _log, cfg.log_level, lambda: serve(cfg), (OSError, StemeError),
        other_errors=(Exception,), log_format=cfg.log_format, event_loop=cfg.event_loop,
    )  # fmt: skip


if __name__ == "__main__":
    sys.exit(main())
