"""Command-line flags that can also come from ``STEMEDB_*`` environment variables.

Every long flag ``--some-flag`` may be given as ``STEMEDB_SOME_FLAG`` instead (DESIGN section 3);
the command line wins over the environment, and the environment over the built-in default.
Boolean flags read ``1/true/yes/on`` and ``0/false/no/off`` (any case).
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Sequence
from typing import Any

__all__ = ["EnvArgumentParser", "parse_host_port"]

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}


def env_name(flag: str) -> str:
    return "STEMEDB_" + flag.lstrip("-").replace("-", "_").upper()


class EnvArgumentParser(argparse.ArgumentParser):
    """An ArgumentParser whose long options default to their STEMEDB_* environment variable."""

    def add_argument(self, *args: Any, **kwargs: Any) -> argparse.Action:
        longs = [a for a in args if isinstance(a, str) and a.startswith("--")]
        if longs and kwargs.get("action") != "help":
            var = env_name(longs[0])
            raw = os.environ.get(var)
            help_text = kwargs.get("help", "")
            kwargs["help"] = f"{help_text} [env {var}]".strip()
            if raw is not None:
                if kwargs.get("action") == "store_true":
                    value = raw.strip().lower()
                    if value not in _TRUE | _FALSE:
                        self.error(f"{var}={raw!r}: expected one of 1/0/true/false/yes/no/on/off")
                    kwargs["default"] = value in _TRUE
                else:
                    conv = kwargs.get("type")
                    try:
                        kwargs["default"] = conv(raw) if conv is not None else raw
                    except (TypeError, ValueError) as exc:
                        self.error(f"{var}={raw!r}: {exc}")
        return super().add_argument(*args, **kwargs)

    def parse_args(  # type: ignore[override]
        self, args: Sequence[str] | None = None, namespace: argparse.Namespace | None = None
    ) -> argparse.Namespace:
        return super().parse_args(args, namespace)


def parse_host_port(value: str) -> tuple[str, int]:
    """Split ``HOST:PORT`` (``[v6]:PORT`` for IPv6); raise ValueError with a clear message."""
    host, sep, port = value.rpartition(":")
    if not sep or not host:
        raise ValueError(f"{value!r} is not HOST:PORT")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    try:
        number = int(port)
    except ValueError:
        raise ValueError(f"{value!r}: port {port!r} is not a number") from None
    if not 0 <= number <= 65535:
        raise ValueError(f"{value!r}: port {number} is out of range")
    return host, number
