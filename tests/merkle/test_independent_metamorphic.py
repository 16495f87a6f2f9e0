"""Our proofs and signed checkpoints against metamorphic-log (PyPI), an independent verifier
written in Rust (UniFFI bindings): RFC 9162 inclusion and consistency verification, C2SP signed
notes and tlog checkpoints, byte-compatible with Go's sumdb/note.

- It accepts every proof we generate and every checkpoint we sign, and the Go known answers.
- Differential: on honest proofs mutated at random (a flipped bit, a hash dropped, added or
  swapped, another index or size), it and our verifier agree on every verdict.
- It refuses the adversarial checkpoints our clients refuse.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from typing import Any

import metamorphic_log as ml
import pytest

from stemedb import merkle, note

from .test_vectors import DATA

LEAVES = [merkle.leaf_hash(i.to_bytes(4, "big")) for i in range(100)]
LOG = note.Signer.parse(DATA["notes"]["log"]["signer_key"])
VKEY = DATA["notes"]["log"]["verifier_key"]


def _store() -> merkle.MemoryNodeStore:
    cr, store = merkle.CompactRange(), merkle.MemoryNodeStore()
    for h in LEAVES:
        store.put_nodes(cr.append(h))
    return store


STORE = _store()
ROOTS = [merkle.root_at(STORE, n) for n in range(len(LEAVES) + 1)]


def test_it_accepts_every_proof_we_generate() -> None:
    for n in range(1, len(LEAVES) + 1):
        for i in range(0, n, max(1, n // 9)):
            ml.verify_inclusion(i, n, LEAVES[i], merkle.inclusion_proof(STORE, i, n), ROOTS[n])
        for m in range(1, n + 1, max(1, n // 9)):
            ml.verify_consistency(m, n, merkle.consistency_proof(STORE, m, n), ROOTS[m], ROOTS[n])
    for p in DATA["tree"]["consistency"]:
        m, n = p["first_size"], p["second_size"]
        roots = DATA["tree"]["roots"]
        hashes = [bytes.fromhex(h) for h in p["hashes"]]
        ml.verify_consistency(m, n, hashes, bytes.fromhex(roots[m]), bytes.fromhex(roots[n]))


def test_it_accepts_our_checkpoints_and_the_go_known_answers() -> None:
    for cp in DATA["notes"]["log"]["checkpoints"]:
        head = ml.checkpoint_verify(cp["signed"], [VKEY])
        assert (head.origin, head.size) == (LOG.name, cp["tree_size"])
        assert head.root.hex() == DATA["tree"]["roots"][cp["tree_size"]]
    go = DATA["notes"]["go_sumdb_note"]
    assert ml.verify_signed_note(go["text"] + "\n" + go["signature_line"], [go["verifier_key"]])
    # Keys we generate are keys it reads.
    fresh = note.generate_signer("example.org/log")
    signed = note.Checkpoint("example.org/log", 5, ROOTS[5]).sign(fresh)
    assert ml.checkpoint_verify(signed, [fresh.verifier.encode()]).root == ROOTS[5]
    # A checkpoint and its inclusion and consistency proofs, end to end.
    a = note.Checkpoint(LOG.name, 37, ROOTS[37]).sign(LOG)
    b = note.Checkpoint(LOG.name, 100, ROOTS[100]).sign(LOG)
    ml.checkpoint_verify_inclusion(
        b, [VKEY], 36, LEAVES[36], merkle.inclusion_proof(STORE, 36, 100)
    )
    ml.checkpoint_verify_consistency(a, b, [VKEY], merkle.consistency_proof(STORE, 37, 100))


def test_it_refuses_what_our_clients_refuse() -> None:
    other = note.Signer(LOG.name, bytes([8]) * 32)
    forged = note.Checkpoint(LOG.name, 100, ROOTS[100]).sign(other)
    rewritten = note.Checkpoint(LOG.name, 100, b"\x42" * 32).sign(LOG)
    proof = merkle.inclusion_proof(STORE, 36, 100)
    for signed in (forged, rewritten):
        with pytest.raises(ml.VerifyError):
            ml.checkpoint_verify_inclusion(signed, [VKEY], 36, LEAVES[36], proof)
        with pytest.raises((merkle.ProofError, note.NoteError)):
            merkle.check_leaf_inclusion(signed, VKEY, 36, LEAVES[36], proof)


def _mutations(
    rng: random.Random, m: int, n: int, proof: list[bytes]
) -> list[tuple[int, int, list[bytes]]]:
    out = [(m, n, proof)]
    if proof:
        j = rng.randrange(len(proof))
        flipped = bytearray(proof[j])
        flipped[rng.randrange(32)] ^= 1 << rng.randrange(8)
        out += [
            (m, n, [*proof[:j], bytes(flipped), *proof[j + 1 :]]),
            (m, n, proof[:j] + proof[j + 1 :]),
            (m, n, [*proof, proof[j]]),
            (m, n, proof[::-1]),
        ]
    out += [(m + rng.choice((-1, 1)), n, proof), (m, n + rng.choice((-1, 1, 7)), proof)]
    return out


def test_differential_verdicts_agree(seed: int) -> None:
    rng = random.Random(seed)
    agreed = {"accepted": 0, "refused": 0}
    for _ in range(400):
        n = rng.randrange(1, len(LEAVES) + 1)
        i = rng.randrange(n)
        for a, size, proof in _mutations(rng, i, n, merkle.inclusion_proof(STORE, i, n)):
            if not (0 <= a < len(LEAVES) and 1 <= size <= len(LEAVES)):
                continue
            ours = _verdict(merkle.verify_inclusion, LEAVES[a], a, size, proof, ROOTS[size])
            theirs = _verdict(ml.verify_inclusion, a, size, LEAVES[a], proof, ROOTS[size])
            assert ours == theirs, (
                f"seed {seed}: inclusion ({a}, {size}) ours {ours}, theirs {theirs}"
            )
            agreed["accepted" if ours else "refused"] += 1
        m = rng.randrange(1, n + 1)
        for first, second, proof in _mutations(rng, m, n, merkle.consistency_proof(STORE, m, n)):
            # Sizes 0 are left out: we refuse a proof from the empty tree, RFC 9162 defines none.
            if not (1 <= first <= len(LEAVES) and 1 <= second <= len(LEAVES)):
                continue
            r1, r2 = ROOTS[first], ROOTS[second]
            ours = _verdict(merkle.verify_consistency, first, second, proof, r1, r2)
            theirs = _verdict(ml.verify_consistency, first, second, proof, r1, r2)
            assert ours == theirs, (
                f"seed {seed}: consistency ({first}, {second}) ours {ours}, theirs {theirs}"
            )
            agreed["accepted" if ours else "refused"] += 1
    assert agreed["accepted"] > 400 and agreed["refused"] > 1000, agreed


def _verdict(check: Callable[..., Any], *args: Any) -> bool:
    try:
        check(*args)
    except (merkle.ProofError, ml.VerifyError):
        return False
    return True
