"""One config builder: flags, ``STEMEDB_*`` environment variables, defaults and bounds, all
generated from one frozen dataclass per service.

A field declared with :func:`setting` is a flag. Its default is written once, in the dataclass;
the flag is ``--field-name`` unless the metadata names another, and every long flag
``--some-flag`` may be given as ``STEMEDB_SOME_FLAG`` instead (DESIGN section 3): the command line
wins over the environment, and the environment over the default. Boolean settings are switches
(``--retention``), and read ``1/true/yes/on`` or ``0/false/no/off`` (any case) from the
environment. A numeric setting may carry inclusive ``bounds``; :func:`check_settings` (called by
the dataclass's ``__post_init__``) refuses a value outside them, naming the field and the flag.

A plain field (no :func:`setting`) is a flag too, its type giving the parser, so a field added in
a hurry is never silently missing from the command line. Fields declared with :func:`derived`
(for example the trusted keys read from ``--trusted-keys``) never become flags.
"""

from __future__ import annotations

import argparse
import dataclasses
import functools
import os
import typing
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, ClassVar, NoReturn, TypeVar

__all__ = [
    "EVENT_LOOPS",
    "EnvArgumentParser",
    "ServerSettings",
    "bounds_of",
    "build_parser",
    "check_settings",
    "config_from_args",
    "derived",
    "env_name",
    "optional_host_port",
    "optional_path",
    "parse_host_port",
    "setting",
    "unix_socket_path",
]

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}
_META = "stemedb.setting"
_DERIVED = "stemedb.derived"

_Config = TypeVar("_Config")


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
                    choices = kwargs.get("choices")
                    if choices is not None and kwargs["default"] not in choices:
                        self.error(f"{var}={raw!r}: expected one of {', '.join(choices)}")
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


UNIX_PREFIX = "unix:"


def unix_socket_path(listen: str) -> Path | None:
    """The path of a ``unix:PATH`` address, None for any other address."""
    return Path(listen[len(UNIX_PREFIX) :]) if listen.startswith(UNIX_PREFIX) else None


def optional_host_port(value: str) -> None:
    """``HOST:PORT``, or empty for "off"."""
    if value:
        parse_host_port(value)


@dataclasses.dataclass(frozen=True)
class _Setting:
    help: str
    flag: str | None = None
    parse: Callable[[str], Any] | None = None
    check: Callable[[Any], object] | None = None
    bounds: tuple[float, float] | None = None
    choices: tuple[str, ...] | None = None
    switch: bool = False


def setting(
    default: Any = dataclasses.MISSING,
    *,
    help: str,
    flag: str | None = None,
    parse: Callable[[str], Any] | None = None,
    check: Callable[[Any], object] | None = None,
    bounds: tuple[float, float] | None = None,
    choices: tuple[str, ...] | None = None,
    default_factory: Callable[[], Any] | None = None,
) -> Any:
    """A dataclass field that is also a flag and an environment variable.

    ``parse`` turns the text of the flag into the value (default: from the field's type:
    ``int``, ``float``, ``str``, ``Path``, ``bool`` (a switch), or one of them ``| None``, where
    the empty string is None); ``check`` is called on the value and raises ValueError when it is
    unacceptable; ``bounds`` is an inclusive (low, high) range for a number.
    """
    meta = {_META: _Setting(help, flag, parse, check, bounds, choices)}
    if default_factory is not None:
        return dataclasses.field(default_factory=default_factory, metadata=meta)
    return dataclasses.field(default=default, metadata=meta)


def derived(default: Any = dataclasses.MISSING) -> Any:
    """A config field that is not a flag: computed from the flags, or internal."""
    return dataclasses.field(default=default, metadata={_DERIVED: True})


_SCALARS: dict[Any, Callable[[str], Any]] = {int: int, float: float, str: str, Path: Path}


def _parse_for(hint: Any, name: str) -> Callable[[str], Any]:
    args = typing.get_args(hint)
    if args and type(None) in args:
        inner = [a for a in args if a is not type(None)]
        if len(inner) == 1 and inner[0] in _SCALARS:
            base = _SCALARS[inner[0]]
            return lambda text: None if text == "" else base(text)
    if hint in _SCALARS:
        return _SCALARS[hint]
    # A programming error in a config class, found when its parser is first built.
    raise TypeError(f"config field {name} of type {hint}: give it setting(parse=...) or derived()")


@functools.cache
def _settings(cls: type) -> tuple[tuple[dataclasses.Field[Any], _Setting], ...]:
    """Every field of ``cls`` but the derived ones, with its flag metadata. A plain field (no
    ``setting``) is a flag too, with its name as help, so a field added in a hurry is never
    silently missing from the command line."""
    hints = typing.get_type_hints(cls)
    out = []
    for f in dataclasses.fields(cls):
        if f.metadata.get(_DERIVED):
            continue
        meta = f.metadata.get(_META) or _Setting(help=f.name.replace("_", " "))
        hint = hints[f.name]
        if hint is bool:
            meta = dataclasses.replace(meta, switch=True)
        elif meta.parse is None:
            meta = dataclasses.replace(meta, parse=_parse_for(hint, f.name))
        out.append((f, meta))
    return tuple(out)


def _flag(f: dataclasses.Field[Any], meta: _Setting) -> str:
    return meta.flag or "--" + f.name.replace("_", "-")


def _default(f: dataclasses.Field[Any]) -> Any:
    if f.default is not dataclasses.MISSING:
        return f.default
    if f.default_factory is not dataclasses.MISSING:
        return f.default_factory()
    raise TypeError(f"setting {f.name} has no default")  # a programming error in a config class


def bounds_of(cls: type) -> dict[str, tuple[float, float]]:
    """Field name -> inclusive (low, high) of every bounded setting of ``cls``."""
    return {f.name: meta.bounds for f, meta in _settings(cls) if meta.bounds is not None}


def check_settings(config: object) -> None:
    """Raise ValueError naming the field and its flag when a setting is out of its bounds or
    fails its check. Call it from ``__post_init__``."""
    cls: type = type(config)
    for f, meta in _settings(cls):
        value = getattr(config, f.name)
        flag = _flag(f, meta)
        if meta.bounds is not None:
            low, high = meta.bounds
            if not low <= value <= high:
                raise ValueError(f"{f.name} ({flag}) must be in [{low:g}, {high:g}], got {value}")
        if meta.choices is not None and value not in meta.choices:
            raise ValueError(f"{flag}: {value!r} is not one of {', '.join(meta.choices)}")
        if meta.check is not None:
            try:
                meta.check(value)
            except ValueError as exc:
                raise ValueError(f"{flag}: {exc}") from None


def build_parser(cls: type, prog: str, description: str) -> EnvArgumentParser:
    """The command line of ``cls``: one flag per setting, its default taken from the field."""
    parser = EnvArgumentParser(prog=prog, description=description)
    for f, meta in _settings(cls):
        default = _default(f)
        text = meta.help
        if meta.bounds is not None:
            text += f" (in [{meta.bounds[0]:g}, {meta.bounds[1]:g}])"
        if meta.switch:
            parser.add_argument(
                _flag(f, meta), dest=f.name, action="store_true", default=default, help=text
            )
            continue
        flag = _flag(f, meta)
        parser.add_argument(
            flag,
            dest=f.name,
            metavar=None if meta.choices else flag[2:].replace("-", "_").upper(),
            type=meta.parse,
            default=default,
            choices=meta.choices,
            help=f"{text}; default {default if default != '' else 'none'}",
        )
    return parser


def config_from_args(
    cls: type[_Config],
    argv: Sequence[str] | None,
    *,
    prog: str,
    description: str,
    derive: Callable[[dict[str, Any]], Mapping[str, Any]] | None = None,
) -> _Config:
    """Parse ``argv`` (and STEMEDB_* variables) into a validated ``cls``; exit 2 on bad input.

    ``derive`` may compute fields that are not flags from the parsed ones; a ValueError or
    OSError it raises is reported like a bad flag.
    """
    parser = build_parser(cls, prog, description)
    values = dict(vars(parser.parse_args(argv)))
    try:
        if derive is not None:
            values.update(derive(values))
        return cls(**values)
    except (OSError, ValueError) as exc:
        _fail(parser, str(exc))


def _fail(parser: argparse.ArgumentParser, message: str) -> NoReturn:
    parser.error(message)


def optional_path(value: str) -> Path | None:
    """A path, or None for the empty string."""
    return Path(value) if value else None


EVENT_LOOPS = ("asyncio", "uvloop")


@dataclasses.dataclass(frozen=True)
class ServerSettings:
    """The settings every StemeDB server has; a service's config class extends it and may
    redeclare a field to give it its own default (``listen``, ``metrics_listen``, ...)."""

    # Checked by __post_init__ (HOST:PORT, or unix:PATH where LISTEN_UNIX_ALLOWED).
    listen: str = setting("127.0.0.1:0", help="gRPC address HOST:PORT")
    metrics_listen: str = setting(
        "127.0.0.1:0", help="Prometheus /metrics HOST:PORT", check=parse_host_port
    )
    health_listen: str = setting(
        "",
        help="extra plaintext HOST:PORT serving only grpc.health.v1 (for probes when TLS is on); "
        "empty: off",
        check=optional_host_port,
    )
    tls_cert: Path | None = setting(
        None, help="PEM server certificate (enables TLS)", parse=optional_path
    )
    tls_key: Path | None = setting(None, help="PEM private key of --tls-cert", parse=optional_path)
    tls_client_ca: Path | None = setting(
        None, help="PEM CA: require client certificates (mutual TLS)", parse=optional_path
    )
    shutdown_grace_seconds: float = setting(
        10.0, help="in-flight RPCs get this long on SIGTERM", bounds=(0.0, 300.0)
    )
    log_level: str = setting("INFO", help="DEBUG, INFO, WARNING or ERROR")
    # A service whose ``listen`` may be ``unix:PATH`` (served by the shell, mode 0600) says so.
    LISTEN_UNIX_ALLOWED: ClassVar[bool] = False
    log_format: str = setting(
        "auto",
        help="json (one object per line), console (readable, coloured on a terminal) or auto "
        "(console when stderr is a terminal, else json)",
        choices=("json", "console", "auto"),
    )

    event_loop: str = setting(
        "asyncio",
        help="the event loop: asyncio (the standard library's) or uvloop (libuv's)",
        choices=EVENT_LOOPS,
    )

    def __post_init__(self) -> None:
        for name in ("tls_cert", "tls_key", "tls_client_ca"):
            value = getattr(self, name)
            if value is not None and not isinstance(value, Path):
                object.__setattr__(self, name, Path(value))
        if (self.tls_cert is None) != (self.tls_key is None):
            raise ValueError("--tls-cert and --tls-key go together")
        if self.tls_client_ca is not None and self.tls_cert is None:
            raise ValueError("--tls-client-ca needs --tls-cert and --tls-key")
        # Also when a service redeclares the field (with its own default) and no check.
        for name in ("listen", "metrics_listen"):
            value = getattr(self, name)
            if name == "listen" and self.LISTEN_UNIX_ALLOWED and value.startswith(UNIX_PREFIX):
                if value == UNIX_PREFIX:
                    raise ValueError("--listen: unix: needs a path")
                continue
            try:
                parse_host_port(value)
            except ValueError as exc:
                raise ValueError(f"--{name.replace('_', '-')}: {exc}") from None
        check_settings(self)
