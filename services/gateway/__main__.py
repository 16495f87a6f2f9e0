"""``stemedb-gateway``: serve the HTTP/JSON API and the explorer with uvicorn (see ``_server``)."""

from __future__ import annotations

import sys
from collections.abc import Sequence

from stemedb.gateway._config import config_from_args
from stemedb.gateway._server import serve
from stemedb.runtime import configure_logging

__all__ = ["main"]


def main(argv: Sequence[str] | None = None) -> int:
    config = config_from_args(argv)
    configure_logging(config.log_level.upper(), config.log_format, "gateway")
    serve(config)
    return 0


if __name__ == "__main__":
    sys.exit(main())
