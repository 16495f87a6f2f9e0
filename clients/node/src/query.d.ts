// Type declarations of query.js: the Lattice's answers (QueryService, DESIGN 9.6) in the JSON
// form the gateway serves too (proto field names, hex bytes, numbers, enum names).
import type { Assertion } from './canonical.js';

/** How a lens judges a slot (query.proto `Status`). */
export type Status =
  | 'STATUS_UNSPECIFIED'
  | 'STATUS_RESOLVED'
  | 'STATUS_CONTESTED'
  | 'STATUS_UNCERTAIN'
  | 'STATUS_EMPTY';

export const STATUSES: readonly Status[];
/** Longest lens name sent; a longer one is refused before any call. */
export const LENS_NAME_BYTES_MAX: number;

/** One candidate of a slot, with the figures of its tally. */
export interface Candidate {
  /** 64 hex digits. */
  assertion_hash: string;
  score: number;
  support: number;
  dispute: number;
  supporters: number;
  disputers: number;
  retired: boolean;
  votes: number;
  first_lsn: number;
  last_lsn: number;
  qualified: boolean;
}

/** The winning assertion of a resolution, with its hash (checked unless verifyReads is off). */
export interface Winner {
  hash: string;
  assertion?: Assertion;
}

/** A slot judged by one lens. */
export interface Resolution {
  subject: string;
  predicate: string;
  lens: string;
  status: Status;
  /** Set for STATUS_RESOLVED and STATUS_CONTESTED only. */
  winner?: Winner;
  score: number;
  candidates: Candidate[];
  /** BLAKE3 of the effective trust policy (RFC 8785 JSON), 64 hex digits. */
  policy_hash: string;
  as_of_lsn: number;
  candidates_total: number;
}

/** The tally of an assertion (DESIGN 9.1). */
export interface Tally {
  assertion_hash: string;
  support: number;
  dispute: number;
  supporters: number;
  disputers: number;
  votes: number;
  score: number;
}

/** One change of a slot's winner or status under a lens. */
export interface HistoryEntry {
  lsn: number;
  status: Status;
  /** 64 hex digits, or '' when there is no winner. */
  winner_hash: string;
  score: number;
}

/** A built-in lens with its parameters in force. */
export interface Lens {
  name: string;
  description: string;
  parameters: Record<string, number>;
}

export function lensField(lens: string | undefined | null): string;
export function candidateFromProto(message: unknown): Candidate;
export function resolutionFromProto(message: unknown, options?: { verify?: boolean }): Resolution;
export function tallyFromProto(message: unknown): Tally;
export function historyEntryFromProto(message: unknown): HistoryEntry;
export function lensFromProto(message: unknown): Lens;
