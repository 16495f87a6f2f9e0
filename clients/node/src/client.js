// StemeClient: a Promise-based gRPC client for the StemeDB writer (WriterService) and store
// (StoreService, served by the ingestor).
//
// Records go in and come out in the JSON form of src/canonical.js ({assertion: {...}}, bytes as
// hex). Every append computes the record's hash locally and checks it against the receipt. Calls
// that fail with UNAVAILABLE are retried with exponential backoff: this is safe for appends too,
// since a record is its hash (a repeated append is a new event with the same hash; the store
// dedupes). Each call has a deadline (`deadlineMs`) that also bounds its retries.

import { existsSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

import grpc from '@grpc/grpc-js';
import protoLoader from '@grpc/proto-loader';

import {
  hash as recordHash,
  recordKind,
  supersessionTypeName,
  supersessionTypeNumber,
  toBytes,
  visualHashToBigInt,
  visualHashToHex,
  voteSequence,
} from './canonical.js';

const HERE = path.dirname(fileURLToPath(import.meta.url));

/** The protos directory: option, then env STEMEDB_PROTO_DIR, then ../../protos of this package. */
export function defaultProtoDir() {
  return process.env.STEMEDB_PROTO_DIR || path.resolve(HERE, '..', '..', '..', 'protos');
}

/** proto-loader options: snake_case fields (the JSON form), 64-bit ints as strings, bytes as Buffers. */
export const LOADER_OPTIONS = Object.freeze({
  keepCase: true,
  longs: String,
  enums: String,
  bytes: Buffer,
  defaults: true,
  oneofs: true,
});

const packageCache = new Map();

/** Loads writer.proto and store.proto from `protoDir` (cached) and returns the stemedb.v1 package. */
export function loadProtos(protoDir = defaultProtoDir()) {
  const dir = path.resolve(protoDir);
  let pkg = packageCache.get(dir);
  if (pkg) return pkg;
  const files = ['stemedb/v1/writer.proto', 'stemedb/v1/store.proto'];
  for (const f of files) {
    if (!existsSync(path.join(dir, f))) {
      throw new Error(
        `StemeDB protos not found: ${path.join(dir, f)} is missing ` +
          '(set the protoDir option or the STEMEDB_PROTO_DIR environment variable)',
      );
    }
  }
  const def = protoLoader.loadSync(files, { ...LOADER_OPTIONS, includeDirs: [dir] });
  pkg = grpc.loadPackageDefinition(def).stemedb.v1;
  packageCache.set(dir, pkg);
  return pkg;
}

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

const hex = (b) => Buffer.from(b ?? []).toString('hex');

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

function lsnToNumber(v) {
  if (v === undefined || v === null || v === '') return 0;
  const n = Number(v);
  if (!Number.isSafeInteger(n)) throw new RangeError(`LSN ${v} exceeds Number.MAX_SAFE_INTEGER`);
  return n;
}

function lsnToString(v) {
  if (v === undefined || v === null) return '0';
  const b = BigInt(v); // number, bigint or decimal string
  if (b < 0n) throw new RangeError('minLsn must be >= 0');
  return b.toString(10);
}

function keyBytes(key, field) {
  if (typeof key === 'string') return Buffer.from(key, 'utf8');
  if (key instanceof Uint8Array) return Buffer.from(key.buffer, key.byteOffset, key.byteLength);
  throw new TypeError(`${field} must be a string or a Uint8Array`);
}

function hashBytes(h, field) {
  const b = toBytes(h, field);
  if (b.length !== 32) throw new RangeError(`${field} must be 32 bytes (64 hex digits)`);
  return b;
}

function receiptFromProto(r) {
  return { hash: hex(r?.hash), lsn: lsnToNumber(r?.lsn) };
}

const RECORD_PREFIX = { H: 'assertion', V: 'vote', E: 'epoch' };

// ---------------------------------------------------------------------------------------------
// The client

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

export class StemeClient {
  /**
   * @param {object} [options]
   * @param {string} [options.writer]  writer address, default "127.0.0.1:50051"
   * @param {string} [options.store]   store (ingestor) address, default "127.0.0.1:50052"
   * @param {number} [options.deadlineMs] per-call deadline, retries included (default 10000)
   * @param {number} [options.maxAttempts] attempts on UNAVAILABLE (default 5)
   * @param {number} [options.initialBackoffMs] first backoff (default 100), doubled each retry
   * @param {number} [options.maxBackoffMs] backoff cap (default 2000)
   * @param {boolean} [options.verifyReads] check the hash of records read by key (default true)
   * @param {grpc.ChannelCredentials} [options.credentials] default insecure; or set `tls: true`
   * @param {boolean} [options.tls] use TLS with the system roots
   * @param {object} [options.channelOptions] grpc-js channel options
   * @param {string} [options.protoDir] directory holding stemedb/v1/*.proto
   */
  constructor(options = {}) {
    this.writerAddress = options.writer ?? '127.0.0.1:50051';
    this.storeAddress = options.store ?? '127.0.0.1:50052';
    this.deadlineMs = options.deadlineMs ?? 10_000;
    this.maxAttempts = Math.max(1, options.maxAttempts ?? 5);
    this.initialBackoffMs = options.initialBackoffMs ?? 100;
    this.maxBackoffMs = options.maxBackoffMs ?? 2_000;
    this.verifyReads = options.verifyReads ?? true;
    const creds =
      options.credentials ??
      (options.tls ? grpc.credentials.createSsl() : grpc.credentials.createInsecure());
    const pkg = loadProtos(options.protoDir ?? defaultProtoDir());
    const chOpts = options.channelOptions ?? {};
    this.writer = new pkg.WriterService(this.writerAddress, creds, chOpts);
    this.store = new pkg.StoreService(this.storeAddress, creds, chOpts);
  }

  /** Closes both channels. */
  close() {
    this.writer.close();
    this.store.close();
  }

  async #call(stub, service, method, request, opts = {}) {
    const deadlineMs = opts.deadlineMs ?? this.deadlineMs;
    const deadline = Date.now() + deadlineMs;
    const name = `${service}.${method}`;
    let backoff = this.initialBackoffMs;
    for (let attempt = 1; ; attempt++) {
      try {
        return await new Promise((resolve, reject) => {
          stub[method](request, { deadline }, (err, res) => (err ? reject(err) : resolve(res)));
        });
      } catch (err) {
        const retryable = err?.code === grpc.status.UNAVAILABLE;
        const wait = Math.min(backoff, this.maxBackoffMs) * (0.5 + Math.random() / 2);
        if (!retryable || attempt >= this.maxAttempts || Date.now() + wait >= deadline) {
          if (err && typeof err.code === 'number') throw new StemeRpcError(name, err);
          throw err;
        }
        await sleep(wait);
        backoff *= 2;
      }
    }
  }

  #checkReceipt(what, expectedHash, receipt) {
    const got = receiptFromProto(receipt);
    if (got.hash !== expectedHash) throw new HashMismatchError(what, expectedHash, got.hash);
    return got;
  }

  async #appendOne(kind, method, body, opts) {
    const record = { [kind]: body };
    const expected = recordHash(record).toString('hex');
    const req = { [kind]: bodyToProto(kind, body) };
    const res = await this.#call(this.writer, 'WriterService', method, req, opts);
    return this.#checkReceipt(method, expected, res.receipt);
  }

  /**
   * Appends one assertion. Accepts the body or the wrapped record ({assertion: body}).
   * @returns {Promise<{hash: string, lsn: number}>}
   */
  appendAssertion(assertion, opts) {
    return this.#appendOne('assertion', 'AppendAssertion', unwrap('assertion', assertion), opts);
  }

  /** Appends one vote (body or {vote: body}); its signature is mandatory. */
  appendVote(vote, opts) {
    return this.#appendOne('vote', 'AppendVote', unwrap('vote', vote), opts);
  }

  /** Appends one epoch (body or {epoch: body}). */
  appendEpoch(epoch, opts) {
    return this.#appendOne('epoch', 'AppendEpoch', unwrap('epoch', epoch), opts);
  }

  /**
   * Appends JSON-form records all-or-nothing in one durable commit.
   * @returns {Promise<Array<{hash: string, lsn: number}>>} receipts[i] answers records[i]
   */
  async appendBatch(records, opts) {
    const expected = records.map((r) => recordHash(r).toString('hex'));
    const req = { records: records.map(recordToProto) };
    const res = await this.#call(this.writer, 'WriterService', 'AppendBatch', req, opts);
    const receipts = res.receipts ?? [];
    if (receipts.length !== records.length) {
      throw new Error(
        `AppendBatch: sent ${records.length} records but got ${receipts.length} receipts`,
      );
    }
    return receipts.map((r, i) => this.#checkReceipt(`AppendBatch records[${i}]`, expected[i], r));
  }

  /**
   * Reads one key (a string, UTF-8 encoded, or bytes).
   * @returns {Promise<{found: boolean, value: Buffer, record: object|null, appliedLsn: number}>}
   *   `record` is the JSON-form record for record keys (H:, V:, E:), null otherwise.
   */
  async get(key, { minLsn, deadlineMs } = {}) {
    const k = keyBytes(key, 'key');
    const res = await this.#call(
      this.store,
      'StoreService',
      'Get',
      { key: k, min_lsn: lsnToString(minLsn) },
      { deadlineMs },
    );
    const record = res.found ? recordFromProto(res.record) : null;
    if (record && this.verifyReads) checkRecordKey(k, record);
    return {
      found: Boolean(res.found),
      value: res.value ?? Buffer.alloc(0),
      record,
      appliedLsn: lsnToNumber(res.applied_lsn),
    };
  }

  /**
   * Lists one page of keys under a prefix, in byte order (AIP-158 pagination).
   * @returns {Promise<{entries: Array<{key: Buffer, keyString: string, value: Buffer}>,
   *   nextPageToken: string, appliedLsn: number}>}
   */
  async scanPrefix(prefix, { pageSize, pageToken, minLsn, deadlineMs } = {}) {
    const res = await this.#call(
      this.store,
      'StoreService',
      'ScanPrefix',
      {
        prefix: keyBytes(prefix ?? '', 'prefix'),
        page_size: pageSize ?? 0,
        page_token: pageToken ?? '',
        min_lsn: lsnToString(minLsn),
      },
      { deadlineMs },
    );
    return {
      entries: (res.entries ?? []).map((e) => ({
        key: e.key,
        keyString: Buffer.from(e.key).toString('utf8'),
        value: e.value,
      })),
      nextPageToken: res.next_page_token ?? '',
      appliedLsn: lsnToNumber(res.applied_lsn),
    };
  }

  /** Iterates over every entry under a prefix, following page tokens. */
  async *scanPrefixAll(prefix, opts = {}) {
    let pageToken = '';
    do {
      const page = await this.scanPrefix(prefix, { ...opts, pageToken });
      yield* page.entries;
      pageToken = page.nextPageToken;
    } while (pageToken);
  }

  /**
   * Reads one assertion by its hash (hex or bytes), with the union of its co-signatures.
   * @returns {Promise<{found: boolean, assertion: object|null, appliedLsn: number}>}
   */
  async getAssertion(hashHex, { minLsn, deadlineMs } = {}) {
    const h = hashBytes(hashHex, 'hash');
    const res = await this.#call(
      this.store,
      'StoreService',
      'GetAssertion',
      { hash: h, min_lsn: lsnToString(minLsn) },
      { deadlineMs },
    );
    const assertion = res.found && res.assertion ? bodyFromProto('assertion', res.assertion) : null;
    if (assertion && this.verifyReads) {
      const got = recordHash({ assertion }).toString('hex');
      if (got !== h.toString('hex')) throw new HashMismatchError('GetAssertion', h.toString('hex'), got);
    }
    return { found: Boolean(res.found), assertion, appliedLsn: lsnToNumber(res.applied_lsn) };
  }

  /**
   * Lists one page of the assertions about a subject, in hash order.
   * @returns {Promise<{assertions: Array<{hash: string, assertion: object}>,
   *   nextPageToken: string, appliedLsn: number}>}
   */
  async listAssertionsBySubject(subject, { pageSize, pageToken, minLsn, deadlineMs } = {}) {
    const res = await this.#call(
      this.store,
      'StoreService',
      'ListAssertionsBySubject',
      {
        subject,
        page_size: pageSize ?? 0,
        page_token: pageToken ?? '',
        min_lsn: lsnToString(minLsn),
      },
      { deadlineMs },
    );
    return {
      assertions: (res.assertions ?? []).map((a) => ({
        hash: hex(a.hash),
        assertion: bodyFromProto('assertion', a.assertion ?? {}),
      })),
      nextPageToken: res.next_page_token ?? '',
      appliedLsn: lsnToNumber(res.applied_lsn),
    };
  }

  /**
   * Lists one page of the votes on an assertion (hash as hex or bytes), in vote-hash order.
   * @returns {Promise<{votes: Array<{hash: string, vote: object}>, nextPageToken: string,
   *   appliedLsn: number}>}
   */
  async listVotes(assertionHash, { pageSize, pageToken, minLsn, deadlineMs } = {}) {
    const res = await this.#call(
      this.store,
      'StoreService',
      'ListVotes',
      {
        assertion_hash: hashBytes(assertionHash, 'assertionHash'),
        page_size: pageSize ?? 0,
        page_token: pageToken ?? '',
        min_lsn: lsnToString(minLsn),
      },
      { deadlineMs },
    );
    return {
      votes: (res.votes ?? []).map((v) => ({ hash: hex(v.hash), vote: bodyFromProto('vote', v.vote ?? {}) })),
      nextPageToken: res.next_page_token ?? '',
      appliedLsn: lsnToNumber(res.applied_lsn),
    };
  }
}

function unwrap(kind, x) {
  if (x && typeof x === 'object' && Object.keys(x).length === 1 && x[kind] && typeof x[kind] === 'object') {
    return x[kind];
  }
  return x;
}

// For H:/V:/E:<64 hex> keys: the record read back must hash to the key's hash.
function checkRecordKey(keyBuf, record) {
  const key = keyBuf.toString('latin1');
  const m = /^([HVE]):([0-9a-f]{64})$/.exec(key);
  if (!m) return;
  const [kind] = recordKind(record);
  if (RECORD_PREFIX[m[1]] !== kind) {
    throw new Error(`Get ${key}: the store answered a ${kind} for a ${RECORD_PREFIX[m[1]]} key`);
  }
  const got = recordHash(record).toString('hex');
  if (got !== m[2]) throw new HashMismatchError(`Get ${key}`, m[2], got);
}
