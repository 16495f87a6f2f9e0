// The Lattice's answers (QueryService, protos/stemedb/v1/query.proto, DESIGN 9.6) in the JSON form
// the gateway serves too: proto field names (snake_case), bytes as lowercase hex, 64-bit integers
// as JS numbers, enums by their names (`"STATUS_RESOLVED"`), every scalar present (proto3
// defaults included) and an unset message field (a resolution's `winner`) left out.

import { hash as recordHash } from './canonical.js';
import { bodyFromProto, HashMismatchError, hex, lsnToNumber } from './proto.js';

/** The statuses a lens gives (query.proto `Status`), by name. */
export const STATUSES = Object.freeze([
  'STATUS_UNSPECIFIED',
  'STATUS_RESOLVED',
  'STATUS_CONTESTED',
  'STATUS_UNCERTAIN',
  'STATUS_EMPTY',
]);

/** Longest lens name sent (a lens name longer than this is refused before any call). */
export const LENS_NAME_BYTES_MAX = 256;

function statusName(s) {
  if (typeof s === 'string') return s;
  return STATUSES[s] ?? s;
}

/** The lens request field: undefined or '' means the service's default (consensus). */
export function lensField(lens) {
  if (lens === undefined || lens === null) return '';
  if (typeof lens !== 'string') throw new TypeError('lens must be a string');
  if (Buffer.byteLength(lens, 'utf8') > LENS_NAME_BYTES_MAX) {
    throw new RangeError(`lens must be at most ${LENS_NAME_BYTES_MAX} bytes`);
  }
  return lens;
}

/** A Candidate message in the JSON form. */
export function candidateFromProto(c) {
  return {
    assertion_hash: hex(c.assertion_hash),
    score: c.score ?? 0,
    support: c.support ?? 0,
    dispute: c.dispute ?? 0,
    supporters: c.supporters ?? 0,
    disputers: c.disputers ?? 0,
    retired: Boolean(c.retired),
    votes: c.votes ?? 0,
    first_lsn: lsnToNumber(c.first_lsn),
    last_lsn: lsnToNumber(c.last_lsn),
    qualified: Boolean(c.qualified),
  };
}

/**
 * A Resolution message in the JSON form. With `verify`, the winner's assertion must hash to the
 * winner's hash (HashMismatchError otherwise).
 */
export function resolutionFromProto(r, { verify = true } = {}) {
  const out = {
    subject: r.subject ?? '',
    predicate: r.predicate ?? '',
    lens: r.lens ?? '',
    status: statusName(r.status),
  };
  if (r.winner) {
    const winner = { hash: hex(r.winner.hash) };
    if (r.winner.assertion) {
      winner.assertion = bodyFromProto('assertion', r.winner.assertion);
      if (verify) {
        const got = recordHash({ assertion: winner.assertion }).toString('hex');
        if (got !== winner.hash) throw new HashMismatchError('Resolution.winner', winner.hash, got);
      }
    }
    out.winner = winner;
  }
  out.score = r.score ?? 0;
  out.candidates = (r.candidates ?? []).map(candidateFromProto);
  out.policy_hash = hex(r.policy_hash);
  out.as_of_lsn = lsnToNumber(r.as_of_lsn);
  out.candidates_total = r.candidates_total ?? 0;
  return out;
}

/** A Tally message in the JSON form. */
export function tallyFromProto(t) {
  return {
    assertion_hash: hex(t.assertion_hash),
    support: t.support ?? 0,
    dispute: t.dispute ?? 0,
    supporters: t.supporters ?? 0,
    disputers: t.disputers ?? 0,
    votes: t.votes ?? 0,
    score: t.score ?? 0,
  };
}

/** A HistoryEntry message in the JSON form. */
export function historyEntryFromProto(e) {
  return {
    lsn: lsnToNumber(e.lsn),
    status: statusName(e.status),
    winner_hash: hex(e.winner_hash),
    score: e.score ?? 0,
  };
}

/** A Lens message in the JSON form (`parameters` a plain object of numbers). */
export function lensFromProto(l) {
  return {
    name: l.name ?? '',
    description: l.description ?? '',
    parameters: { ...(l.parameters ?? {}) },
  };
}
