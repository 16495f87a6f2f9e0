// The Node.js verifiable-log client against the shared vectors (tests/vectors/merkle.json) and
// the adversarial cases of issue 16: each must be refused, as the Python client refuses them.

import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, test } from 'node:test';

import {
  EMPTY_ROOT,
  LEAF_TAG,
  ProofError,
  checkConsistency,
  checkRecordInclusion,
  leafBytes,
  leafHash,
  nodeHash,
  recordLeafHash,
  verifyConsistency,
  verifyInclusion,
} from '../src/merkle.js';
import {
  MalformedCheckpoint,
  MalformedKey,
  MalformedNote,
  NoteError,
  NoteNotVerified,
  checkpointBody,
  keyId,
  makeSigner,
  openCheckpoint,
  openNote,
  parseCheckpoint,
  parseSignerKey,
  parseVerifierKey,
  signNote,
} from '../src/note.js';
import { mth, path, subproof } from './support/tree.js';

const VECTORS = new URL('../../../tests/vectors/merkle.json', import.meta.url);
const V = JSON.parse(readFileSync(VECTORS, 'utf8'));
const hex = (h) => Buffer.from(h, 'hex');
const hexes = (l) => l.map(hex);
const flip = (h, bit = 0) => {
  const b = Buffer.from(h);
  b[0] ^= 1 << bit;
  return b;
};

const TREE = V.tree;
const LEAVES = hexes(TREE.leaf_hashes);
const ROOTS = hexes(TREE.roots);
const LOG = V.notes.log;
const VKEY = LOG.verifier_key;
const SIGNER = parseSignerKey(LOG.signer_key);
const RECORDS = V.leaves.slice(0, -1).map((c) => c.record);
const N = LEAVES.length;

const signed = (size, root = ROOTS[size], signer = SIGNER) =>
  signNote(checkpointBody({ origin: SIGNER.name, treeSize: size, rootHash: root }), [signer]);

describe('leaves', () => {
  test('the leaf tag', () => assert.equal(LEAF_TAG.toString('hex'), V.leaf_tag_hex));
  for (const c of V.leaves) {
    test(`leaf ${c.name} @${c.lsn}`, () => {
      const lsn = BigInt(c.lsn);
      assert.equal(leafBytes(lsn, c.record).toString('hex'), c.leaf_hex);
      assert.equal(recordLeafHash(lsn, c.record).toString('hex'), c.leaf_hash_hex);
    });
  }
  test('bad LSNs and keys are refused', () => {
    assert.throws(() => leafBytes(0, RECORDS[0]), RangeError);
    assert.throws(() => leafBytes(2n ** 64n, RECORDS[0]), RangeError);
    const bad = structuredClone(RECORDS[0]);
    bad.assertion.signatures[0].public_key = '00';
    assert.throws(() => leafBytes(1, bad), /public_key/);
  });
});

describe('RFC 6962 / 9162', () => {
  test('CT reference data', () => {
    const ref = V.rfc6962_reference;
    const leaves = ref.entries_hex.map((e) => leafHash(hex(e)));
    ref.roots.forEach((r, n) => assert.equal(mth(leaves.slice(0, n)).toString('hex'), r));
    for (const p of ref.inclusion) verifyInclusion(leaves[p.leaf_index], p.leaf_index, p.tree_size, hexes(p.hashes), hex(ref.roots[p.tree_size]));
    for (const p of ref.consistency) {
      verifyConsistency(p.first_size, p.second_size, hexes(p.hashes), hex(ref.roots[p.first_size]), hex(ref.roots[p.second_size]));
    }
  });

  test('every vector root, inclusion and consistency proof verifies', () => {
    ROOTS.forEach((r, n) => assert.ok(mth(LEAVES.slice(0, n)).equals(r)));
    for (const p of TREE.inclusion) {
      assert.deepEqual(hexes(p.hashes), path(p.leaf_index, LEAVES.slice(0, p.tree_size)));
      verifyInclusion(LEAVES[p.leaf_index], p.leaf_index, p.tree_size, hexes(p.hashes), ROOTS[p.tree_size]);
    }
    for (const p of TREE.consistency) {
      assert.deepEqual(hexes(p.hashes), subproof(p.first_size, LEAVES.slice(0, p.second_size), true));
      verifyConsistency(p.first_size, p.second_size, hexes(p.hashes), ROOTS[p.first_size], ROOTS[p.second_size]);
    }
  });

  test('a flipped proof node is refused', () => {
    for (const p of TREE.inclusion) {
      const hs = hexes(p.hashes);
      hs.forEach((_, j) => {
        const bad = hs.map((h, i) => (i === j ? flip(h) : h));
        assert.throws(() => verifyInclusion(LEAVES[p.leaf_index], p.leaf_index, p.tree_size, bad, ROOTS[p.tree_size]), ProofError);
      });
    }
    for (const p of TREE.consistency) {
      const hs = hexes(p.hashes);
      hs.forEach((_, j) => {
        const bad = hs.map((h, i) => (i === j ? flip(h, 7) : h));
        assert.throws(() => verifyConsistency(p.first_size, p.second_size, bad, ROOTS[p.first_size], ROOTS[p.second_size]), ProofError);
      });
    }
  });

  test('a wrong size, an index past the size and malformed proofs are refused', () => {
    const p = path(5, LEAVES.slice(0, 13));
    for (const size of [6, 7, 8, 17, 32]) assert.throws(() => verifyInclusion(LEAVES[5], 5, size, p, ROOTS[13]), ProofError);
    assert.throws(() => verifyInclusion(LEAVES[5], 13, 13, p, ROOTS[13]), /not in a tree/);
    assert.throws(() => verifyInclusion(LEAVES[5], 5, 13, [...p, LEAVES[0]], ROOTS[13]), /too long/);
    assert.throws(() => verifyInclusion(LEAVES[5], 5, 13, p.slice(0, -1), ROOTS[13]), /too short/);
    assert.throws(() => verifyInclusion(LEAVES[5], 5, 13, [p[0], Buffer.alloc(31)], ROOTS[13]), /proof\[1\]/);
    assert.throws(() => verifyInclusion(LEAVES[5], 5, 13, Array(65).fill(LEAVES[0]), ROOTS[13]), /more than 64/);
    assert.throws(() => verifyInclusion(LEAVES[5], 1.5, 13, p, ROOTS[13]), ProofError);
    assert.throws(() => verifyConsistency(0, 7, [], EMPTY_ROOT, ROOTS[7]), /at least 1/);
    assert.throws(() => verifyConsistency(8, 7, [], ROOTS[8], ROOTS[7]), /larger/);
    assert.throws(() => verifyConsistency(7, 7, [], ROOTS[7], ROOTS[6]), /different roots/);
    assert.throws(() => verifyConsistency(3, 7, [], ROOTS[3], ROOTS[7]), /empty/);
  });

  test('a consistency proof between non-prefix trees is refused', () => {
    const rewritten = [...LEAVES.slice(0, 2), leafHash(Buffer.from('rewritten')), ...LEAVES.slice(3, 20)];
    const proof = subproof(5, rewritten, true);
    verifyConsistency(5, 20, proof, mth(rewritten.slice(0, 5)), mth(rewritten));
    assert.throws(() => verifyConsistency(5, 20, proof, ROOTS[5], mth(rewritten)), /root of tree 5/);
    assert.throws(() => verifyConsistency(5, 20, subproof(5, LEAVES.slice(0, 20), true), ROOTS[5], mth(rewritten)), ProofError);
  });

  test('u64 sizes beyond 2**53 are handled as bigints', () => {
    // A tree of 2**60 + 1 leaves: leaf 2**60 is the right child of the root.
    const size = 2n ** 60n + 1n;
    const left = Buffer.alloc(32, 7);
    const root = nodeHash(left, LEAVES[0]);
    verifyInclusion(LEAVES[0], 2n ** 60n, size, [left], root);
    assert.throws(() => verifyInclusion(LEAVES[0], 2n ** 60n, size + 1n, [left], root), ProofError);
  });
});

describe('signed notes', () => {
  const go = V.notes.go_sumdb_note;
  test('Go sumdb/note known answers', () => {
    const s = parseSignerKey(go.signer_key);
    assert.equal(s.encode(), go.signer_key);
    assert.equal(s.verifier.encode(), go.verifier_key);
    assert.equal(keyId('PeterNeumann', s.verifier.publicKey), 0xc74f20a3);
    assert.equal(signNote(go.text, [s]), `${go.text}\n${go.signature_line}`);
    const both = `${go.text}\n${go.signature_line}${go.other_signature_line}`;
    const n = openNote(both, [parseVerifierKey(go.verifier_key), parseVerifierKey(go.other_verifier_key)]);
    assert.equal(n.text, go.text);
    assert.deepEqual(n.signatures.map((x) => x.name), ['PeterNeumann', 'EnochRoot']);
    const one = openNote(Buffer.from(both), [parseVerifierKey(go.verifier_key)]);
    assert.deepEqual(one.unverified.map((x) => x.name), ['EnochRoot']);
  });

  test('every mangling of the Go keys is refused', () => {
    for (const [key, parse] of [[go.verifier_key, parseVerifierKey], [go.signer_key, parseSignerKey]]) {
      for (let i = 0; i < key.length; i++) {
        for (let j = i + 1; j <= key.length; j++) {
          if (i !== 0 || j !== key.length) assert.throws(() => parse(key.slice(i, j)), MalformedKey);
        }
        const bumped = key.slice(0, i) + String.fromCharCode(key.charCodeAt(i) + 1) + key.slice(i + 1);
        assert.throws(() => parse(bumped), MalformedKey);
      }
    }
  });

  test('key names with a Unicode space or a plus are refused, as in Go', () => {
    for (const name of ['a b', 'a\u0085b', 'a\u00a0b', 'a\u3000b', 'a+b', '']) {
      assert.throws(() => makeSigner(name, Buffer.alloc(32, 1)), MalformedKey, JSON.stringify(name));
    }
    assert.equal(makeSigner('a\ufeffb', Buffer.alloc(32, 1)).name, 'a\ufeffb'); // not White_Space
  });

  test('malformed notes are refused', () => {
    const sig = go.signature_line;
    const peter = parseVerifierKey(go.verifier_key);
    const bad = [
      go.text,
      `${go.text}\n`,
      `${go.text}\n${sig.slice(0, -1)}`,
      `\u0001${go.text}\n${sig}`,
      `${go.text}\n— Bad Name ${sig.split(' ').at(-1)}`,
      `${go.text}\n${sig}Unexpected line.\n`,
      `${go.text}\n${sig.replace('x08go', 'x08g!')}`,
      `${go.text}\n${sig.repeat(101)}`,
    ];
    for (const msg of bad) assert.throws(() => openNote(msg, [peter]), MalformedNote, JSON.stringify(msg));
    assert.throws(() => openNote(Buffer.concat([Buffer.from([0xff]), Buffer.from(`${go.text}\n${sig}`)]), [peter]), /UTF-8/);
    assert.throws(() => openNote(`${go.text.replace('is.', 'was.')}\n${sig}`, [peter]), NoteNotVerified);
  });

  test('log checkpoints', () => {
    for (const cp of LOG.checkpoints) {
      const opened = openCheckpoint(cp.signed, VKEY);
      assert.equal(opened.treeSize, BigInt(cp.tree_size));
      assert.ok(opened.rootHash.equals(ROOTS[cp.tree_size]));
      assert.equal(checkpointBody(opened), cp.body);
      assert.equal(signNote(cp.body, [SIGNER]), cp.signed);
    }
    for (const body of ['o\n5\n', 'o\n05\nERERERERERERERERERERERERERERERERERERERERERE=\n', 'o\n5\nERER\n', 'o\n5\nERERERERERERERERERERERERERERERERERERERERERE=\n\n']) {
      assert.throws(() => parseCheckpoint(body), MalformedCheckpoint);
    }
    const foreign = signNote(checkpointBody({ origin: 'evil.example/log', treeSize: 5, rootHash: ROOTS[5] }), [SIGNER]);
    assert.throws(() => openCheckpoint(foreign, VKEY), /origin/);
  });
});

describe('client checks against checkpoints (adversarial)', () => {
  const other = makeSigner(SIGNER.name, Buffer.alloc(32, 8));
  const proofOf = (i, n) => path(i, LEAVES.slice(0, n));

  test('every record verifies against the vector checkpoints', () => {
    for (const cp of LOG.checkpoints) {
      for (let lsn = 1; lsn <= cp.tree_size; lsn++) {
        const got = checkRecordInclusion({ checkpoint: cp.signed, verifierKey: VKEY, lsn, record: RECORDS[lsn - 1], proof: proofOf(lsn - 1, cp.tree_size), treeSize: cp.tree_size });
        assert.equal(got.treeSize, BigInt(cp.tree_size));
      }
    }
    const [a, b] = LOG.checkpoints;
    const proof = subproof(a.tree_size, LEAVES.slice(0, b.tree_size), true);
    const [x, y] = checkConsistency({ first: a.signed, second: b.signed, verifierKey: VKEY, proof });
    assert.equal(x.treeSize, BigInt(a.tree_size));
    assert.equal(y.treeSize, BigInt(b.tree_size));
  });

  test('a flipped proof node', () => {
    const p = proofOf(4, N);
    p.forEach((_, j) => {
      const bad = p.map((h, i) => (i === j ? flip(h) : h));
      assert.throws(() => checkRecordInclusion({ checkpoint: signed(N), verifierKey: VKEY, lsn: 5, record: RECORDS[4], proof: bad }), ProofError);
    });
  });

  test('a wrong tree size', () => {
    const p = proofOf(4, 16);
    assert.throws(() => checkRecordInclusion({ checkpoint: signed(13), verifierKey: VKEY, lsn: 5, record: RECORDS[4], proof: p, treeSize: 16 }), /checkpoint is of size/);
    assert.throws(() => checkRecordInclusion({ checkpoint: signed(13), verifierKey: VKEY, lsn: 5, record: RECORDS[4], proof: p, treeSize: 13 }), ProofError);
  });

  test('an index past the size', () => {
    assert.throws(() => checkRecordInclusion({ checkpoint: signed(9), verifierKey: VKEY, lsn: 10, record: RECORDS[9], proof: proofOf(9, 10) }), /not in a tree of size 9/);
  });

  test('a checkpoint signed by another key', () => {
    assert.throws(() => checkRecordInclusion({ checkpoint: signed(N, ROOTS[N], other), verifierKey: VKEY, lsn: 1, record: RECORDS[0], proof: proofOf(0, N) }), NoteNotVerified);
    assert.throws(() => checkRecordInclusion({ checkpoint: signed(N), verifierKey: other.verifier, lsn: 1, record: RECORDS[0], proof: proofOf(0, N) }), NoteNotVerified);
  });

  test('a checkpoint with a valid signature but a different root', () => {
    const rewritten = signed(N, Buffer.alloc(32, 0x42));
    assert.throws(() => checkRecordInclusion({ checkpoint: rewritten, verifierKey: VKEY, lsn: 1, record: RECORDS[0], proof: proofOf(0, N) }), /root/);
    const proof = subproof(3, LEAVES, true);
    assert.throws(() => checkConsistency({ first: signed(3), second: rewritten, verifierKey: VKEY, proof }), ProofError);
  });

  test('a record not as appended', () => {
    const stripped = structuredClone(RECORDS[0]);
    stripped.assertion.signatures = [];
    assert.throws(() => checkRecordInclusion({ checkpoint: signed(N), verifierKey: VKEY, lsn: 1, record: stripped, proof: proofOf(0, N) }), ProofError);
    assert.throws(() => checkRecordInclusion({ checkpoint: signed(N), verifierKey: VKEY, lsn: 2, record: RECORDS[0], proof: proofOf(0, N) }), ProofError);
  });

  test('a consistency proof between non-prefix trees', () => {
    const forkRecords = [...RECORDS.slice(0, 2), RECORDS[5], ...RECORDS.slice(3)];
    const forkLeaves = forkRecords.map((r, i) => recordLeafHash(i + 1, r));
    const fork = signed(N, mth(forkLeaves));
    assert.throws(() => checkConsistency({ first: signed(4), second: fork, verifierKey: VKEY, proof: subproof(4, forkLeaves, true) }), ProofError);
    assert.throws(() => checkConsistency({ first: signed(4), second: fork, verifierKey: VKEY, proof: subproof(4, LEAVES, true) }), ProofError);
    assert.throws(() => checkConsistency({ first: signed(9), second: signed(4), verifierKey: VKEY, proof: subproof(4, LEAVES.slice(0, 9), true) }), /larger/);
  });

  test('random proofs and mutated checkpoints fail only with the named errors', () => {
    // A fixed-seed generator, so a failure replays exactly (the seed is in the message).
    let state = 20261201;
    const rand = (n) => {
      state = (state * 1103515245 + 12345) % 2 ** 31;
      return state % n;
    };
    const pool = [...LEAVES, ...ROOTS, Buffer.alloc(31), Buffer.alloc(33)];
    for (let i = 0; i < 2000; i++) {
      const proof = Array.from({ length: rand(8) }, () => pool[rand(pool.length)]);
      const size = rand(40);
      const isMutated = rand(4) === 0;
      const cpSize = isMutated ? LOG.checkpoints[1].tree_size : Math.min(size, N);
      const cp = isMutated ? mutated(rand) : signed(cpSize);
      const lsn = rand(40) + 1;
      const r = rand(N);
      try {
        checkRecordInclusion({ checkpoint: cp, verifierKey: VKEY, lsn, record: RECORDS[r], proof, treeSize: rand(2) ? size : undefined });
      } catch (err) {
        assert.ok(err instanceof ProofError || err instanceof NoteError, `seed 20261201 case ${i}: ${err}`);
        continue;
      }
      // Accepted: then it is the truth (the right record at its LSN, with its real path).
      assert.equal(r, lsn - 1, `seed 20261201 case ${i}`);
      assert.deepEqual(proof, path(lsn - 1, LEAVES.slice(0, cpSize)), `seed 20261201 case ${i}`);
    }
  });
});

function mutated(rand) {
  const s = LOG.checkpoints[1].signed;
  const i = rand(s.length);
  return s.slice(0, i) + String.fromCharCode(32 + rand(95)) + s.slice(i + 1);
}
