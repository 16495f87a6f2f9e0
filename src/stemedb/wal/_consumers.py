"""Consumer checkpoints under ``consumers/`` and the retention rule that reads them."""

from __future__ import annotations

import itertools
import json
import logging
import re
import time
from dataclasses import dataclass
from pathlib import Path

from stemedb.fsio import atomic_replace, fsync_dir
from stemedb.wal._encoder import checksum
from stemedb.wal._segment import list_segments

__all__ = [
    "CONSUMERS_DIR",
    "ConsumerCheckpoint",
    "apply_retention",
    "read_consumer_checkpoints",
    "write_consumer_checkpoint",
]

CONSUMERS_DIR = "consumers"
_NAME_RE = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$")
_log = logging.getLogger("stemedb.wal")


@dataclass(frozen=True)
class ConsumerCheckpoint:
    """The last record a named consumer (an ingestor) applied: its LSN and stored checksum."""

    name: str
    lsn: int
    checksum: bytes
    updated_ns: int


def _body(cp: ConsumerCheckpoint) -> dict[str, object]:
    return {
        "name": cp.name,
        "lsn": cp.lsn,
        "checksum": cp.checksum.hex(),
        "updated_ns": cp.updated_ns,
    }


def _seal(body: dict[str, object]) -> str:
    # The file's own checksum covers the canonical JSON of the other fields, so a torn or edited
    # checkpoint is detected instead of silently moving a consumer's position.
    return checksum(json.dumps(body, sort_keys=True, separators=(",", ":")).encode()).hex()


def write_consumer_checkpoint(dir: Path, cp: ConsumerCheckpoint, *, sync: bool = True) -> None:
    """Write ``consumers/<name>.json`` atomically (``stemedb.fsio.atomic_replace``); durable
    (file and directory fsynced) when ``sync``."""
    if not _NAME_RE.match(cp.name):
        raise ValueError(f"invalid consumer name {cp.name!r}: use [A-Za-z0-9_.-], max 128")
    if cp.lsn < 0:
        raise ValueError(f"consumer LSN must be >= 0, got {cp.lsn}")
    directory = Path(dir) / CONSUMERS_DIR
    created = not directory.exists()
    directory.mkdir(parents=True, exist_ok=True)
    if created and sync:
        fsync_dir(Path(dir))
    body = _body(cp)
    body["seal"] = _seal(_body(cp))
    data = (json.dumps(body, sort_keys=True) + "\n").encode()
    atomic_replace(directory / f"{cp.name}.json", data, sync=sync)


def read_consumer_checkpoints(dir: Path) -> dict[str, ConsumerCheckpoint]:
    """Every valid checkpoint under ``consumers/``; an invalid file raises ValueError naming it."""
    directory = Path(dir) / CONSUMERS_DIR
    result: dict[str, ConsumerCheckpoint] = {}
    if not directory.is_dir():
        return result
    for path in sorted(directory.glob("*.json")):
        try:
            raw = json.loads(path.read_text())
            cp = ConsumerCheckpoint(
                name=str(raw["name"]),
                lsn=int(raw["lsn"]),
                checksum=bytes.fromhex(str(raw["checksum"])),
                updated_ns=int(raw["updated_ns"]),
            )
            seal_ok = raw.get("seal") == _seal(_body(cp))
        except (ValueError, KeyError, TypeError) as exc:
            raise ValueError(f"consumer checkpoint {path} is unreadable: {exc}") from None
        if not seal_ok:
            raise ValueError(f"consumer checkpoint {path} fails its checksum")
        if path.stem != cp.name:
            raise ValueError(f"consumer checkpoint {path} names consumer {cp.name!r}")
        result[cp.name] = cp
    return result


def apply_retention(
    dir: Path,
    stale_seconds: float | None = None,
    head_lsn: int | None = None,
    observer: object | None = None,
) -> list[Path]:
    """Delete segments whose every record is below every live consumer's checkpoint.

    With no consumer registered nothing is deleted: "below every checkpoint" of nobody would
    otherwise mean the whole log. The last segment is never deleted, so the log always knows
    where its LSNs continue. With ``stale_seconds``, a consumer whose checkpoint is behind
    ``head_lsn`` and was last updated longer ago than that is ignored (logged, and reported to
    ``observer.on_retention_ignored`` when it has one); when every consumer is stale, nothing
    is deleted.
    """
    directory = Path(dir)
    checkpoints = read_consumer_checkpoints(directory)
    ignored = _stale_consumers(checkpoints, stale_seconds, head_lsn)
    hook = getattr(observer, "on_retention_ignored", None)
    if hook is not None:
        try:
            hook(sorted(ignored))
        except Exception:
            _log.exception("WAL observer raised; ignored")
    live = [cp for name, cp in checkpoints.items() if name not in ignored]
    if not live:
        return []
    floor_lsn = min(cp.lsn for cp in live)
    segments = list_segments(directory)
    deleted = []
    for (_first, path), (next_first, _next_path) in itertools.pairwise(segments):
        if next_first - 1 >= floor_lsn:  # keep the segment that holds the checkpointed record
            break
        path.unlink()
        deleted.append(path)
    if deleted:
        fsync_dir(directory)
        _log.info("WAL retention deleted %d segment(s) up to LSN %d", len(deleted), floor_lsn)
    return deleted


def _stale_consumers(
    checkpoints: dict[str, ConsumerCheckpoint], stale_seconds: float | None, head_lsn: int | None
) -> set[str]:
    if stale_seconds is None:
        return set()
    now_ns = time.time_ns()
    stale = set()
    for cp in checkpoints.values():
        age_seconds = (now_ns - cp.updated_ns) / 1e9
        behind = head_lsn is None or cp.lsn < head_lsn
        if behind and age_seconds > stale_seconds:
            stale.add(cp.name)
            _log.warning(
                "WAL retention ignores consumer %s: its checkpoint (LSN %d) has not moved for "
                "%.0f s (retention_consumer_stale_seconds=%s); segments it still needs may be "
                "deleted, and it must then be rebuilt (docs/operations.md)",
                cp.name,
                cp.lsn,
                age_seconds,
                stale_seconds,
            )
    return stale
