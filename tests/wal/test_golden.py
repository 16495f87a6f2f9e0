"""Golden WAL files: the on-disk format of docs/wal-format.md, frozen byte for byte.

``tests/testdata/wal-v1/`` holds a small log written by format version 1 (three segments, all
three record types, an empty and a large payload). The encoder must still produce exactly these
bytes, and the reader, verify and dump must still read them: an accidental format change fails
here. Regenerate only for a deliberate new format version:
``STEMEDB_WRITE_GOLDEN=1 pytest tests/wal/test_golden.py``.
"""

from __future__ import annotations

import os
from pathlib import Path

from stemedb.wal import WalReader, dump_wal, verify_wal
from stemedb.wal._encoder import encode_batch, encode_segment_header
from stemedb.wal._segment import segment_name
from stemedb.wal._watermark import encode_watermark

GOLDEN = Path(__file__).resolve().parent.parent / "testdata" / "wal-v1"
TIMESTAMP_NS = 1_764_000_000_000_000_000  # fixed, so the bytes are reproducible
# (first LSN of the segment, records in it)
SEGMENTS: list[tuple[int, list[tuple[int, bytes]]]] = [
    (1, [(1, b"assertion one"), (2, b""), (3, b"epoch \xe2\x9a\x9b")]),
    (4, [(1, bytes(range(256)) * 4), (2, b"v" * 7)]),
    (6, [(1, b"last segment")]),
]
LAST_LSN = 6


def _expected_files() -> dict[str, bytes]:
    files = {}
    for first, records in SEGMENTS:
        files[segment_name(first)] = encode_segment_header(first) + encode_batch(
            first, records, TIMESTAMP_NS
        )
    files["WATERMARK"] = encode_watermark(LAST_LSN)
    return files


def test_encoder_reproduces_golden_bytes() -> None:
    expected = _expected_files()
    if os.environ.get("STEMEDB_WRITE_GOLDEN"):
        GOLDEN.mkdir(parents=True, exist_ok=True)
        for name, data in expected.items():
            (GOLDEN / name).write_bytes(data)
    stored = {p.name: p.read_bytes() for p in GOLDEN.iterdir() if p.is_file()}
    assert stored == expected, "the WAL format changed: bump FORMAT_VERSION, do not edit goldens"


def test_golden_log_reads_back() -> None:
    report = verify_wal(GOLDEN)
    assert report.ok, report.errors
    records = list(dump_wal(GOLDEN))
    want = [(lsn, t, p) for first, recs in SEGMENTS for lsn, (t, p) in enumerate(recs, first)]
    assert [(r.lsn, r.record_type, r.payload) for r in records] == want
    assert all(r.timestamp_ns == TIMESTAMP_NS for r in records)
    with WalReader(GOLDEN, from_lsn=3) as reader:
        assert reader.watermark() == LAST_LSN
        assert [r.lsn for r in reader.read_available()] == [3, 4, 5, 6]
        assert reader.record_at(5) is not None
