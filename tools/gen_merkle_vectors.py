"""Regenerate tests/vectors/merkle.json, deterministically (`python tools/gen_merkle_vectors.py`).

The file holds, for every implementation of the verifiable log (Python, Node.js, any other):

- ``leaves``: records (the cases of tests/vectors/canonical.json, signed) at given LSNs, with
  their leaf bytes and leaf hashes (DESIGN section 13, docs/verifiable-log.md); an LSN is a
  decimal string, since a JSON number loses precision above 2**53 in JavaScript;
- ``tree``: the RFC 6962 roots of those leaves for every size, every inclusion proof and every
  consistency proof up to a size, computed by the plain recursive oracle
  (stemedb.merkle.oracle), never by the fast code the tests check;
- ``rfc6962_reference``: the Certificate Transparency reference test data (published inputs and
  expected roots and proofs); this script refuses to write if the oracle disagrees with them;
- ``compact_ranges`` and ``node_keys``: the persisted compact range and node keys;
- ``notes``: Go's golang.org/x/mod/sumdb/note published example (keys, note, signatures) and a
  checkpoint of ``tree`` signed with a fixed test key (ed25519 is deterministic).

tests/merkle/test_vectors.py regenerates the file in memory and fails when the committed one
differs.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import gen_vectors

from stemedb import jsonrecord, merkle, note
from stemedb.merkle import oracle

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "tests" / "vectors" / "merkle.json"

# Sizes up to which every inclusion and consistency proof is listed.
PROOF_SIZE_MAX = 20
# A fixed test log key: seed 0x07... Never use it for anything real.
LOG_NAME = "stemedb.local/log"
LOG_SEED = bytes([7]) * 32

# Certificate Transparency's reference test data (RFC 6962 section 2.1 applied to these inputs),
# as published with the reference implementations. Leaf indexes here are 0-based.
CT_ENTRIES = [
    "", "00", "10", "2021", "3031", "40414243", "5051525354555657",
    "606162636465666768696a6b6c6d6e6f",
]  # fmt: skip
CT_ROOTS = [
    "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
    "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
    "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
    "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
    "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
    "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
    "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
    "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
    "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
]
CT_INCLUSION = [
    (0, 8, [
        "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
        "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
        "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4",
    ]),
    (5, 8, [
        "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
        "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
        "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
    ]),
    (2, 3, ["fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125"]),
    (1, 5, [
        "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
        "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
        "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
    ]),
]  # fmt: skip
CT_CONSISTENCY = [
    (1, 1, []),
    (1, 8, [
        "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
        "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
        "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4",
    ]),
    (6, 8, [
        "0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
        "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
        "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
    ]),
    (2, 5, [
        "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
        "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
    ]),
]  # fmt: skip

# Go's golang.org/x/mod/sumdb/note documentation and tests: a signer key, its verifier key, a
# second verifier key, a text, and the signature lines of both keys over it.
GO_NOTE = {
    "signer_key": "PRIVATE+KEY+PeterNeumann+c74f20a3+AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz",
    "verifier_key": "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW",
    "other_verifier_key": "EnochRoot+af0cfe78+ATtqJ7zOtqQtYqOo0CpvDXNlMhV3HeJDpjrASKGLWdop",
    "text": "If you think cryptography is the answer to your problem,\n"
    "then you don't know what your problem is.\n",
    "signature_line": "— PeterNeumann x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2p"
    "ZSNXgKvqfqdngotpRZb6KE6RyyBwJnAM=\n",
    "other_signature_line": "— EnochRoot rwz+eBzmZa0SO3NbfRGzPCpDckykFXSdeX+MNtCOXm2/5n2tiOHp+vAF"
    "1aGrQ5ovTG01oOTGwnWLox33WWd1RvMc+QQ=\n",
}


def _hex(hashes: list[bytes]) -> list[str]:
    return [h.hex() for h in hashes]


def _leaves() -> list[dict[str, Any]]:
    out = []
    for i, case in enumerate(gen_vectors.build()):
        record = jsonrecord.record_from_json(case["record"])
        # LSNs 1.. for the tree, and the largest LSN for the last case (u64 bounds).
        lsn = i + 1
        leaf = merkle.leaf_bytes(lsn, record)
        out.append(
            {
                "name": case["name"],
                "lsn": str(lsn),
                "record": case["record"],
                "leaf_hex": leaf.hex(),
                "leaf_hash_hex": merkle.leaf_hash(leaf).hex(),
            }
        )
    case = out[0]
    record = jsonrecord.record_from_json(case["record"])
    leaf = merkle.leaf_bytes(2**64 - 1, record)
    out.append(
        {
            "name": case["name"] + "-lsn-max",
            "lsn": str(2**64 - 1),
            "record": case["record"],
            "leaf_hex": leaf.hex(),
            "leaf_hash_hex": merkle.leaf_hash(leaf).hex(),
        }
    )
    return out


def _tree(leaf_hashes: list[bytes]) -> dict[str, Any]:
    n_max = min(PROOF_SIZE_MAX, len(leaf_hashes))
    return {
        "leaf_hashes": _hex(leaf_hashes),
        "roots": [oracle.mth(leaf_hashes[:n]).hex() for n in range(len(leaf_hashes) + 1)],
        "inclusion": [
            {"leaf_index": i, "tree_size": n, "hashes": _hex(oracle.path(i, leaf_hashes[:n]))}
            for n in range(1, n_max + 1)
            for i in range(n)
        ],
        "consistency": [
            {"first_size": m, "second_size": n, "hashes": _hex(oracle.proof(m, leaf_hashes[:n]))}
            for n in range(1, n_max + 1)
            for m in range(1, n + 1)
        ],
    }


def _reference() -> dict[str, Any]:
    leaves = [merkle.leaf_hash(bytes.fromhex(e)) for e in CT_ENTRIES]
    for n, root in enumerate(CT_ROOTS):
        if oracle.mth(leaves[:n]).hex() != root:
            raise SystemExit(f"the oracle disagrees with the CT reference root of size {n}")
    for i, n, hashes in CT_INCLUSION:
        if _hex(oracle.path(i, leaves[:n])) != hashes:
            raise SystemExit(f"the oracle disagrees with the CT inclusion proof ({i}, {n})")
    for m, n, hashes in CT_CONSISTENCY:
        if _hex(oracle.proof(m, leaves[:n])) != hashes:
            raise SystemExit(f"the oracle disagrees with the CT consistency proof ({m}, {n})")
    return {
        "entries_hex": CT_ENTRIES,
        "roots": CT_ROOTS,
        "inclusion": [{"leaf_index": i, "tree_size": n, "hashes": h} for i, n, h in CT_INCLUSION],
        "consistency": [
            {"first_size": m, "second_size": n, "hashes": h} for m, n, h in CT_CONSISTENCY
        ],
    }


def _compact_ranges(leaf_hashes: list[bytes]) -> list[dict[str, Any]]:
    out = []
    for size in (0, 1, 2, 7, 20, len(leaf_hashes)):
        cr = merkle.CompactRange()
        for h in leaf_hashes[:size]:
            cr.append(h)
        out.append(
            {
                "size": size,
                "hashes": _hex(list(cr.hashes)),
                "root": oracle.mth(leaf_hashes[:size]).hex(),
                "bytes_hex": cr.to_bytes().hex(),
            }
        )
    return out


def _notes(tree: dict[str, Any]) -> dict[str, Any]:
    signer = note.Signer(LOG_NAME, LOG_SEED)
    size = min(PROOF_SIZE_MAX, len(tree["leaf_hashes"]))
    checkpoints = []
    for n in (size // 2, size):
        cp = note.Checkpoint(LOG_NAME, n, bytes.fromhex(tree["roots"][n]))
        checkpoints.append({"tree_size": n, "body": cp.body(), "signed": cp.sign(signer)})
    return {
        "go_sumdb_note": GO_NOTE,
        "log": {
            "seed_hex": LOG_SEED.hex(),
            "signer_key": signer.encode(),
            "verifier_key": signer.verifier.encode(),
            "checkpoints": checkpoints,
        },
    }


def build() -> dict[str, Any]:
    leaves = _leaves()
    # The tree is made of the leaves of LSNs 1..n (the last case, at the largest LSN, is not).
    leaf_hashes = [bytes.fromhex(c["leaf_hash_hex"]) for c in leaves[:-1]]
    tree = _tree(leaf_hashes)
    return {
        "leaf_tag_hex": merkle.LEAF_TAG.hex(),
        "leaves": leaves,
        "tree": tree,
        "rfc6962_reference": _reference(),
        "compact_ranges": _compact_ranges(leaf_hashes),
        "node_keys": [
            {"level": lv, "index": ix, "key_hex": merkle.node_key(lv, ix).hex()}
            for lv, ix in ((0, 0), (0, 1), (3, 5), (63, 1), (0, 2**64 - 1))
        ],
        "notes": _notes(tree),
    }


def render() -> str:
    return json.dumps(build(), indent=1, ensure_ascii=False) + "\n"


def main() -> int:
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(render(), encoding="utf-8")
    print(f"wrote {OUT.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
