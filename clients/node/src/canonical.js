// Canonical encoding, BLAKE3-256 content hashes and ed25519 signatures of StemeDB records.
//
// The specification is docs/canonical-encoding.md; tests/vectors/canonical.json holds the test
// vectors this module is tested against (test/vectors.test.js). Records are plain JS objects in the
// JSON form shared with Python (stemedb.jsonrecord): {assertion: {...}}, {vote: {...}} or
// {epoch: {...}}, bytes as lowercase hex strings (a Uint8Array/Buffer is accepted too),
// visual_hash as 16 hex digits (or a bigint), numbers as JS numbers (-0 is kept distinct from 0),
// supersession_type as the enum name (or its number).
//
// Like the Python encoder, this one expects a valid record: it throws on a malformed field (wrong
// type, a hash that is not 32 bytes) but does not enforce the service's limits (lengths, ranges);
// the writer does, and answers INVALID_ARGUMENT naming the field.

import {
  createPrivateKey,
  createPublicKey,
  randomBytes,
  sign as nodeSign,
  verify as nodeVerify,
} from 'node:crypto';
import { blake3 } from '@noble/hashes/blake3';

export const ASSERTION_TAG = Buffer.from('stemedb.v1.Assertion\0', 'latin1');
export const VOTE_TAG = Buffer.from('stemedb.v1.Vote\0', 'latin1');
export const EPOCH_TAG = Buffer.from('stemedb.v1.Epoch\0', 'latin1');

/** SupersessionType enum names and numbers (records.proto). */
export const SUPERSESSION_TYPES = Object.freeze({
  SUPERSESSION_TYPE_UNSPECIFIED: 0,
  SUPERSESSION_TYPE_EXTENSION: 1,
  SUPERSESSION_TYPE_REFINEMENT: 2,
  SUPERSESSION_TYPE_REVOLUTION: 3,
});

const SUPERSESSION_NAMES = Object.freeze(
  Object.fromEntries(Object.entries(SUPERSESSION_TYPES).map(([k, v]) => [v, k])),
);

const VALUE_TEXT = 1;
const VALUE_NUMBER = 2;
const VALUE_FLAG = 3;
const VALUE_BLOB = 4;
const VALUE_REF = 5;

const HEX_RE = /^(?:[0-9a-fA-F]{2})*$/;

// ---------------------------------------------------------------------------------------------
// Bytes helpers

/**
 * Bytes from a hex string or a Uint8Array/Buffer; `undefined`/`null` is empty.
 * @param {string|Uint8Array|null|undefined} v
 * @param {string} field the field name used in error messages
 * @returns {Buffer}
 */
export function toBytes(v, field = 'value') {
  if (v === undefined || v === null) return Buffer.alloc(0);
  if (typeof v === 'string') {
    if (!HEX_RE.test(v)) throw new TypeError(`${field} must be an even-length hex string`);
    return Buffer.from(v, 'hex');
  }
  if (v instanceof Uint8Array) return Buffer.from(v.buffer, v.byteOffset, v.byteLength);
  throw new TypeError(`${field} must be a hex string or a Uint8Array`);
}

/** Lowercase hex of bytes (a hex string is returned lowercased). */
export function toHex(v) {
  return toBytes(v).toString('hex');
}

function u8(x) {
  return Buffer.from([x]);
}

function u32(x) {
  const b = Buffer.alloc(4);
  b.writeUInt32BE(x);
  return b;
}

function u64(x) {
  const b = Buffer.alloc(8);
  b.writeBigUInt64BE(x);
  return b;
}

function f64(x, field) {
  if (typeof x !== 'number') throw new TypeError(`${field} must be a number`);
  const b = Buffer.alloc(8);
  b.writeDoubleBE(x); // exact bits: -0 is 80 00 .. 00
  return b;
}

function str(s, field) {
  if (s === undefined || s === null) s = '';
  if (typeof s !== 'string') throw new TypeError(`${field} must be a string`);
  const b = Buffer.from(s, 'utf8');
  if (b.toString('utf8') !== s) {
    // A lone surrogate cannot be encoded as UTF-8; Buffer would silently substitute U+FFFD.
    throw new TypeError(`${field} is not valid Unicode (lone surrogate)`);
  }
  return Buffer.concat([u32(b.length), b]);
}

function blob(b) {
  return Buffer.concat([u32(b.length), b]);
}

function hash32(v, field) {
  const b = toBytes(v, field);
  if (b.length !== 32) {
    throw new RangeError(`${field} must be 32 bytes for canonical encoding, got ${b.length}`);
  }
  return b;
}

function optHash(v, field) {
  const b = toBytes(v, field);
  return b.length === 0 ? u8(0) : Buffer.concat([u8(1), hash32(b, field)]);
}

/**
 * The 64-bit visual hash as a bigint, or null when unset. Accepts 16 hex digits or a bigint.
 */
export function visualHashToBigInt(v, field = 'assertion.visual_hash') {
  if (v === undefined || v === null) return null;
  if (typeof v === 'bigint') {
    if (v < 0n || v > 0xffffffffffffffffn) throw new RangeError(`${field} must fit in 64 bits`);
    return v;
  }
  if (typeof v === 'string' && /^[0-9a-fA-F]{16}$/.test(v)) return BigInt('0x' + v);
  throw new TypeError(`${field} must be 16 hex digits (64 bits)`);
}

/** 16 lowercase hex digits of a 64-bit visual hash given as a bigint, decimal string or number. */
export function visualHashToHex(v) {
  return BigInt(v).toString(16).padStart(16, '0');
}

/** The number of a SupersessionType given by name or number (missing is UNSPECIFIED). */
export function supersessionTypeNumber(v, field = 'epoch.supersession_type') {
  if (v === undefined || v === null) return 0;
  if (typeof v === 'number' && Number.isInteger(v) && v >= 0 && v <= 0xffffffff) return v;
  if (typeof v === 'string' && Object.hasOwn(SUPERSESSION_TYPES, v)) return SUPERSESSION_TYPES[v];
  throw new TypeError(`${field}: unknown value ${JSON.stringify(v)}`);
}

/** The enum name of a SupersessionType number (unknown numbers are returned as numbers). */
export function supersessionTypeName(n) {
  if (typeof n === 'string') return n;
  return SUPERSESSION_NAMES[n] ?? n;
}

// ---------------------------------------------------------------------------------------------
// Records

function valueBytes(obj, field) {
  if (obj === null || typeof obj !== 'object') {
    throw new TypeError(`${field} must be an object with exactly one of text/number/flag/blob/ref`);
  }
  const kinds = Object.keys(obj).filter((k) => obj[k] !== undefined);
  if (kinds.length !== 1) {
    throw new TypeError(`${field} must be an object with exactly one of text/number/flag/blob/ref`);
  }
  const kind = kinds[0];
  const v = obj[kind];
  switch (kind) {
    case 'text':
      return Buffer.concat([u8(VALUE_TEXT), str(v, `${field}.text`)]);
    case 'number':
      return Buffer.concat([u8(VALUE_NUMBER), f64(v, `${field}.number`)]);
    case 'flag':
      if (typeof v !== 'boolean') throw new TypeError(`${field}.flag must be a boolean`);
      return Buffer.from([VALUE_FLAG, v ? 1 : 0]);
    case 'blob':
      return Buffer.concat([u8(VALUE_BLOB), blob(toBytes(v, `${field}.blob`))]);
    case 'ref':
      return Buffer.concat([u8(VALUE_REF), hash32(v, `${field}.ref`)]);
    default:
      throw new TypeError(`${field}.${kind} is an unknown kind: use text/number/flag/blob/ref`);
  }
}

/** Canonical bytes of an assertion body (the object under `assertion`); signatures excluded. */
export function assertionBytes(a, field = 'assertion') {
  const vh = visualHashToBigInt(a.visual_hash, `${field}.visual_hash`);
  return Buffer.concat([
    ASSERTION_TAG,
    str(a.subject, `${field}.subject`),
    str(a.predicate, `${field}.predicate`),
    valueBytes(a.object, `${field}.object`),
    f64(a.confidence ?? 0, `${field}.confidence`),
    hash32(a.source_hash, `${field}.source_hash`),
    vh === null ? u8(0) : Buffer.concat([u8(1), u64(vh)]),
    optHash(a.epoch, `${field}.epoch`),
  ]);
}

/**
 * A vote's sequence as a bigint: a non-negative safe-integer number, a bigint or a decimal string
 * (as protobuf loaders give uint64); absent is 0.
 */
export function voteSequence(x, field = 'vote.sequence') {
  if (x === undefined || x === null || x === '') return 0n;
  let n;
  if (typeof x === 'bigint') n = x;
  else if (typeof x === 'number' && Number.isSafeInteger(x)) n = BigInt(x);
  else if (typeof x === 'string' && /^[0-9]{1,20}$/.test(x)) n = BigInt(x);
  else throw new TypeError(`${field} must be a non-negative integer`);
  if (n < 0n || n >= 1n << 64n) throw new TypeError(`${field} must be in [0, 2^64)`);
  return n;
}

/**
 * Canonical bytes of a vote body (the object under `vote`); signature excluded. Sequence 0 keeps
 * the v1 bytes; any other sequence follows the weight as u64.
 */
export function voteBytes(v, field = 'vote') {
  const seq = voteSequence(v.sequence, `${field}.sequence`);
  const parts = [
    VOTE_TAG,
    hash32(v.assertion_hash, `${field}.assertion_hash`),
    hash32(v.agent_id, `${field}.agent_id`),
    f64(v.weight ?? 0, `${field}.weight`),
  ];
  if (seq !== 0n) parts.push(u64(seq));
  return Buffer.concat(parts);
}

/** Canonical bytes of an epoch body (the object under `epoch`); signatures excluded. */
export function epochBytes(e, field = 'epoch') {
  return Buffer.concat([
    EPOCH_TAG,
    str(e.name, `${field}.name`),
    str(e.description, `${field}.description`),
    optHash(e.supersedes, `${field}.supersedes`),
    u32(supersessionTypeNumber(e.supersession_type, `${field}.supersession_type`)),
  ]);
}

/**
 * The kind ("assertion", "vote" or "epoch") and body of a JSON-form record.
 * @returns {[string, object]}
 */
export function recordKind(record) {
  if (record === null || typeof record !== 'object') {
    throw new TypeError('record must be an object with one key: "assertion", "vote" or "epoch"');
  }
  const keys = Object.keys(record).filter((k) => record[k] !== undefined);
  if (keys.length !== 1 || !['assertion', 'vote', 'epoch'].includes(keys[0])) {
    throw new TypeError('record must be an object with one key: "assertion", "vote" or "epoch"');
  }
  const body = record[keys[0]];
  if (body === null || typeof body !== 'object') throw new TypeError(`record.${keys[0]} must be an object`);
  return [keys[0], body];
}

/** Canonical bytes of a JSON-form record ({assertion}, {vote} or {epoch}). */
export function canonicalBytes(record) {
  const [kind, body] = recordKind(record);
  if (kind === 'assertion') return assertionBytes(body);
  if (kind === 'vote') return voteBytes(body);
  return epochBytes(body);
}

/** BLAKE3-256 of canonical bytes. */
export function contentHash(canonical) {
  return Buffer.from(blake3(canonical, { dkLen: 32 }));
}

/** The 32-byte content hash (a Buffer) of a JSON-form record. */
export function hash(record) {
  return contentHash(canonicalBytes(record));
}

/** The content hash of a JSON-form record as 64 lowercase hex digits. */
export function hashHex(record) {
  return hash(record).toString('hex');
}

// ---------------------------------------------------------------------------------------------
// ed25519 (Node's built-in crypto, RFC 8032 pure Ed25519)

// DER prefixes wrapping a raw 32-byte ed25519 seed (PKCS#8) and public key (SPKI).
const PKCS8_PREFIX = Buffer.from('302e020100300506032b657004220420', 'hex');
const SPKI_PREFIX = Buffer.from('302a300506032b6570032100', 'hex');

function privateKeyObject(seed) {
  const s = toBytes(seed, 'seed');
  if (s.length !== 32) throw new RangeError(`an ed25519 seed must be 32 bytes, got ${s.length}`);
  return createPrivateKey({ key: Buffer.concat([PKCS8_PREFIX, s]), format: 'der', type: 'pkcs8' });
}

/** The 32-byte ed25519 public key (a Buffer) of a 32-byte seed (hex or bytes). */
export function publicKeyFromSeed(seed) {
  const der = createPublicKey(privateKeyObject(seed)).export({ format: 'der', type: 'spki' });
  return Buffer.from(der.subarray(der.length - 32));
}

/** The 64-byte ed25519 signature (a Buffer) of a 32-byte content hash by a 32-byte seed. */
export function sign(seed32, contentHash32) {
  const h = toBytes(contentHash32, 'hash');
  if (h.length !== 32) throw new RangeError(`the signed hash must be 32 bytes, got ${h.length}`);
  return nodeSign(null, h, privateKeyObject(seed32));
}

/** True when `sig` is a valid ed25519 signature of `contentHash32` by public key `pub`. */
export function verify(pub, sig, contentHash32) {
  let p;
  let s;
  let h;
  try {
    p = toBytes(pub, 'public_key');
    s = toBytes(sig, 'signature');
    h = toBytes(contentHash32, 'hash');
  } catch {
    return false;
  }
  if (p.length !== 32 || s.length !== 64) return false;
  try {
    const key = createPublicKey({ key: Buffer.concat([SPKI_PREFIX, p]), format: 'der', type: 'spki' });
    return nodeVerify(null, h, key, s);
  } catch {
    return false; // not a valid curve point
  }
}

/** A fresh random 32-byte ed25519 seed (a Buffer; keep it secret). */
export function generateSeed() {
  return randomBytes(32);
}
