// Type declarations of merkle.js: the log's Merkle tree (RFC 9162) and proof checks.
import type { Bytes, StemeRecord } from './canonical.js';
import type { Checkpoint, Verifier } from './note.js';

export * as note from './note.js';

export const LEAF_TAG: Buffer;
export const HASH_BYTES: number;
/** Proofs longer than this are refused before any hashing. */
export const PROOF_HASHES_MAX: number;
/** The root of the empty tree, SHA-256 of nothing. */
export const EMPTY_ROOT: Buffer;

/** A proof, a root or a size that does not verify: the claim is refused. */
export class ProofError extends Error {
  constructor(message: string);
}

/** An integer in [0, 2**64 - 1]. */
export type U64 = number | bigint;

export function leafHash(leaf: Uint8Array): Buffer;
export function nodeHash(left: Uint8Array, right: Uint8Array): Buffer;
/** The leaf bytes of `record` appended at `lsn` (signatures included). */
export function leafBytes(lsn: U64, record: StemeRecord): Buffer;
export function recordLeafHash(lsn: U64, record: StemeRecord): Buffer;
/** Throws ProofError unless `leaf` is leaf `leafIndex` of the tree of `treeSize` with `root`. */
export function verifyInclusion(leaf: Bytes, leafIndex: U64, treeSize: U64, proof: Bytes[], root: Bytes): void;
/** Throws ProofError unless the first tree is a prefix of the second. */
export function verifyConsistency(firstSize: U64, secondSize: U64, proof: Bytes[], firstRoot: Bytes, secondRoot: Bytes): void;
/** Checks `record` appended at `lsn` is in the log the signed checkpoint commits to. */
export function checkRecordInclusion(args: {
  checkpoint: string | Uint8Array;
  verifierKey: Verifier | string;
  lsn: U64;
  record: StemeRecord;
  proof: Bytes[];
  treeSize?: U64 | null;
}): Checkpoint;
export function checkLeafInclusion(args: {
  checkpoint: string | Uint8Array;
  verifierKey: Verifier | string;
  leafIndex: U64;
  leaf: Bytes;
  proof: Bytes[];
  treeSize?: U64 | null;
}): Checkpoint;
/** Checks the log of the `second` checkpoint extends that of the `first`. */
export function checkConsistency(args: {
  first: string | Uint8Array;
  second: string | Uint8Array;
  verifierKey: Verifier | string;
  proof: Bytes[];
}): [Checkpoint, Checkpoint];
