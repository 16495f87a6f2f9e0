// Type declarations of client.js: the Promise-based gRPC client of the writer and the store.
import type { ChannelCredentials, ChannelOptions, Metadata } from '@grpc/grpc-js';

import type { Assertion, Bytes, Epoch, StemeRecord, Vote } from './canonical.js';

/** What every append answers: the record's content hash (64 hex digits) and its LSN. */
export interface Receipt {
  hash: string;
  lsn: number;
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
}

export interface CallOptions {
  deadlineMs?: number;
}

export interface ReadOptions extends CallOptions {
  /** Wait until the store has applied this LSN (read-your-writes). */
  minLsn?: number | bigint | string;
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

export class StemeClient {
  constructor(options?: ClientOptions);
  readonly writerAddress: string;
  readonly storeAddress: string;
  /** Closes both channels. */
  close(): void;
  appendAssertion(assertion: Assertion | { assertion: Assertion }, opts?: CallOptions): Promise<Receipt>;
  appendVote(vote: Vote | { vote: Vote }, opts?: CallOptions): Promise<Receipt>;
  appendEpoch(epoch: Epoch | { epoch: Epoch }, opts?: CallOptions): Promise<Receipt>;
  /** All or nothing, one durable commit; receipts[i] answers records[i]. */
  appendBatch(records: StemeRecord[], opts?: CallOptions): Promise<Receipt[]>;
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
}

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
/** Loads writer.proto and store.proto (cached) and returns the stemedb.v1 package object. */
export function loadProtos(protoDir?: string): Record<string, unknown>;
/** The proto message object (for grpc-js) of a JSON-form record body. */
export function bodyToProto(kind: 'assertion' | 'vote' | 'epoch', body: Assertion | Vote | Epoch, field?: string): Record<string, unknown>;
export function recordToProto(record: StemeRecord): Record<string, unknown>;
export function bodyFromProto(kind: 'assertion', message: unknown): Assertion;
export function bodyFromProto(kind: 'vote', message: unknown): Vote;
export function bodyFromProto(kind: 'epoch', message: unknown): Epoch;
export function recordFromProto(message: unknown): StemeRecord;
