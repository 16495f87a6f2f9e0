// StemeClient: a Promise-based gRPC client for the StemeDB writer (WriterService, or the wallet's
// signing proxy of it) and the ingestor (StoreService, QueryService, LogService).
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

import { hash as recordHash, normalizeRecord, recordKind, toBytes } from './canonical.js';
import {
  HashMismatchError,
  RECORD_PREFIX,
  StemeRpcError,
  bodyFromProto,
  bodyToProto,
  hashBytes,
  hex,
  keyBytes,
  lsnToNumber,
  lsnToString,
  receiptFromProto,
  recordFromProto,
  recordToProto,
} from './proto.js';
import {
  historyEntryFromProto,
  lensField,
  lensFromProto,
  resolutionFromProto,
  tallyFromProto,
} from './query.js';
import { checkLogExtends, verifyRecord } from './verify.js';

export { HashMismatchError, StemeRpcError, bodyFromProto, bodyToProto, recordFromProto, recordToProto };

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

/** Loads the writer, store, query and log protos from `protoDir` (cached); returns stemedb.v1. */
export function loadProtos(protoDir = defaultProtoDir()) {
  const dir = path.resolve(protoDir);
  let pkg = packageCache.get(dir);
  if (pkg) return pkg;
  const files = [
    'stemedb/v1/writer.proto',
    'stemedb/v1/store.proto',
    'stemedb/v1/query.proto',
    'stemedb/v1/log.proto',
  ];
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
   * @param {string} [options.key] the wallet key that signs unsigned records (sent as the
   *   `stemedb-key` metadata of every append; only the wallet's signing proxy reads it)
   */
  constructor(options = {}) {
    this.writerAddress = options.writer ?? '127.0.0.1:50051';
    this.storeAddress = options.store ?? '127.0.0.1:50052';
    this.deadlineMs = options.deadlineMs ?? 10_000;
    this.maxAttempts = Math.max(1, options.maxAttempts ?? 5);
    this.initialBackoffMs = options.initialBackoffMs ?? 100;
    this.maxBackoffMs = options.maxBackoffMs ?? 2_000;
    this.verifyReads = options.verifyReads ?? true;
    this.key = options.key === undefined ? undefined : walletKeyName(options.key, 'key');
    const creds =
      options.credentials ??
      (options.tls ? grpc.credentials.createSsl() : grpc.credentials.createInsecure());
    const pkg = loadProtos(options.protoDir ?? defaultProtoDir());
    const chOpts = options.channelOptions ?? {};
    this.writer = new pkg.WriterService(this.writerAddress, creds, chOpts);
    this.store = new pkg.StoreService(this.storeAddress, creds, chOpts);
    // QueryService and LogService are served by the ingestor beside StoreService: one channel.
    const shared = { ...chOpts, channelOverride: this.store.getChannel() };
    this.query = new pkg.QueryService(this.storeAddress, creds, shared);
    this.log = new pkg.LogService(this.storeAddress, creds, shared);
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
    const metadata = new grpc.Metadata();
    if (opts.key !== undefined) metadata.set(KEY_METADATA, opts.key);
    let backoff = this.initialBackoffMs;
    for (let attempt = 1; ; attempt++) {
      try {
        return await new Promise((resolve, reject) => {
          stub[method](request, metadata, { deadline }, (err, res) => (err ? reject(err) : resolve(res)));
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

  // The options of an append call: its deadline and the wallet key (per call, else the client's).
  #appendOptions(opts = {}) {
    const key = opts.key === undefined ? this.key : walletKeyName(opts.key, 'key');
    return { deadlineMs: opts.deadlineMs, key };
  }

  #checkReceipt(what, expectedHash, receipt) {
    const got = receiptFromProto(receipt);
    if (expectedHash !== null && got.hash !== expectedHash) {
      throw new HashMismatchError(what, expectedHash, got.hash);
    }
    return got;
  }

  async #appendOne(kind, method, body, opts) {
    // NFC first: the hash checked against the receipt is of the text the writer accepts.
    const record = normalizeRecord({ [kind]: body });
    const expected = expectedHash(record);
    const req = { [kind]: bodyToProto(kind, record[kind]) };
    const res = await this.#call(this.writer, 'WriterService', method, req, this.#appendOptions(opts));
    return this.#checkReceipt(method, expected, res.receipt);
  }

  /**
   * Appends one assertion. Accepts the body or the wrapped record ({assertion: body}).
   * @returns {Promise<{hash: string, lsn: number, treeSize: number}>}
   */
  appendAssertion(assertion, opts) {
    return this.#appendOne('assertion', 'AppendAssertion', unwrap('assertion', assertion), opts);
  }

  /**
   * Appends one vote (body or {vote: body}). The writer needs it signed; the wallet's proxy
   * signs an unsigned one (no `signature`), filling in `agent_id` and `sequence` itself.
   */
  appendVote(vote, opts) {
    return this.#appendOne('vote', 'AppendVote', unwrap('vote', vote), opts);
  }

  /** Appends one epoch (body or {epoch: body}). */
  appendEpoch(epoch, opts) {
    return this.#appendOne('epoch', 'AppendEpoch', unwrap('epoch', epoch), opts);
  }

  /**
   * Appends JSON-form records all-or-nothing in one durable commit.
   * @returns {Promise<Array<{hash: string, lsn: number, treeSize: number}>>} receipts[i]
   *   answers records[i]
   */
  async appendBatch(records, opts) {
    records = records.map((r, i) => normalizeRecord(r, `records[${i}]`));
    const expected = records.map(expectedHash);
    const req = { records: records.map(recordToProto) };
    const res = await this.#call(this.writer, 'WriterService', 'AppendBatch', req, this.#appendOptions(opts));
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

  // -------------------------------------------------------------------------------------------
  // QueryService (DESIGN 9.6): answers in the JSON form of src/query.js (the gateway's)

  /**
   * The resolution of one slot under a lens (default consensus), now or as of an earlier LSN.
   * @returns {Promise<{resolution: object, appliedLsn: number}>}
   */
  async resolve(subject, predicate, { lens, minLsn, asOfLsn, deadlineMs } = {}) {
    const req = {
      subject: textField(subject, 'subject'),
      predicate: textField(predicate, 'predicate'),
      lens: lensField(lens),
      min_lsn: lsnToString(minLsn, 'minLsn'),
      as_of_lsn: lsnToString(asOfLsn, 'asOfLsn'),
    };
    const res = await this.#call(this.query, 'QueryService', 'Resolve', req, { deadlineMs });
    return {
      resolution: resolutionFromProto(res.resolution ?? {}, { verify: this.verifyReads }),
      appliedLsn: lsnToNumber(res.applied_lsn),
    };
  }

  /**
   * One page of resolutions, one per predicate of the subject, in predicate byte order.
   * @returns {Promise<{resolutions: object[], nextPageToken: string, appliedLsn: number}>}
   */
  async resolveSubject(subject, { lens, pageSize, pageToken, minLsn, deadlineMs } = {}) {
    const req = {
      subject: textField(subject, 'subject'),
      lens: lensField(lens),
      page_size: pageSizeField(pageSize),
      page_token: pageToken ?? '',
      min_lsn: lsnToString(minLsn, 'minLsn'),
    };
    const res = await this.#call(this.query, 'QueryService', 'ResolveSubject', req, { deadlineMs });
    return {
      resolutions: (res.resolutions ?? []).map((r) => resolutionFromProto(r, { verify: this.verifyReads })),
      nextPageToken: res.next_page_token ?? '',
      appliedLsn: lsnToNumber(res.applied_lsn),
    };
  }

  /** Iterates over every resolution of a subject, following page tokens. */
  async *resolveSubjectAll(subject, opts = {}) {
    let pageToken = '';
    do {
      const page = await this.resolveSubject(subject, { ...opts, pageToken });
      yield* page.resolutions;
      pageToken = page.nextPageToken;
    } while (pageToken);
  }

  /**
   * The tally of one assertion (hash as hex or bytes); `found` is false when it is unknown.
   * @returns {Promise<{found: boolean, tally: object|null, policyHash: string, appliedLsn: number}>}
   */
  async getTally(assertionHash, { minLsn, deadlineMs } = {}) {
    const req = { assertion_hash: hashBytes(assertionHash, 'assertionHash'), min_lsn: lsnToString(minLsn, 'minLsn') };
    const res = await this.#call(this.query, 'QueryService', 'GetTally', req, { deadlineMs });
    return {
      found: Boolean(res.found),
      tally: res.found && res.tally ? tallyFromProto(res.tally) : null,
      policyHash: hex(res.policy_hash),
      appliedLsn: lsnToNumber(res.applied_lsn),
    };
  }

  /**
   * One page of a slot's changes of winner or status under a lens, oldest first.
   * @returns {Promise<{entries: object[], nextPageToken: string, appliedLsn: number}>}
   */
  async listHistory(subject, predicate, { lens, pageSize, pageToken, minLsn, deadlineMs } = {}) {
    const req = {
      subject: textField(subject, 'subject'),
      predicate: textField(predicate, 'predicate'),
      lens: lensField(lens),
      page_size: pageSizeField(pageSize),
      page_token: pageToken ?? '',
      min_lsn: lsnToString(minLsn, 'minLsn'),
    };
    const res = await this.#call(this.query, 'QueryService', 'ListHistory', req, { deadlineMs });
    return {
      entries: (res.entries ?? []).map(historyEntryFromProto),
      nextPageToken: res.next_page_token ?? '',
      appliedLsn: lsnToNumber(res.applied_lsn),
    };
  }

  /** Iterates over every history entry of a slot, following page tokens. */
  async *listHistoryAll(subject, predicate, opts = {}) {
    let pageToken = '';
    do {
      const page = await this.listHistory(subject, predicate, { ...opts, pageToken });
      yield* page.entries;
      pageToken = page.nextPageToken;
    } while (pageToken);
  }

  /**
   * The built-in lenses, their descriptions and the parameters in force.
   * @returns {Promise<{lenses: object[], policyHash: string, candidatesMax: number, appliedLsn: number}>}
   */
  async listLenses({ deadlineMs } = {}) {
    const res = await this.#call(this.query, 'QueryService', 'ListLenses', {}, { deadlineMs });
    return {
      lenses: (res.lenses ?? []).map(lensFromProto),
      policyHash: hex(res.policy_hash),
      candidatesMax: res.candidates_max ?? 0,
      appliedLsn: lsnToNumber(res.applied_lsn),
    };
  }

  // -------------------------------------------------------------------------------------------
  // LogService (DESIGN 13). Its answers are not trusted: verifyRecord checks them.

  /**
   * The newest writer-signed checkpoint the ingestor has applied, and the verifier key it
   * serves (for first contact only: pin the key out of band).
   * @returns {Promise<{checkpoint: string, verifierKey: string, appliedLsn: number}>}
   */
  async getCheckpoint({ deadlineMs } = {}) {
    const res = await this.#call(this.log, 'LogService', 'GetCheckpoint', {}, { deadlineMs });
    return {
      checkpoint: res.checkpoint ?? '',
      verifierKey: res.verifier_key ?? '',
      appliedLsn: lsnToNumber(res.applied_lsn),
    };
  }

  /**
   * The inclusion proof of the record appended at `lsn`, in the tree of `treeSize` (default: the
   * served checkpoint's). `record` is the record exactly as appended (JSON form).
   * @returns {Promise<{leafIndex: number, treeSize: number, hashes: Buffer[], record: object|null,
   *   checkpoint: string, appliedLsn: number}>}
   */
  async getInclusionProof(lsn, { treeSize, deadlineMs } = {}) {
    const req = { lsn: lsnToString(lsn, 'lsn'), tree_size: lsnToString(treeSize, 'treeSize') };
    const res = await this.#call(this.log, 'LogService', 'GetInclusionProof', req, { deadlineMs });
    return {
      leafIndex: lsnToNumber(res.leaf_index),
      treeSize: lsnToNumber(res.tree_size),
      hashes: (res.hashes ?? []).map((h) => Buffer.from(h)),
      record: recordFromProto(res.record),
      checkpoint: res.checkpoint ?? '',
      appliedLsn: lsnToNumber(res.applied_lsn),
    };
  }

  /**
   * The consistency proof between two tree sizes (empty when they are equal).
   * @returns {Promise<{hashes: Buffer[], appliedLsn: number}>}
   */
  async getConsistencyProof(firstSize, secondSize, { deadlineMs } = {}) {
    const req = {
      first_size: lsnToString(firstSize, 'firstSize'),
      second_size: lsnToString(secondSize, 'secondSize'),
    };
    const res = await this.#call(this.log, 'LogService', 'GetConsistencyProof', req, { deadlineMs });
    return { hashes: (res.hashes ?? []).map((h) => Buffer.from(h)), appliedLsn: lsnToNumber(res.applied_lsn) };
  }

  /**
   * One page of the LSNs at which a record (by its hash) was appended, oldest first.
   * @returns {Promise<{lsns: number[], nextPageToken: string, appliedLsn: number}>}
   */
  async listRecordLsns(hash, { pageSize, pageToken, minLsn, deadlineMs } = {}) {
    const req = {
      hash: hashBytes(hash, 'hash'),
      page_size: pageSizeField(pageSize),
      page_token: pageToken ?? '',
      min_lsn: lsnToString(minLsn, 'minLsn'),
    };
    const res = await this.#call(this.log, 'LogService', 'ListRecordLsns', req, { deadlineMs });
    return {
      lsns: (res.lsns ?? []).map((n) => lsnToNumber(n)),
      nextPageToken: res.next_page_token ?? '',
      appliedLsn: lsnToNumber(res.applied_lsn),
    };
  }

  /**
   * Checks, without trusting the store, that a record is in the signed log (src/verify.js): the
   * checkpoint (the store's, or `checkpoint`) must verify with the pinned `verifierKey`, and each
   * append of the record (`lsn` alone, or every LSN ListRecordLsns gives) must have an inclusion
   * proof leading to its root from a leaf recomputed from the record, which must hash to `hash`.
   * Throws ProofError or a note error; `found` is false when the record is not in that log.
   * @returns {Promise<{found: boolean, lsns: number[], checkpoint: object, checkpointText: string}>}
   */
  verifyRecord(hash, opts) {
    return verifyRecord(this, hash, opts);
  }

  /**
   * Checks that the log served now extends a trusted checkpoint (a witness's step, src/verify.js);
   * returns the new checkpoint. Throws ProofError or a note error.
   * @returns {Promise<{checkpoint: object, checkpointText: string}>}
   */
  checkLogExtends(trustedCheckpoint, opts) {
    return checkLogExtends(this, trustedCheckpoint, opts);
  }
}

// A request's page_size is an int32 (0 means the service's default).
const PAGE_SIZE_MAX = 2 ** 31 - 1;

function pageSizeField(v) {
  if (v === undefined || v === null) return 0;
  if (!Number.isInteger(v) || v < 0 || v > PAGE_SIZE_MAX) {
    throw new RangeError(`pageSize must be an integer in [0, ${PAGE_SIZE_MAX}], got ${v}`);
  }
  return v;
}

function textField(v, field) {
  if (typeof v !== 'string') throw new TypeError(`${field} must be a string`);
  return v;
}

/** The request metadata that names the wallet key signing unsigned records (DESIGN 11). */
export const KEY_METADATA = 'stemedb-key';
// The wallet's key-name rule (docs/wallet.md): checked here too, so that a bad name is refused
// before any call, naming the option.
const KEY_NAME_PATTERN = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$/;

function walletKeyName(name, field) {
  if (typeof name !== 'string' || !KEY_NAME_PATTERN.test(name)) {
    throw new TypeError(
      `${field}: ${JSON.stringify(name)} is not a wallet key name: 1 to 64 characters of ` +
        '[A-Za-z0-9_.-], starting with a letter or digit',
    );
  }
  return name;
}

// The hash a receipt must carry, or null when it cannot be known here: an unsigned vote gets its
// agent_id and sequence (both hashed) from the wallet that signs it. (The writer itself refuses
// an unsigned vote, so nothing unchecked is stored through it.)
function expectedHash(record) {
  const [kind, body] = recordKind(record);
  if (kind === 'vote' && toBytes(body.signature ?? '', 'vote.signature').length === 0) return null;
  return recordHash(record).toString('hex');
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
