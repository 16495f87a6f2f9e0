"""``stemedb-writer``: the StemeDB writer service."""

from __future__ import annotations

import asyncio
import logging
import sys

from prometheus_client import disable_created_metrics

from stemedb.runtime import configure_json_logging, log_event
from stemedb.wal import WalError
from stemedb.writer._config import config_from_args
from stemedb.writer._server import serve

_log = logging.getLogger("stemedb.writer")


def main(argv: list[str] | None = None) -> int:
    cfg = config_from_args(argv)
    configure_json_logging(cfg.log_level)
    disable_created_metrics()  # type: ignore[no-untyped-call]
    try:
        asyncio.run(serve(cfg))
    except WalError as exc:
        # Corruption, a second writer, an unusable directory: refuse to start, say why.
        log_event(_log, logging.CRITICAL, "writer cannot start", error=str(exc))
        print(f"stemedb-writer: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:
        log_event(_log, logging.CRITICAL, "writer cannot start", error=str(exc))
        print(f"stemedb-writer: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
