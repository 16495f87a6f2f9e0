// Records and receipts between their JSON form (src/canonical.js: {assertion: {...}}, bytes as hex)
// and the proto message objects of grpc-js (proto-loader with LOADER_OPTIONS of client.js), and
// the client's error classes. Shared by the client's store, query and log calls.

import grpc from '@grpc/grpc-js';

import {
  recordKind,
  supersessionTypeName,
  supersessionTypeNumber,
  toBytes,
  visualHashToBigInt,
  visualHashToHex,
  voteSequence,
} from './canonical.js';

// ---------------------------------------------------------------------------------------------
// Errors

const CODE_NAMES = Object.fromEntries(Object.entries(grpc.status).map(([k, v]) => [v, k]));

/** A failed RPC: `code` (number), `codeName` (e.g. "INVALID_ARGUMENT"), `details`, `method`. */
export class StemeRpcError extends Error {
  constructor(method, err) {
    const codeName = CODE_NAMES[err.code] ?? String(err.code);
    super(`${method} failed: ${codeName}: ${err.details ?? err.message}`, { cause: err });
    this.name = 'StemeRpcError';
    this.method = method;
    this.code = err.code;
    this.codeName = codeName;
    this.details = err.details ?? err.message;
    this.metadata = err.metadata;
  }
}

/** The hash in a receipt (or in a store read) differs from the one computed locally. */
export class HashMismatchError extends Error {
  constructor(what, expected, actual) {
    super(`${what}: hash mismatch: computed ${expected} locally, the service answered ${actual}`);
    this.name = 'HashMismatchError';
    this.expected = expected;
    this.actual = actual;
  }
}

// ---------------------------------------------------------------------------------------------
// JSON form <-> proto message objects

function sigsToProto(list, field) {
  return (list ?? []).map((e, i) => ({
    public_key: toBytes(e.public_key, `${field}.signatures[${i}].public_key`),
    signature: toBytes(e.signature, `${field}.signatures[${i}].signature`),
  }));
}

function valueToProto(v, field) {
  if (v === null || typeof v !== 'object') throw new TypeError(`${field} must be an object`);
  if ('blob' in v) return { blob: toBytes(v.blob, `${field}.blob`) };
  if ('ref' in v) return { ref: toBytes(v.ref, `${field}.ref`) };
  return { ...v };
}

/** The proto message object (for grpc-js) of a JSON-form record body of the given kind. */
export function bodyToProto(kind, b, field = kind) {
  if (kind === 'assertion') {
    const out = {
      subject: b.subject ?? '',
      predicate: b.predicate ?? '',
      confidence: b.confidence ?? 0,
      source_hash: toBytes(b.source_hash, `${field}.source_hash`),
      epoch: toBytes(b.epoch, `${field}.epoch`),
      signatures: sigsToProto(b.signatures, field),
    };
    if (b.object !== undefined) out.object = valueToProto(b.object, `${field}.object`);
    const vh = visualHashToBigInt(b.visual_hash, `${field}.visual_hash`);
    if (vh !== null) out.visual_hash = vh.toString(10);
    return out;
  }
  if (kind === 'vote') {
    return {
      assertion_hash: toBytes(b.assertion_hash, `${field}.assertion_hash`),
      agent_id: toBytes(b.agent_id, `${field}.agent_id`),
      weight: b.weight ?? 0,
      signature: toBytes(b.signature, `${field}.signature`),
      sequence: voteSequence(b.sequence, `${field}.sequence`).toString(10),
    };
  }
  if (kind === 'epoch') {
    return {
      name: b.name ?? '',
      description: b.description ?? '',
      supersedes: toBytes(b.supersedes, `${field}.supersedes`),
      supersession_type: supersessionTypeNumber(b.supersession_type, `${field}.supersession_type`),
      signatures: sigsToProto(b.signatures, field),
    };
  }
  throw new TypeError(`unknown record kind ${JSON.stringify(kind)}`);
}

/** The proto Record message object of a JSON-form record. */
export function recordToProto(record) {
  const [kind, body] = recordKind(record);
  return { [kind]: bodyToProto(kind, body) };
}

export const hex = (b) => Buffer.from(b ?? []).toString('hex');

function sigsFromProto(list) {
  return (list ?? []).map((e) => ({ public_key: hex(e.public_key), signature: hex(e.signature) }));
}

function valueFromProto(v) {
  if (!v) return {};
  const kind = v.kind ?? ['text', 'number', 'flag', 'blob', 'ref'].find((k) => v[k] !== undefined);
  if (kind === 'blob' || kind === 'ref') return { [kind]: hex(v[kind]) };
  if (kind) return { [kind]: v[kind] };
  return {};
}

/** The JSON-form body of a decoded proto message of the given kind (inverse of bodyToProto). */
export function bodyFromProto(kind, m) {
  if (kind === 'assertion') {
    const out = {
      subject: m.subject,
      predicate: m.predicate,
      object: valueFromProto(m.object),
      confidence: m.confidence,
      source_hash: hex(m.source_hash),
    };
    if (m._visual_hash === 'visual_hash' || (m._visual_hash === undefined && m.visual_hash != null)) {
      out.visual_hash = visualHashToHex(m.visual_hash);
    }
    if (m.epoch && m.epoch.length) out.epoch = hex(m.epoch);
    out.signatures = sigsFromProto(m.signatures);
    return out;
  }
  if (kind === 'vote') {
    const out = {
      assertion_hash: hex(m.assertion_hash),
      agent_id: hex(m.agent_id),
      weight: m.weight,
      signature: hex(m.signature),
    };
    const seq = voteSequence(m.sequence);
    if (seq !== 0n) out.sequence = seq <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(seq) : seq;
    return out;
  }
  if (kind === 'epoch') {
    const out = { name: m.name, description: m.description };
    if (m.supersedes && m.supersedes.length) out.supersedes = hex(m.supersedes);
    out.supersession_type = supersessionTypeName(m.supersession_type);
    out.signatures = sigsFromProto(m.signatures);
    return out;
  }
  throw new TypeError(`unknown record kind ${JSON.stringify(kind)}`);
}

/** The JSON-form record of a decoded proto Record, or null when unset. */
export function recordFromProto(r) {
  if (!r) return null;
  const kind = r.kind ?? ['assertion', 'vote', 'epoch'].find((k) => r[k]);
  if (!kind || !r[kind]) return null;
  return { [kind]: bodyFromProto(kind, r[kind]) };
}

export function lsnToNumber(v) {
  if (v === undefined || v === null || v === '') return 0;
  const n = Number(v);
  if (!Number.isSafeInteger(n)) throw new RangeError(`LSN ${v} exceeds Number.MAX_SAFE_INTEGER`);
  return n;
}

const U64_MAX = (1n << 64n) - 1n;

/** A uint64 request field (an LSN or a tree size: number, bigint or decimal string) as a string. */
export function lsnToString(v, field = 'minLsn') {
  if (v === undefined || v === null) return '0';
  let b;
  try {
    b = BigInt(v);
  } catch {
    throw new RangeError(`${field} must be an integer, got ${JSON.stringify(String(v))}`);
  }
  if (b < 0n || b > U64_MAX) throw new RangeError(`${field} must be in [0, 2**64 - 1], got ${b}`);
  return b.toString(10);
}

export function keyBytes(key, field) {
  if (typeof key === 'string') return Buffer.from(key, 'utf8');
  if (key instanceof Uint8Array) return Buffer.from(key.buffer, key.byteOffset, key.byteLength);
  throw new TypeError(`${field} must be a string or a Uint8Array`);
}

export function hashBytes(h, field) {
  const b = toBytes(h, field);
  if (b.length !== 32) throw new RangeError(`${field} must be 32 bytes (64 hex digits)`);
  return b;
}

export function receiptFromProto(r) {
  return { hash: hex(r?.hash), lsn: lsnToNumber(r?.lsn), treeSize: lsnToNumber(r?.tree_size) };
}

export const RECORD_PREFIX = { H: 'assertion', V: 'vote', E: 'epoch' };
