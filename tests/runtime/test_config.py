"""The config builder: flags, STEMEDB_* variables, defaults and bounds from one dataclass."""

from __future__ import annotations

import os
from dataclasses import dataclass, fields
from pathlib import Path

import pytest

from stemedb.ingestor import IngestorConfig
from stemedb.ingestor import config_from_args as ingestor_config
from stemedb.runtime import (
    ServerSettings,
    bounds_of,
    build_parser,
    config_from_args,
    derived,
    setting,
)
from stemedb.writer import WriterConfig
from stemedb.writer import config_from_args as writer_config
from stemedb.writer._config import build_parser as writer_parser


@dataclass(frozen=True)
class _Toy(ServerSettings):
    count: int = setting(3, bounds=(1, 5), help="how many")
    fast: bool = setting(False, help="go fast")
    mode: str = setting("a", flag="--the-mode", choices=("a", "b"), help="which")
    plain: float | None = None  # no setting(): a flag all the same, parsed by its type
    computed: int = derived(0)  # never a flag


def _toy(argv: list[str]) -> _Toy:
    return config_from_args(_Toy, argv, prog="toy", description="a toy")


def test_a_field_the_builder_cannot_parse_is_refused_at_once() -> None:
    @dataclass(frozen=True)
    class Odd(ServerSettings):
        keys: frozenset[bytes] = frozenset()

    with pytest.raises(TypeError, match="config field keys"):
        build_parser(Odd, "odd", "an odd one")


def test_writer_defaults_are_the_contract() -> None:
    cfg = writer_config([])
    assert (cfg.listen, cfg.metrics_listen) == ("127.0.0.1:50051", "127.0.0.1:9101")
    assert cfg.wal_dir == Path("./data/wal")
    assert (cfg.sync_mode, cfg.retention, cfg.require_signatures) == ("fdatasync", False, False)
    assert (cfg.inflight_requests_max, cfg.inflight_records_max) == (1024, 200_000)
    assert cfg.max_message_bytes == 20 * 1024 * 1024
    assert cfg.segment_size_bytes == 64 * 1024 * 1024
    assert (cfg.fsync_warn_seconds, cfg.shutdown_grace_seconds) == (0.5, 10.0)
    assert cfg.verify_workers == (os.cpu_count() or 1)
    assert (cfg.tls_cert, cfg.trusted_keys, cfg.health_listen) == (None, None, "")


def test_every_setting_default_comes_from_the_dataclass() -> None:
    # Parsing no flags gives exactly the dataclass's defaults, for every service.
    for cls, parse in ((WriterConfig, writer_config), (IngestorConfig, ingestor_config)):
        parsed, default = parse([]), cls()
        for f in fields(cls):
            if f.name != "verify_workers":  # a default_factory: compared above
                assert getattr(parsed, f.name) == getattr(default, f.name), f.name


def test_writer_flags_and_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    keys = tmp_path / "keys"
    keys.write_text("ab" * 32 + "  # one key\n")
    monkeypatch.setenv("STEMEDB_SYNC", "none")
    monkeypatch.setenv("STEMEDB_REQUIRE_SIGNATURES", "yes")
    monkeypatch.setenv("STEMEDB_TRUSTED_KEYS", str(keys))
    monkeypatch.setenv("STEMEDB_INFLIGHT_REQUESTS_MAX", "9")
    cfg = writer_config(["--inflight-requests-max", "7", "--retention"])
    assert (cfg.sync_mode, cfg.require_signatures, cfg.retention) == ("none", True, True)
    assert cfg.inflight_requests_max == 7  # the command line wins over the environment
    assert cfg.trusted_keys == frozenset({bytes.fromhex("ab" * 32)})
    assert cfg.trusted_keys_file == keys
    assert "--trusted-keys" in writer_parser().format_help()


@pytest.mark.parametrize(
    ("argv", "env", "message"),
    [
        (["--tls-cert", "c.pem"], {}, "--tls-cert and --tls-key go together"),
        (["--tls-client-ca", "ca.pem"], {}, "--tls-client-ca needs --tls-cert"),
        (["--listen", "nowhere"], {}, "--listen: 'nowhere' is not HOST:PORT"),
        (["--inflight-requests-max", "0"], {}, "--inflight-requests-max"),
        ([], {"STEMEDB_SYNC": "sometimes"}, "STEMEDB_SYNC='sometimes'"),
        ([], {"STEMEDB_RETENTION": "maybe"}, "STEMEDB_RETENTION='maybe'"),
        (["--trusted-keys", "/nonexistent/keys"], {}, "--trusted-keys"),
    ],
)
def test_writer_bad_input_names_the_flag(
    argv: list[str], env: dict[str, str], message: str,
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
) -> None:  # fmt: skip
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    with pytest.raises(SystemExit) as info:
        writer_config(argv)
    assert info.value.code == 2
    assert message in capsys.readouterr().err


def test_ingestor_has_the_server_flags(tmp_path: Path) -> None:
    cfg = ingestor_config(
        ["--tls-cert", str(tmp_path / "c"), "--tls-key", str(tmp_path / "k"),
         "--health-listen", "127.0.0.1:9999"]
    )  # fmt: skip
    assert (cfg.tls_cert, cfg.tls_key) == (tmp_path / "c", tmp_path / "k")
    assert cfg.health_listen == "127.0.0.1:9999"
    with pytest.raises(ValueError, match="--tls-client-ca needs"):
        IngestorConfig(tls_client_ca=tmp_path / "ca")


def test_event_loop_flag_runs_the_service_on_that_loop(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import asyncio
    import logging

    import uvloop

    from stemedb.runtime import run_service

    assert writer_config([]).event_loop == "asyncio"
    monkeypatch.setenv("STEMEDB_EVENT_LOOP", "uvloop")
    cfg = writer_config([])
    assert cfg.event_loop == "uvloop"
    loops: list[asyncio.AbstractEventLoop] = []

    async def serve() -> int:
        loops.append(asyncio.get_running_loop())
        return 0

    log = logging.getLogger("stemedb.test")
    for name in ("uvloop", "asyncio"):
        assert run_service("stemedb-test", log, "INFO", serve, (), event_loop=name) == 0
    assert isinstance(loops[0], uvloop.Loop)
    assert not isinstance(loops[1], uvloop.Loop)
    monkeypatch.setenv("STEMEDB_EVENT_LOOP", "trio")
    with pytest.raises(SystemExit):
        writer_config([])
    assert "STEMEDB_EVENT_LOOP='trio': expected one of asyncio, uvloop" in capsys.readouterr().err


def test_a_new_setting_is_a_flag_a_variable_and_a_bound(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    assert (_toy([]).count, _toy([]).fast, _toy([]).mode) == (3, False, "a")
    assert _toy(["--count", "5", "--fast", "--the-mode", "b"]) == _Toy(count=5, fast=True, mode="b")
    monkeypatch.setenv("STEMEDB_COUNT", "4")
    monkeypatch.setenv("STEMEDB_FAST", "ON")
    monkeypatch.setenv("STEMEDB_THE_MODE", "b")
    assert _toy([]) == _Toy(count=4, fast=True, mode="b")
    assert bounds_of(_Toy)["count"] == (1, 5)
    help_text = build_parser(_Toy, "toy", "a toy").format_help()
    assert "--computed" not in help_text and "STEMEDB_COUNT" in help_text
    assert _toy(["--plain", "2.5"]).plain == 2.5 and _toy(["--plain", ""]).plain is None
    assert "(in [1, 5]); default 3" in help_text
    with pytest.raises(SystemExit):
        _toy(["--count", "6"])
    assert "count (--count) must be in [1, 5], got 6" in capsys.readouterr().err
    monkeypatch.setenv("STEMEDB_COUNT", "four")
    with pytest.raises(SystemExit):
        _toy([])
    assert "STEMEDB_COUNT='four'" in capsys.readouterr().err
    with pytest.raises(ValueError, match=r"count \(--count\) must be in \[1, 5\], got 0"):
        _Toy(count=0)
