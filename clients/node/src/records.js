// Helpers that build signed records in the JSON form from ed25519 seeds.

import {
  hash,
  publicKeyFromSeed,
  recordKind,
  sign,
  toBytes,
  verify,
} from './canonical.js';

/**
 * Returns a copy of a JSON-form record signed by each seed (32 bytes, hex or bytes).
 * Assertions and epochs get one SignatureEntry per signer (an existing entry for the same public
 * key is replaced). A vote must be signed by exactly one seed: its agent_id is set to the seed's
 * public key when missing, and must match it otherwise.
 */
export function signRecord(record, ...seeds) {
  const [kind, body] = recordKind(record);
  if (kind === 'vote') {
    if (seeds.length !== 1) throw new TypeError('a vote is signed by exactly one seed');
    const pub = publicKeyFromSeed(seeds[0]).toString('hex');
    if (body.agent_id !== undefined && toBytes(body.agent_id).toString('hex') !== pub) {
      throw new Error("vote.agent_id is not the signing seed's public key");
    }
    const vote = {
      assertion_hash: toBytes(body.assertion_hash).toString('hex'),
      agent_id: pub,
      weight: body.weight,
    };
    if (body.sequence !== undefined && body.sequence !== 0) vote.sequence = body.sequence;
    return { vote: { ...vote, signature: sign(seeds[0], hash({ vote })).toString('hex') } };
  }
  const h = hash(record);
  const sigs = [...(body.signatures ?? [])].map((e) => ({
    public_key: toBytes(e.public_key).toString('hex'),
    signature: toBytes(e.signature).toString('hex'),
  }));
  for (const seed of seeds) {
    const pub = publicKeyFromSeed(seed).toString('hex');
    const entry = { public_key: pub, signature: sign(seed, h).toString('hex') };
    const i = sigs.findIndex((e) => e.public_key === pub);
    if (i >= 0) sigs[i] = entry;
    else sigs.push(entry);
  }
  return { [kind]: { ...body, signatures: sigs } };
}

/** A signed assertion record ({assertion: ...}) from its fields and the signers' seeds. */
export function makeAssertion(fields, ...seeds) {
  const { signatures = [], ...rest } = fields;
  return signRecord({ assertion: { ...rest, signatures } }, ...seeds);
}

/** A signed epoch record ({epoch: ...}) from its fields and the signers' seeds. */
export function makeEpoch(fields, ...seeds) {
  const { signatures = [], ...rest } = fields;
  return signRecord(
    { epoch: { supersession_type: 'SUPERSESSION_TYPE_UNSPECIFIED', ...rest, signatures } },
    ...seeds,
  );
}

/**
 * A vote record ({vote: ...}) on `assertionHash` with `weight` (and `sequence` when given and not
 * 0), signed by `seed`.
 */
export function makeVote({ assertionHash, weight, sequence }, seed) {
  const vote = { assertion_hash: toBytes(assertionHash).toString('hex'), weight };
  if (sequence !== undefined && sequence !== 0) vote.sequence = sequence;
  return signRecord({ vote }, seed);
}

/**
 * Verifies every signature of a JSON-form record against its hash.
 * @returns {{ok: boolean, checked: number, failed: string[]}} failed names the bad fields
 */
export function checkSignatures(record) {
  const [kind, body] = recordKind(record);
  const h = hash(record);
  const failed = [];
  let checked = 0;
  if (kind === 'vote') {
    checked = 1;
    if (!verify(body.agent_id, body.signature, h)) failed.push('vote.signature');
  } else {
    (body.signatures ?? []).forEach((e, i) => {
      checked++;
      if (!verify(e.public_key, e.signature, h)) failed.push(`${kind}.signatures[${i}].signature`);
    });
  }
  return { ok: failed.length === 0, checked, failed };
}
