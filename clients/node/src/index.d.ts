// @stemedb/client: type declarations of the public API (index.js), hand-written beside the
// JavaScript, so TypeScript agents need no build step. `make nodetest` checks them with
// `tsc --noEmit` against examples/agent.ts; test/types.test.js checks every export is declared.

export {
  ASSERTION_TAG,
  EPOCH_TAG,
  SUPERSESSION_TYPES,
  VOTE_TAG,
  assertionBytes,
  canonicalBytes,
  contentHash,
  epochBytes,
  generateSeed,
  hash,
  hashHex,
  normalizeRecord,
  publicKeyFromSeed,
  recordKind,
  sign,
  toBytes,
  toHex,
  verify,
  voteBytes,
  voteSequence,
} from './canonical.js';
export type {
  Assertion,
  Bytes,
  Epoch,
  RecordKind,
  SignatureEntry,
  StemeRecord,
  SupersessionTypeName,
  Value,
  Vote,
} from './canonical.js';

export { checkSignatures, makeAssertion, makeEpoch, makeVote, signRecord } from './records.js';
export type { SignatureCheck } from './records.js';

export {
  HashMismatchError,
  KEY_METADATA,
  LOADER_OPTIONS,
  StemeClient,
  StemeRpcError,
  defaultProtoDir,
  loadProtos,
  recordFromProto,
  recordToProto,
} from './client.js';
export type {
  AppendOptions,
  AssertionPage,
  AssertionResult,
  CallOptions,
  CheckpointResult,
  ClientOptions,
  ConsistencyProof,
  ExtendsResult,
  GetResult,
  HistoryPage,
  InclusionProof,
  LensList,
  LensOptions,
  LensPageOptions,
  LsnPage,
  PageOptions,
  ReadOptions,
  Receipt,
  ResolutionPage,
  ResolveOptions,
  ResolveResult,
  ScanEntry,
  ScanPage,
  TallyResult,
  U64Input,
  UnsignedVote,
  VerifyOptions,
  VerifyResult,
  VotePage,
} from './client.js';
export { LENS_NAME_BYTES_MAX, STATUSES } from './query.js';
export type { Candidate, HistoryEntry, Lens, Resolution, Status, Tally, Winner } from './query.js';

export { status } from '@grpc/grpc-js';
export * from './merkle.js';
