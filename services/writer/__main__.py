"""``stemedb-writer``: the StemeDB writer service."""

from __future__ import annotations

import logging
import sys

from stemedb.errors import StemeError
from stemedb.runtime import run_service
from stemedb.writer._config import config_from_args
from stemedb.writer._server import serve

_log = logging.getLogger("stemedb.writer")


def main(argv: list[str] | None = None) -> int:
    cfg = config_from_args(argv)
    # Corruption, a second writer, an unusable directory or port: refuse to start, say why.
    return run_service(
        "stemedb-writer", _log, cfg.log_level, lambda: serve(cfg), (StemeError, OSError),
        log_format=cfg.log_format, event_loop=cfg.event_loop,
    )  # fmt: skip


if __name__ == "__main__":
    sys.exit(main())
