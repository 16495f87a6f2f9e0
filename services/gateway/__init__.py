"""stemedb.gateway: HTTP/JSON and the explorer web page over the writer and the ingestor.

``stemedb-gateway`` (:mod:`stemedb.gateway.__main__`, :mod:`stemedb.gateway._server`) serves
:func:`build_app` with uvicorn.
The routes, JSON shapes and status mapping are DESIGN section 10; docs/gateway.md is the manual.
"""

from __future__ import annotations

from stemedb.gateway._app import build_app
from stemedb.gateway._config import DEFAULT_LISTEN, GatewayConfig, config_from_args
from stemedb.gateway._errors import PROBLEM_JSON, GatewayError

__all__ = ["DEFAULT_LISTEN", "PROBLEM_JSON", "GatewayConfig", "GatewayError", "build_app",
           "config_from_args"]  # fmt: skip
