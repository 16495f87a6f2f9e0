// @stemedb/client: the public API.

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

export { checkSignatures, makeAssertion, makeEpoch, makeVote, signRecord } from './records.js';

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

export { LENS_NAME_BYTES_MAX, STATUSES } from './query.js';

export { status } from '@grpc/grpc-js';
export * from './merkle.js';
