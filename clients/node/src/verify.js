// The store is not trusted: checks of the verifiable log's answers (LogService, DESIGN 13) against
// the log's verifier key, pinned out of band. The model is the Python CLI's `stemedb verify` and
// `stemedb witness` (clients/python/_cli_verify.py). StemeClient.verifyRecord and
// StemeClient.checkLogExtends call these with the client whose LogService calls they make.

import { hash as recordHash } from './canonical.js';
import { ProofError, checkConsistency, checkRecordInclusion } from './merkle.js';
import { openCheckpoint, parseVerifierKey } from './note.js';
import { hashBytes, lsnToNumber, lsnToString } from './proto.js';

// Appends of one record checked at most (more is refused, naming the record), and the bounds of
// the poll for a checkpoint that covers a given LSN.
const VERIFY_LSNS_MAX = 10_000;
const CHECKPOINT_POLL_MS_MIN = 20;
const CHECKPOINT_POLL_MS_MAX = 500;

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

function pinnedVerifier(verifierKey) {
  if (verifierKey === undefined || verifierKey === null || verifierKey === '') {
    throw new TypeError("verifierKey is required: the log's verifier key, pinned out of band");
  }
  return typeof verifierKey === 'string' ? parseVerifierKey(verifierKey) : verifierKey;
}

/**
 * Checks, without trusting the store, that a record is in the signed log: the checkpoint
 * (the store's, or `checkpoint`, e.g. a witness's) must verify with the pinned `verifierKey`,
 * and each append of the record (`lsn` alone, or every LSN ListRecordLsns gives up to the
 * checkpoint's size) must have an inclusion proof that leads to the checkpoint's root from a
 * leaf recomputed from the record the store returns, which must hash to `hash`. With `lsn`
 * and no `checkpoint`, waits (within the first half of the deadline) for a served checkpoint
 * that covers it.
 * The deadline (`deadlineMs`) bounds the whole check. Throws ProofError or a note error when
 * anything does not verify; `found` is false when the record is not in the checkpoint's log.
 * @returns {Promise<{found: boolean, lsns: number[], checkpoint: object, checkpointText: string}>}
 */
export async function verifyRecord(client, hash, { verifierKey, checkpoint, lsn, deadlineMs } = {}) {
  const want = hashBytes(hash, 'hash').toString('hex');
  const verifier = pinnedVerifier(verifierKey);
  const only = lsn === undefined || lsn === null ? null : lsnToNumber(lsnToString(lsn, 'lsn'));
  if (only !== null && only < 1) throw new RangeError('lsn must be at least 1');
  const end = Date.now() + (deadlineMs ?? client.deadlineMs);
  const left = () => Math.max(1, end - Date.now());
  let text = checkpoint;
  let cp;
  let cpText;
  if (text !== undefined && text !== null) {
    cp = openCheckpoint(text, verifier);
  } else {
    // Poll for a covering checkpoint within the first half of the budget: the rest is the
    // proofs'. A poll that runs out of time keeps the checkpoint verified before it.
    const pollEnd = Date.now() + (end - Date.now()) / 2;
    let pause = CHECKPOINT_POLL_MS_MIN;
    for (;;) {
      try {
        text = (await client.getCheckpoint({ deadlineMs: left() })).checkpoint;
      } catch (err) {
        if (cp === undefined || err?.codeName !== 'DEADLINE_EXCEEDED') throw err;
        text = cpText;
        break;
      }
      cp = openCheckpoint(text, verifier);
      cpText = text;
      if (only === null || cp.treeSize >= BigInt(only) || Date.now() + pause >= pollEnd) break;
      await sleep(pause);
      pause = Math.min(pause * 2, CHECKPOINT_POLL_MS_MAX);
    }
  }
  let lsns;
  if (only !== null) {
    lsns = [only];
    if (BigInt(only) > cp.treeSize) {
      throw new ProofError(`LSN ${lsns[0]} is not in the signed log of size ${cp.treeSize}`);
    }
  } else {
    lsns = await recordLsns(client, want, cp.treeSize, left);
  }
  for (const n of lsns) {
    const proof = await client.getInclusionProof(n, { treeSize: cp.treeSize, deadlineMs: left() });
    if (!proof.record) throw new ProofError(`LSN ${n}: the store returned no record`);
    const got = recordHash(proof.record).toString('hex');
    if (got !== want) throw new ProofError(`LSN ${n}: the store returned a record of another hash (${got})`);
    checkRecordInclusion({
      checkpoint: text,
      verifierKey: verifier,
      lsn: n,
      record: proof.record,
      proof: proof.hashes,
      treeSize: proof.treeSize,
    });
  }
  return { found: lsns.length > 0, lsns, checkpoint: cp, checkpointText: text };
}

async function recordLsns(client, hashHex, treeSize, left) {
  const lsns = [];
  let pageToken = '';
  do {
    const page = await client.listRecordLsns(hashHex, { pageSize: 1000, pageToken, deadlineMs: left() });
    for (const n of page.lsns) if (BigInt(n) <= treeSize) lsns.push(n);
    if (lsns.length > VERIFY_LSNS_MAX) {
      throw new RangeError(`more than ${VERIFY_LSNS_MAX} appends of ${hashHex}: pass the lsn to check`);
    }
    pageToken = page.nextPageToken;
  } while (pageToken);
  return lsns;
}

/**
 * Checks that the log the store serves now extends a trusted checkpoint (a witness's step):
 * both must verify with the pinned `verifierKey`, a smaller tree or another root at the same
 * size is refused, and a consistency proof must lead from the trusted root to the new one.
 * Returns the new checkpoint (text and parsed), to be trusted next. Throws ProofError or a
 * note error.
 * @returns {Promise<{checkpoint: object, checkpointText: string}>}
 */
export async function checkLogExtends(client, trustedCheckpoint, { verifierKey, deadlineMs } = {}) {
  const verifier = pinnedVerifier(verifierKey);
  const end = Date.now() + (deadlineMs ?? client.deadlineMs);
  const old = openCheckpoint(trustedCheckpoint, verifier);
  const text = (await client.getCheckpoint({ deadlineMs: Math.max(1, end - Date.now()) })).checkpoint;
  const cp = openCheckpoint(text, verifier);
  if (cp.treeSize < old.treeSize) {
    throw new ProofError(`the log shrank: size ${cp.treeSize} served, ${old.treeSize} trusted`);
  }
  if (cp.treeSize === old.treeSize) {
    if (!cp.rootHash.equals(old.rootHash)) {
      throw new ProofError(`fork: two roots for size ${cp.treeSize}`);
    }
  } else if (old.treeSize > 0n) {
    const { hashes } = await client.getConsistencyProof(old.treeSize, cp.treeSize, {
      deadlineMs: Math.max(1, end - Date.now()),
    });
    checkConsistency({ first: trustedCheckpoint, second: text, verifierKey: verifier, proof: hashes });
  }
  return { checkpoint: cp, checkpointText: text };
}
