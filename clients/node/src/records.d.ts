// Type declarations of records.js: building and signing records (see canonical.d.ts).
import type { Assertion, Bytes, Epoch, SignatureEntry, StemeRecord, Vote } from './canonical.js';

/** A copy of the record signed by each seed (32 bytes, hex or bytes). */
export function signRecord<R extends StemeRecord>(record: R, ...seeds: Bytes[]): R;
/** A signed assertion record from its fields and the signers' seeds. */
export function makeAssertion(
  fields: Assertion,
  ...seeds: Bytes[]
): { assertion: Assertion & { signatures: SignatureEntry[] } };
/** A signed epoch record from its fields and the signers' seeds. */
export function makeEpoch(
  fields: Epoch,
  ...seeds: Bytes[]
): { epoch: Epoch & { signatures: SignatureEntry[] } };
/** A vote record on `assertionHash` with `weight`, signed by `seed` (agent_id is its key). */
export function makeVote(
  fields: { assertionHash: Bytes; weight: number; sequence?: number | bigint | string },
  seed: Bytes,
): { vote: Vote & { agent_id: Bytes; signature: Bytes } };

export interface SignatureCheck {
  ok: boolean;
  checked: number;
  /** The fields whose signature failed, e.g. "assertion.signatures[1].signature". */
  failed: string[];
}
/** Verifies every signature of a record against its hash. */
export function checkSignatures(record: StemeRecord): SignatureCheck;
