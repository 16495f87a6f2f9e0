// Type declarations of canonical.js: the canonical encoding, BLAKE3 content hashes, ed25519.
// Hand-written beside the JavaScript (no build step); `make nodetest` checks them with
// `tsc --noEmit` against examples/agent.ts, and test/types.test.js that every export is declared.

/** Bytes as lowercase (or any-case) hex, or a Buffer / Uint8Array. */
export type Bytes = string | Uint8Array;

/** A SupersessionType by its enum name (records.proto). */
export type SupersessionTypeName =
  | 'SUPERSESSION_TYPE_UNSPECIFIED'
  | 'SUPERSESSION_TYPE_EXTENSION'
  | 'SUPERSESSION_TYPE_REFINEMENT'
  | 'SUPERSESSION_TYPE_REVOLUTION';

/** The object of an assertion: exactly one of the fields. */
export type Value =
  | { text: string }
  | { number: number }
  | { flag: boolean }
  | { blob: Bytes }
  | { ref: Bytes };

/** One co-signature of an assertion or an epoch. */
export interface SignatureEntry {
  public_key: Bytes;
  signature: Bytes;
}

/** An assertion body (the object under `assertion`), in the JSON form shared with Python. */
export interface Assertion {
  subject: string;
  predicate: string;
  object: Value;
  /** In [0, 1]. */
  confidence: number;
  /** 32 bytes. */
  source_hash: Bytes;
  /** 16 hex digits (64-bit perceptual hash), or a bigint. */
  visual_hash?: string | bigint;
  /** Hash of an Epoch, 32 bytes; empty for none. */
  epoch?: Bytes;
  signatures?: SignatureEntry[];
}

/** A vote body (the object under `vote`). */
export interface Vote {
  /** 32 bytes. */
  assertion_hash: Bytes;
  /** The voter's ed25519 public key, 32 bytes. */
  agent_id?: Bytes;
  /** Finite, in [-1, 1]; negative disputes. */
  weight: number;
  /** 64 bytes. */
  signature?: Bytes;
}

/** An epoch body (the object under `epoch`). */
export interface Epoch {
  name: string;
  description?: string;
  /** Hash of an earlier epoch, 32 bytes; empty for none. */
  supersedes?: Bytes;
  supersession_type?: SupersessionTypeName | number;
  signatures?: SignatureEntry[];
}

export type RecordKind = 'assertion' | 'vote' | 'epoch';

/** A JSON-form record: exactly one of the three kinds. */
export type StemeRecord = { assertion: Assertion } | { vote: Vote } | { epoch: Epoch };

export const ASSERTION_TAG: Buffer;
export const VOTE_TAG: Buffer;
export const EPOCH_TAG: Buffer;
export const SUPERSESSION_TYPES: Readonly<Record<SupersessionTypeName, number>>;

/** Bytes from hex or a Uint8Array; null/undefined is empty. Throws naming `field`. */
export function toBytes(v: Bytes | null | undefined, field?: string): Buffer;
/** Lowercase hex of bytes (a hex string is returned lowercased). */
export function toHex(v: Bytes): string;
/** The 64-bit visual hash as a bigint, or null when unset. */
export function visualHashToBigInt(v: string | bigint | null | undefined, field?: string): bigint | null;
/** 16 lowercase hex digits of a 64-bit visual hash. */
export function visualHashToHex(v: bigint | string | number): string;
export function supersessionTypeNumber(v: SupersessionTypeName | number | null | undefined, field?: string): number;
export function supersessionTypeName(n: number): SupersessionTypeName | number;

export function assertionBytes(a: Assertion, field?: string): Buffer;
/** A vote's sequence as a bigint (0 when unset); throws a TypeError naming ``field`` unless it
 * is a non-negative integer below 2^64 (a safe integer, a bigint or a decimal string). */
export function voteSequence(x: number | bigint | string | null | undefined, field?: string): bigint;
export function voteBytes(v: Vote, field?: string): Buffer;
export function epochBytes(e: Epoch, field?: string): Buffer;
/** The kind and body of a JSON-form record. */
export function recordKind(record: StemeRecord): [RecordKind, Assertion | Vote | Epoch];
/** The record with its naming text in Unicode NFC (the same object when nothing changes). */
export function normalizeRecord<R extends StemeRecord>(record: R, field?: string): R;
export function canonicalBytes(record: StemeRecord): Buffer;
/** BLAKE3-256 of canonical bytes. */
export function contentHash(canonical: Uint8Array): Buffer;
/** The 32-byte content hash of a record. */
export function hash(record: StemeRecord): Buffer;
/** The content hash of a record as 64 lowercase hex digits. */
export function hashHex(record: StemeRecord): string;

export function publicKeyFromSeed(seed: Bytes): Buffer;
/** The 64-byte ed25519 signature of a 32-byte content hash by a 32-byte seed. */
export function sign(seed32: Bytes, contentHash32: Bytes): Buffer;
export function verify(pub: Bytes, sig: Bytes, contentHash32: Bytes): boolean;
/** A fresh random 32-byte ed25519 seed (keep it secret). */
export function generateSeed(): Buffer;
