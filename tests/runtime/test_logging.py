"""Logs: JSON lines for machines (the default off a terminal), readable coloured lines for a
person (``--log-format console``, or auto on a terminal), checked in a real writer on a pty."""

from __future__ import annotations

import io
import json
import logging
import os
import pty
import re
import signal
import subprocess
from pathlib import Path

import pytest

from stemedb.runtime import ConsoleFormatter, ServerSettings, configure_logging, log_event
from tests.ptylib import PtyProcess, strip_ansi
from tests.support import BIN, free_port, wait_until

# HH:MM:SS.mmm LEVEL service event key=value...
_CONSOLE_LINE = r"^\d\d:\d\d:\d\d\.\d{3} INFO  writer started listen=127\.0\.0\.1:\d+ "


def _record(name: str, level: int, event: str, **fields: object) -> logging.LogRecord:
    record = logging.LogRecord(name, level, __file__, 1, event, None, None)
    record.fields = fields
    return record


def test_console_line_has_time_level_service_event_and_fields() -> None:
    plain = ConsoleFormatter("writer", colour=False)
    line = plain.format(
        _record("stemedb.writer", logging.WARNING, "slow fsync", fsync_seconds=0.25, path="a b")
    )
    assert re.fullmatch(
        r'\d\d:\d\d:\d\d\.\d{3} WARNING writer slow fsync fsync_seconds=0\.25 path="a b"', line
    ), line
    assert "\x1b[" not in line
    config = '{"listen": "127.0.0.1:1", "n": 2}'
    nested = ConsoleFormatter("ingestor").format(
        _record("stemedb.ingestor", logging.INFO, "ingestor started", config=config, tls=False)
    )
    # The event's leading service name is not repeated after the source column.
    assert re.fullmatch(
        r'\d\d:\d\d:\d\d\.\d{3} INFO  ingestor started config=\{"listen":"127\.0\.0\.1:1","n":2\} '
        r"tls=false",
        nested,
    ), nested
    wal = plain.format(_record("stemedb.wal", logging.INFO, "wal opened", segments=2))
    assert " INFO  writer/wal opened segments=2" in wal, wal
    # Only a whole leading word is dropped, and never the whole event.
    for event in ("writers joined", "writer"):
        line = plain.format(_record("stemedb.writer", logging.INFO, event))
        assert line.endswith(f" INFO  writer {event}"), line
    other = plain.format(_record("stemedb.wal", logging.INFO, "created a new WAL in data/wal"))
    assert " INFO  writer/wal created a new WAL in data/wal" in other
    coloured = ConsoleFormatter("writer", colour=True).format(
        _record("stemedb.writer", logging.ERROR, "boom", code=7)
    )
    assert "\x1b[31mERROR\x1b[0m" in coloured and "\x1b[36mcode=\x1b[0m7" in coloured


def test_auto_is_json_off_a_terminal_and_console_on_one() -> None:
    stream = io.StringIO()
    root = logging.getLogger()
    saved = (root.handlers[:], root.level)
    try:
        assert configure_logging("INFO", "auto", "writer", stream) == "json"
        log_event(logging.getLogger("stemedb.writer"), logging.INFO, "hello", n=1)
        doc = json.loads(stream.getvalue().splitlines()[-1])
        assert (doc["event"], doc["n"], doc["level"]) == ("hello", 1, "info")
        master, slave = pty.openpty()
        with os.fdopen(slave, "w") as terminal:
            assert configure_logging("INFO", "auto", "writer", terminal) == "console"
            assert configure_logging("INFO", "json", "writer", terminal) == "json"
        os.close(master)
        with pytest.raises(ValueError, match="--log-format: 'fancy'"):
            configure_logging("INFO", "fancy", "writer", stream)
    finally:
        root.handlers[:], level = saved  # leave the root logger as the other tests expect it
        root.setLevel(level)


def test_log_format_setting_refuses_an_unknown_value() -> None:
    assert ServerSettings().log_format == "auto"
    with pytest.raises(ValueError, match="--log-format: 'xml' is not one of json, console, auto"):
        ServerSettings(log_format="xml")


def _writer_argv(tmp_path: Path, *extra: str) -> list[str]:
    return [
        str(BIN / "stemedb-writer"), "--wal-dir", str(tmp_path / "wal"),
        "--listen", f"127.0.0.1:{free_port()}", "--metrics-listen", f"127.0.0.1:{free_port()}",
        "--verify-workers", "1", *extra,
    ]  # fmt: skip


def _no_colour_override() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if k not in ("NO_COLOR", "FORCE_COLOR")}


def test_writer_on_a_terminal_logs_readable_coloured_lines(tmp_path: Path) -> None:
    env = _no_colour_override()
    child = PtyProcess(_writer_argv(tmp_path), env=env)
    try:
        child.wait_for(_CONSOLE_LINE, 60)
        shown = child.text
        assert "\x1b[32mINFO" in shown, "the level is coloured on a terminal"
        assert " INFO  writer/wal created a new WAL in " in strip_ansi(shown), shown
        assert '{"ts"' not in shown, "no JSON on a terminal by default"
    finally:
        code = child.stop(signal.SIGTERM)
    assert code == 0, child.text
    assert re.search(r"writer stopped durable_lsn=0$", strip_ansi(child.text), re.M), child.text


def test_writer_on_a_terminal_with_log_format_json_logs_json(tmp_path: Path) -> None:
    child = PtyProcess(_writer_argv(tmp_path, "--log-format", "json"))
    try:
        child.wait_for(r'"event": "writer started"', 60)
    finally:
        child.stop(signal.SIGTERM)
    lines = [ln for ln in child.text.splitlines() if ln.startswith("{")]
    assert lines and all(json.loads(ln)["ts"].endswith("Z") for ln in lines)
    assert "\x1b[" not in child.text


def _writer_log_into_a_file(tmp_path: Path, log_format: str) -> str:
    log = tmp_path / f"{log_format}.log"
    with log.open("wb") as out:
        argv = _writer_argv(tmp_path / log_format, "--log-format", log_format)
        env = _no_colour_override()
        proc = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT, env=env)
        try:
            wait_until(lambda: "writer started" in log.read_text(), 60, "writer started")
        finally:
            proc.send_signal(signal.SIGTERM)
            assert proc.wait(timeout=60) == 0, log.read_text()
    return log.read_text()


def test_writer_off_a_terminal_logs_json_and_console_on_request(tmp_path: Path) -> None:
    text = _writer_log_into_a_file(tmp_path, "auto")
    assert all(json.loads(ln) for ln in text.splitlines()), text
    text = _writer_log_into_a_file(tmp_path, "console")
    assert re.search(_CONSOLE_LINE, text, flags=re.M), text
    assert "\x1b[" not in text, "no colour into a file"
