"""Regenerate tests/vectors/canonical.json, deterministically (`make vectors`).

Each case holds a record in the JSON form of stemedb.jsonrecord, its canonical bytes, its BLAKE3
hash and the signatures of fixed test keys (ed25519 is deterministic). tests/test_vectors.py
regenerates the file in memory and fails when the committed one differs.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import nacl.signing

from stemedb import canonical, jsonrecord, signing
from stemedb.v1 import records_pb2 as pb

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "tests" / "vectors" / "canonical.json"

# Fixed test keys: seeds 0x01.., 0x02.., 0x03.., 0x04... Never use them for anything real.
SEEDS = [bytes([i]) * 32 for i in range(1, 5)]
KEYS = [nacl.signing.SigningKey(s) for s in SEEDS]
SRC = bytes(range(32))  # a source hash
REF = bytes(range(32, 64))  # a referenced record's hash


def _assertion(
    subject: str = "Q42",
    predicate: str = "name",
    obj: pb.Value | None = None,
    confidence: float = 0.9,
    **extra: Any,
) -> pb.Assertion:
    a = pb.Assertion(
        subject=subject,
        predicate=predicate,
        object=obj if obj is not None else pb.Value(text="Douglas Adams"),
        confidence=confidence,
        source_hash=SRC,
    )
    for key, value in extra.items():
        setattr(a, key, value)
    return a


def _cases() -> list[tuple[str, pb.Record, list[int]]]:
    """(name, record without signatures, indexes of the keys that sign it)."""
    epoch_hash = canonical.record_hash(pb.Record(epoch=pb.Epoch(name="Newtonian mechanics")))
    a_hash = canonical.record_hash(pb.Record(assertion=_assertion()))

    def vote(weight: float, key: int, sequence: int = 0) -> pb.Record:
        agent = signing.public_key_of(KEYS[key])
        return pb.Record(
            vote=pb.Vote(assertion_hash=a_hash, agent_id=agent, weight=weight, sequence=sequence)
        )

    def a(**kw: Any) -> pb.Record:
        return pb.Record(assertion=_assertion(**kw))

    return [
        ("assertion-text-minimal", a(), [0]),
        ("assertion-unsigned", a(subject="s", predicate="p", confidence=0.5), []),
        (
            "assertion-text-unicode",
            a(
                subject="Ελληνικά 日本語 🚀",
                predicate="описание",
                obj=pb.Value(text="naïve café ✓ \u00e9 vs e\u0301"),
            ),
            [0],
        ),
        ("assertion-text-empty", a(obj=pb.Value(text="")), [0]),
        ("assertion-number-zero", a(predicate="mass", obj=pb.Value(number=0.0)), [0]),
        ("assertion-number-negative-zero", a(predicate="mass", obj=pb.Value(number=-0.0)), [0]),
        ("assertion-number-negative", a(predicate="temp", obj=pb.Value(number=-273.15)), [1]),
        (
            "assertion-number-large",
            a(predicate="big", obj=pb.Value(number=1.7976931348623157e308)),
            [1],
        ),
        ("assertion-number-subnormal", a(predicate="tiny", obj=pb.Value(number=5e-324)), [1]),
        ("assertion-number-integer", a(predicate="year", obj=pb.Value(number=1952.0)), [1]),
        ("assertion-flag-true", a(predicate="alive", obj=pb.Value(flag=True)), [0]),
        ("assertion-flag-false", a(predicate="alive", obj=pb.Value(flag=False)), [0]),
        ("assertion-blob-empty", a(predicate="raw", obj=pb.Value(blob=b"")), [0]),
        ("assertion-blob-all-bytes", a(predicate="raw", obj=pb.Value(blob=bytes(range(256)))), [2]),
        ("assertion-ref", a(predicate="cites", obj=pb.Value(ref=REF)), [0]),
        ("assertion-confidence-zero", a(confidence=0.0), [0]),
        ("assertion-confidence-one", a(confidence=1.0), [0]),
        ("assertion-visual-hash-zero", a(visual_hash=0), [0]),
        ("assertion-visual-hash-max", a(visual_hash=0xFFFFFFFFFFFFFFFF), [0]),
        ("assertion-visual-hash-typical", a(visual_hash=0xC3D3E1F0B4A59687), [0]),
        ("assertion-with-epoch", a(epoch=epoch_hash), [0]),
        (
            "assertion-all-fields",
            a(
                subject="urn:x:1",
                predicate="depicts",
                obj=pb.Value(ref=REF),
                confidence=0.25,
                visual_hash=0x0123456789ABCDEF,
                epoch=epoch_hash,
            ),
            [0, 1, 2],
        ),
        ("assertion-three-cosigners", a(), [0, 1, 2]),
        ("assertion-subject-max-length", a(subject="x" * 1024), [0]),
        ("vote-positive", vote(1.0, 1), [1]),
        ("vote-negative", vote(-1.0, 2), [2]),
        ("vote-zero", vote(0.0, 3), [3]),
        ("vote-fractional", vote(-0.375, 1), [1]),
        ("vote-sequence-one", vote(1.0, 1, sequence=1), [1]),
        ("vote-sequence-millis", vote(-0.5, 2, sequence=1_764_633_600_123), [2]),
        ("vote-sequence-max", vote(0.25, 3, sequence=2**53 - 1), [3]),
        ("epoch-minimal", pb.Record(epoch=pb.Epoch(name="Newtonian mechanics")), []),
        (
            "epoch-supersedes-extension",
            pb.Record(
                epoch=pb.Epoch(
                    name="Special relativity",
                    description="c is constant",
                    supersedes=epoch_hash,
                    supersession_type=pb.SUPERSESSION_TYPE_EXTENSION,
                )
            ),
            [0],
        ),
        (
            "epoch-revolution-unicode",
            pb.Record(
                epoch=pb.Epoch(
                    name="Quantenmechanik ⚛",
                    description="Kopenhagener Deutung — 1927",
                    supersedes=epoch_hash,
                    supersession_type=pb.SUPERSESSION_TYPE_REVOLUTION,
                )
            ),
            [0, 3],
        ),
        (
            "epoch-refinement",
            pb.Record(
                epoch=pb.Epoch(
                    name="r",
                    supersedes=epoch_hash,
                    supersession_type=pb.SUPERSESSION_TYPE_REFINEMENT,
                )
            ),
            [1],
        ),
    ]


def build() -> list[dict[str, Any]]:
    out = []
    for name, record, signer_idx in _cases():
        h = canonical.record_hash(record)
        kind = record.WhichOneof("kind")
        sigs = []
        for i in signer_idx:
            entry = signing.signature_entry(KEYS[i], h)
            sigs.append(
                {
                    "seed_hex": SEEDS[i].hex(),
                    "public_key_hex": entry.public_key.hex(),
                    "signature_hex": entry.signature.hex(),
                }
            )
            if kind == "vote":
                record.vote.signature = entry.signature
            elif kind == "assertion":
                record.assertion.signatures.append(entry)
            else:
                record.epoch.signatures.append(entry)
        out.append(
            {
                "name": name,
                "kind": kind,
                "record": jsonrecord.record_to_json(record),
                "canonical_hex": canonical.record_bytes(record).hex(),
                "hash_hex": h.hex(),
                "signatures": sigs,
            }
        )
    return out


def render() -> str:
    return json.dumps(build(), indent=2, ensure_ascii=False) + "\n"


def main() -> int:
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(render(), encoding="utf-8")
    print(f"wrote {len(build())} cases to {OUT.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
