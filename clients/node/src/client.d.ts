// Type declarations of client.js: the Promise-based gRPC client of the writer (or the wallet's
// signing proxy) and the ingestor (StoreService, QueryService, LogService).
import type { ChannelCredentials, ChannelOptions, Metadata } from '@grpc/grpc-js';

import type { Assertion, Bytes, Epoch, StemeRecord, Vote } from './canonical.js';
import type { Checkpoint, Verifier } from './note.js';
import type { HistoryEntry, Lens, Resolution, Tally } from './query.js';

/**
 * What every append answers: the record's content hash (64 hex digits), its LSN, and the size
 * of the Merkle tree that includes it (0 from a writer without the verifiable log).
 */
export interface Receipt {
  hash: string;
  lsn: number;
  treeSize: number;
}

export interface ClientOptions {
  /** Writer address, default "127.0.0.1:50051". */
  writer?: string;
  /** Store (ingestor) address, default "127.0.0.1:50052". */
  store?: string;
  /** Per-call deadline, retries included (default 10000). */
  deadlineMs?: number;
  /** Attempts on UNAVAILABLE (default 5). */
  maxAttempts?: number;
  /** First backoff (default 100 ms), doubled each retry. */
  initialBackoffMs?: number;
  /** Backoff cap (default 2000 ms). */
  maxBackoffMs?: number;
  /** Check the hash of records read by key (default true). */
  verifyReads?: boolean;
  /** Default insecure; or set `tls: true`. */
  credentials?: ChannelCredentials;
  /** TLS with the system roots. */
  tls?: boolean;
  channelOptions?: ChannelOptions;
  /** Directory holding stemedb/v1/*.proto (default: env STEMEDB_PROTO_DIR, then ../../protos). */
  protoDir?: string;
  /**
   * The wallet key that signs unsigned records: sent as `stemedb-key` metadata with every
   * append (the wallet's signing proxy reads it; the writer ignores it).
   */
  key?: string;
}

export interface CallOptions {
  deadlineMs?: number;
}

export interface AppendOptions extends CallOptions {
  /** The wallet key for this call (overrides the client's `key`). */
  key?: string;
}

/** A uint64: a number, a bigint or a decimal string. */
export type U64Input = number | bigint | string;

export interface ReadOptions extends CallOptions {
  /** Wait until the store has applied this LSN (read-your-writes). */
  minLsn?: U64Input;
}

export interface PageOptions extends ReadOptions {
  pageSize?: number;
  pageToken?: string;
}

export interface GetResult {
  found: boolean;
  value: Buffer;
  /** The JSON-form record for record keys (H:, V:, E:), null otherwise. */
  record: StemeRecord | null;
  appliedLsn: number;
}

export interface ScanEntry {
  key: Buffer;
  keyString: string;
  value: Buffer;
}

export interface ScanPage {
  entries: ScanEntry[];
  nextPageToken: string;
  appliedLsn: number;
}

export interface AssertionResult {
  found: boolean;
  assertion: Assertion | null;
  appliedLsn: number;
}

export interface AssertionPage {
  assertions: Array<{ hash: string; assertion: Assertion }>;
  nextPageToken: string;
  appliedLsn: number;
}

export interface VotePage {
  votes: Array<{ hash: string; vote: Vote }>;
  nextPageToken: string;
  appliedLsn: number;
}

export interface LensOptions extends ReadOptions {
  /** The lens' name; default "consensus". */
  lens?: string;
}

export interface ResolveOptions extends LensOptions {
  /** Answer as at this LSN (0 or unset: now); above the applied LSN is INVALID_ARGUMENT. */
  asOfLsn?: U64Input;
}

export interface LensPageOptions extends LensOptions {
  pageSize?: number;
  pageToken?: string;
}

export interface ResolveResult {
  resolution: Resolution;
  appliedLsn: number;
}

export interface ResolutionPage {
  resolutions: Resolution[];
  nextPageToken: string;
  appliedLsn: number;
}

export interface TallyResult {
  found: boolean;
  /** null when the assertion is unknown. */
  tally: Tally | null;
  policyHash: string;
  appliedLsn: number;
}

export interface HistoryPage {
  entries: HistoryEntry[];
  nextPageToken: string;
  appliedLsn: number;
}

export interface LensList {
  lenses: Lens[];
  policyHash: string;
  candidatesMax: number;
  appliedLsn: number;
}

export interface CheckpointResult {
  /** The C2SP signed note text. */
  checkpoint: string;
  /** The verifier key the store serves: for first contact only, pin yours out of band. */
  verifierKey: string;
  appliedLsn: number;
}

export interface InclusionProof {
  leafIndex: number;
  treeSize: number;
  hashes: Buffer[];
  /** The record exactly as appended at the LSN (JSON form). */
  record: StemeRecord | null;
  checkpoint: string;
  appliedLsn: number;
}

export interface ConsistencyProof {
  hashes: Buffer[];
  appliedLsn: number;
}

export interface LsnPage {
  lsns: number[];
  nextPageToken: string;
  appliedLsn: number;
}

export interface VerifyOptions extends CallOptions {
  /** The log's verifier key, pinned out of band (text or a parsed Verifier). Required. */
  verifierKey: string | Verifier;
  /** Verify against this signed checkpoint (e.g. a witness's) instead of the store's. */
  checkpoint?: string;
  /** Check this append only (e.g. a receipt's LSN); waits (half the deadline at most) for a checkpoint that covers it. */
  lsn?: U64Input;
}

export interface VerifyResult {
  /** False when the record is not in the checkpoint's log. */
  found: boolean;
  /** The LSNs whose inclusion was proved. */
  lsns: number[];
  checkpoint: Checkpoint;
  checkpointText: string;
}

export interface ExtendsResult {
  checkpoint: Checkpoint;
  checkpointText: string;
}

export class StemeClient {
  constructor(options?: ClientOptions);
  readonly writerAddress: string;
  readonly storeAddress: string;
  /** Closes both channels. */
  close(): void;
  /** The client's wallet key name, if any. */
  readonly key: string | undefined;
  appendAssertion(assertion: Assertion | { assertion: Assertion }, opts?: AppendOptions): Promise<Receipt>;
  /** An unsigned vote (no signature) is for the wallet, which fills in agent_id and sequence. */
  appendVote(vote: UnsignedVote | { vote: UnsignedVote }, opts?: AppendOptions): Promise<Receipt>;
  appendEpoch(epoch: Epoch | { epoch: Epoch }, opts?: AppendOptions): Promise<Receipt>;
  /** All or nothing, one durable commit; receipts[i] answers records[i]. */
  appendBatch(records: StemeRecord[], opts?: AppendOptions): Promise<Receipt[]>;
  /** Reads one key (a string, UTF-8 encoded, or bytes). */
  get(key: string | Uint8Array, opts?: ReadOptions): Promise<GetResult>;
  /** One page of the keys under a prefix, in byte order (AIP-158). */
  scanPrefix(prefix: string | Uint8Array, opts?: PageOptions): Promise<ScanPage>;
  /** Every entry under a prefix, following page tokens. */
  scanPrefixAll(prefix: string | Uint8Array, opts?: ReadOptions & { pageSize?: number }): AsyncGenerator<ScanEntry, void, undefined>;
  /** One assertion by its hash, with the union of its co-signatures. */
  getAssertion(hash: Bytes, opts?: ReadOptions): Promise<AssertionResult>;
  listAssertionsBySubject(subject: string, opts?: PageOptions): Promise<AssertionPage>;
  listVotes(assertionHash: Bytes, opts?: PageOptions): Promise<VotePage>;

  /** The resolution of one slot under a lens, now or as of an earlier LSN. */
  resolve(subject: string, predicate: string, opts?: ResolveOptions): Promise<ResolveResult>;
  /** One page of resolutions, one per predicate of the subject. */
  resolveSubject(subject: string, opts?: LensPageOptions): Promise<ResolutionPage>;
  /** Every resolution of a subject, following page tokens. */
  resolveSubjectAll(subject: string, opts?: LensOptions & { pageSize?: number }): AsyncGenerator<Resolution, void, undefined>;
  /** The tally of one assertion. */
  getTally(assertionHash: Bytes, opts?: ReadOptions): Promise<TallyResult>;
  /** One page of a slot's changes of winner or status, oldest first. */
  listHistory(subject: string, predicate: string, opts?: LensPageOptions): Promise<HistoryPage>;
  /** Every history entry of a slot, following page tokens. */
  listHistoryAll(subject: string, predicate: string, opts?: LensOptions & { pageSize?: number }): AsyncGenerator<HistoryEntry, void, undefined>;
  listLenses(opts?: CallOptions): Promise<LensList>;

  getCheckpoint(opts?: CallOptions): Promise<CheckpointResult>;
  getInclusionProof(lsn: U64Input, opts?: CallOptions & { treeSize?: U64Input }): Promise<InclusionProof>;
  getConsistencyProof(firstSize: U64Input, secondSize: U64Input, opts?: CallOptions): Promise<ConsistencyProof>;
  listRecordLsns(hash: Bytes, opts?: PageOptions): Promise<LsnPage>;
  /** Checks, without trusting the store, that a record is in the signed log. */
  verifyRecord(hash: Bytes, opts: VerifyOptions): Promise<VerifyResult>;
  /** Checks that the served log extends a trusted checkpoint; returns the new one. */
  checkLogExtends(trustedCheckpoint: string, opts: CallOptions & { verifierKey: string | Verifier }): Promise<ExtendsResult>;
}

/** A vote for the wallet to sign: agent_id, signature and sequence may be left out. */
export type UnsignedVote = Omit<Vote, 'agent_id' | 'signature'> & { agent_id?: Bytes; signature?: Bytes };

/** The request metadata that names the wallet key ("stemedb-key"). */
export const KEY_METADATA: string;

/** A failed RPC. */
export class StemeRpcError extends Error {
  constructor(method: string, err: { code: number; details?: string; message: string; metadata?: Metadata });
  readonly name: 'StemeRpcError';
  /** "WriterService.AppendAssertion", ... */
  readonly method: string;
  /** The gRPC status code (compare with `status.INVALID_ARGUMENT`, ...). */
  readonly code: number;
  /** e.g. "INVALID_ARGUMENT". */
  readonly codeName: string;
  readonly details: string;
  readonly metadata: Metadata | undefined;
}

/** The hash in a receipt (or a store read) differs from the one computed locally. */
export class HashMismatchError extends Error {
  constructor(what: string, expected: string, actual: string);
  readonly name: 'HashMismatchError';
  readonly expected: string;
  readonly actual: string;
}

export function defaultProtoDir(): string;
export const LOADER_OPTIONS: Readonly<{
  keepCase: boolean;
  longs: StringConstructor;
  enums: StringConstructor;
  bytes: BufferConstructor;
  defaults: boolean;
  oneofs: boolean;
}>;
/** Loads the writer, store, query and log protos (cached); returns the stemedb.v1 package object. */
export function loadProtos(protoDir?: string): Record<string, unknown>;
/** The proto message object (for grpc-js) of a JSON-form record body. */
export function bodyToProto(kind: 'assertion' | 'vote' | 'epoch', body: Assertion | Vote | Epoch, field?: string): Record<string, unknown>;
export function recordToProto(record: StemeRecord): Record<string, unknown>;
export function bodyFromProto(kind: 'assertion', message: unknown): Assertion;
export function bodyFromProto(kind: 'vote', message: unknown): Vote;
export function bodyFromProto(kind: 'epoch', message: unknown): Epoch;
export function recordFromProto(message: unknown): StemeRecord;
