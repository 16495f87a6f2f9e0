// The verifiable log on the client side: the leaf of a record (DESIGN section 13), RFC 6962
// hashing, RFC 9162 proof verification (sections 2.1.3.2 and 2.1.4.2), and the checks of a
// record's inclusion in a signed checkpoint and of two checkpoints' consistency. The server is not
// trusted. The Python twin is stemedb.merkle; docs/verifiable-log.md is the spec and
// tests/vectors/merkle.json holds the vectors both are tested against.
//
// Tree sizes, indexes and LSNs are u64: they are accepted as numbers (safe integers) or bigints
// and handled as bigints.

import { createHash } from 'node:crypto';

import { canonicalBytes, toBytes } from './canonical.js';
import { openCheckpoint, parseVerifierKey } from './note.js';

// The signed-note API travels with the log's (index.js re-exports this module whole).
export * as note from './note.js';

export const LEAF_TAG = Buffer.from('stemedb.v1.Leaf\0', 'latin1');
export const HASH_BYTES = 32;
/** Proofs longer than this are refused before any hashing (a u64 tree needs at most 64). */
export const PROOF_HASHES_MAX = 64;
const U64_MAX = (1n << 64n) - 1n;

/** The root of the empty tree, SHA-256 of nothing. */
export const EMPTY_ROOT = createHash('sha256').digest();

/** A proof, a root or a size that does not verify: the claim is refused. */
export class ProofError extends Error {
  constructor(message) {
    super(message);
    this.name = 'ProofError';
  }
}

/** SHA-256(0x00 || leaf). */
export function leafHash(leaf) {
  return createHash('sha256').update(Buffer.from([0])).update(leaf).digest();
}

/** SHA-256(0x01 || left || right). */
export function nodeHash(left, right) {
  return createHash('sha256').update(Buffer.from([1])).update(left).update(right).digest();
}

function u32(n) {
  const b = Buffer.alloc(4);
  b.writeUInt32BE(n);
  return b;
}

function u64(n) {
  const b = Buffer.alloc(8);
  b.writeBigUInt64BE(n);
  return b;
}

function big(value, what, ErrorClass = ProofError) {
  let v;
  if (typeof value === 'bigint') v = value;
  else if (Number.isSafeInteger(value)) v = BigInt(value);
  else throw new ErrorClass(`${what} must be an integer, got ${String(value)}`);
  if (v < 0n || v > U64_MAX) throw new ErrorClass(`${what} must be in [0, 2**64 - 1], got ${v}`);
  return v;
}

function signaturesOf(record) {
  if (record.vote) return [[record.vote.agent_id, record.vote.signature]];
  const body = record.assertion ?? record.epoch;
  if (!body) throw new TypeError('record has no kind set');
  return (body.signatures ?? []).map((s) => [s.public_key, s.signature]);
}

/** The leaf bytes of `record` (the JSON form of canonical.js) appended at `lsn`. */
export function leafBytes(lsn, record) {
  const n = big(lsn, 'lsn', RangeError);
  if (n < 1n) throw new RangeError('lsn must be at least 1');
  const sigs = signaturesOf(record);
  const parts = [LEAF_TAG, u64(n), canonicalBytes(record), u32(sigs.length)];
  sigs.forEach(([pub, sig], i) => {
    const p = toBytes(pub, `signatures[${i}].public_key`);
    if (p.length !== 32) throw new RangeError(`signatures[${i}].public_key must be 32 bytes, got ${p.length}`);
    const s = toBytes(sig, `signatures[${i}].signature`);
    parts.push(p, u32(s.length), s);
  });
  return Buffer.concat(parts);
}

/** The leaf hash of `record` appended at `lsn`. */
export function recordLeafHash(lsn, record) {
  return leafHash(leafBytes(lsn, record));
}

function hash32(value, what) {
  let b;
  try {
    b = toBytes(value, what);
  } catch {
    throw new ProofError(`${what} must be 32 bytes`);
  }
  if (b.length !== HASH_BYTES) throw new ProofError(`${what} must be 32 bytes, got ${b.length}`);
  return b;
}

function proofHashes(proof) {
  if (!Array.isArray(proof)) throw new ProofError('proof must be an array of hashes');
  if (proof.length > PROOF_HASHES_MAX) throw new ProofError(`proof has ${proof.length} hashes, more than ${PROOF_HASHES_MAX}`);
  return proof.map((p, i) => hash32(p, `proof[${i}]`));
}

/**
 * Checks that `leaf` (a leaf hash) is leaf `leafIndex` of the tree of `treeSize` with `root`
 * (RFC 9162 section 2.1.3.2); throws ProofError otherwise.
 */
export function verifyInclusion(leaf, leafIndex, treeSize, proof, root) {
  const index = big(leafIndex, 'leaf_index');
  const size = big(treeSize, 'tree_size');
  const path = proofHashes(proof);
  let r = hash32(leaf, 'leaf hash');
  const expected = hash32(root, 'root');
  if (index >= size) throw new ProofError(`leaf_index ${index} is not in a tree of size ${size}`);
  let fn = index;
  let sn = size - 1n;
  for (const p of path) {
    if (sn === 0n) throw new ProofError(`proof is too long for leaf ${index} of a tree of ${size}`);
    if ((fn & 1n) === 1n || fn === sn) {
      r = nodeHash(p, r);
      while (fn !== 0n && (fn & 1n) === 0n) {
        fn >>= 1n;
        sn >>= 1n;
      }
    } else {
      r = nodeHash(r, p);
    }
    fn >>= 1n;
    sn >>= 1n;
  }
  if (sn !== 0n) throw new ProofError(`proof is too short for leaf ${index} of a tree of ${size}`);
  if (!r.equals(expected)) throw new ProofError(`inclusion proof of leaf ${index} does not lead to the root of tree ${size}`);
}

/**
 * Checks that the tree of `firstSize` with `firstRoot` is a prefix of the tree of `secondSize`
 * with `secondRoot` (RFC 9162 section 2.1.4.2); throws ProofError otherwise. Equal sizes need an
 * empty proof and equal roots; a first size of 0 is refused.
 */
export function verifyConsistency(firstSize, secondSize, proof, firstRoot, secondRoot) {
  const m = big(firstSize, 'first_size');
  const n = big(secondSize, 'second_size');
  let path = proofHashes(proof);
  const first = hash32(firstRoot, 'first root');
  const second = hash32(secondRoot, 'second root');
  if (m === 0n) throw new ProofError('first_size must be at least 1: no consistency proof from an empty tree');
  if (m > n) throw new ProofError(`first_size ${m} is larger than second_size ${n}`);
  if (m === n) {
    if (path.length) throw new ProofError('a consistency proof between equal sizes must be empty');
    if (!first.equals(second)) throw new ProofError(`two different roots for the same tree size ${m}`);
    return;
  }
  if (!path.length) throw new ProofError('empty consistency proof between different sizes');
  if ((m & (m - 1n)) === 0n) path = [first, ...path];
  let fn = m - 1n;
  let sn = n - 1n;
  while ((fn & 1n) === 1n) {
    fn >>= 1n;
    sn >>= 1n;
  }
  let fr = path[0];
  let sr = path[0];
  for (const c of path.slice(1)) {
    if (sn === 0n) throw new ProofError(`consistency proof ${m} -> ${n} is too long`);
    if ((fn & 1n) === 1n || fn === sn) {
      fr = nodeHash(c, fr);
      sr = nodeHash(c, sr);
      while (fn !== 0n && (fn & 1n) === 0n) {
        fn >>= 1n;
        sn >>= 1n;
      }
    } else {
      sr = nodeHash(sr, c);
    }
    fn >>= 1n;
    sn >>= 1n;
  }
  if (sn !== 0n) throw new ProofError(`consistency proof ${m} -> ${n} is too short`);
  if (!fr.equals(first)) throw new ProofError(`consistency proof does not lead to the root of tree ${m}`);
  if (!sr.equals(second)) throw new ProofError(`consistency proof does not lead to the root of tree ${n}`);
}

function verifierOf(key) {
  return typeof key === 'string' ? parseVerifierKey(key) : key;
}

/**
 * Checks that `record`, exactly as appended at `lsn` (signatures included), is in the log the
 * signed checkpoint commits to. `treeSize`, when given, is the size the proof was made for (a
 * GetInclusionProof response's tree_size) and must be the checkpoint's. Returns the checkpoint.
 * Throws ProofError or a NoteError.
 */
export function checkRecordInclusion({ checkpoint, verifierKey, lsn, record, proof, treeSize }) {
  const n = big(lsn, 'lsn');
  if (n < 1n) throw new ProofError('lsn must be at least 1');
  let leaf;
  try {
    leaf = recordLeafHash(n, record);
  } catch (err) {
    throw new ProofError(`record cannot be a leaf: ${err.message}`);
  }
  return checkLeafInclusion({ checkpoint, verifierKey, leafIndex: n - 1n, leaf, proof, treeSize });
}

/** Like checkRecordInclusion, for a leaf hash at a leaf index. */
export function checkLeafInclusion({ checkpoint, verifierKey, leafIndex, leaf, proof, treeSize }) {
  const cp = openCheckpoint(checkpoint, verifierOf(verifierKey));
  if (treeSize !== undefined && treeSize !== null && big(treeSize, 'tree_size') !== cp.treeSize) {
    throw new ProofError(`proof is for tree size ${treeSize}, the checkpoint is of size ${cp.treeSize}`);
  }
  verifyInclusion(leaf, leafIndex, cp.treeSize, proof, cp.rootHash);
  return cp;
}

/**
 * Checks that the log of the `second` signed checkpoint extends that of the `first` (both signed
 * by the log's key). Returns both checkpoints. Throws ProofError or a NoteError.
 */
export function checkConsistency({ first, second, verifierKey, proof }) {
  const v = verifierOf(verifierKey);
  const a = openCheckpoint(first, v);
  const b = openCheckpoint(second, v);
  verifyConsistency(a.treeSize, b.treeSize, proof, a.rootHash, b.rootHash);
  return [a, b];
}
