"""``stemedb-ingestor``: tail the WAL into RocksDB and serve StoreService reads."""

from __future__ import annotations

import asyncio
import logging
import sys

from prometheus_client import disable_created_metrics

from stemedb.ingestor._config import config_from_args
from stemedb.ingestor._errors import SchemaMismatch
from stemedb.ingestor._server import serve
from stemedb.runtime import configure_json_logging, log_event

_log = logging.getLogger("stemedb.ingestor")


def main(argv: list[str] | None = None) -> int:
    cfg = config_from_args(argv)
    configure_json_logging(cfg.log_level)
    disable_created_metrics()  # type: ignore[no-untyped-call]
    try:
        return asyncio.run(serve(cfg))
    except (OSError, SchemaMismatch) as exc:
        log_event(_log, logging.CRITICAL, "ingestor cannot start", error=str(exc))
        print(f"stemedb-ingestor: {exc}", file=sys.stderr)
        return 2
    except Exception as exc:
        # RocksDB reports a locked or unreadable database as a plain Exception.
        log_event(_log, logging.CRITICAL, "ingestor failed", error=repr(exc))
        print(f"stemedb-ingestor: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
