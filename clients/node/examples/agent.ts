// A small StemeDB agent in TypeScript: asserts a fact, votes on it, reads it back, lists what is
// known about the subject, asks what is believed (Resolve, the tally, the slot's history) and,
// given the log's pinned verifier key (env STEMEDB_LOG_KEY), checks that its fact is in the
// signed log. Type-checked by `make nodetest` (tsc --noEmit) against the package's
// declarations; it only imports what a user of @stemedb/client imports.
//
//   node --experimental-strip-types examples/agent.ts   (Node 22.6+), or compile it with tsc.

import {
  type Assertion,
  type Receipt,
  type Resolution,
  ProofError,
  HashMismatchError,
  StemeClient,
  StemeRpcError,
  checkSignatures,
  generateSeed,
  hashHex,
  makeAssertion,
  makeVote,
  publicKeyFromSeed,
  status,
  toHex,
} from '@stemedb/client';

async function main(): Promise<number> {
  const seed: Buffer = generateSeed();
  const client = new StemeClient({
    writer: process.env.STEMEDB_WRITER ?? '127.0.0.1:50051',
    store: process.env.STEMEDB_STORE ?? '127.0.0.1:50052',
    deadlineMs: 5_000,
  });
  try {
    const fact: Assertion = {
      subject: 'Q42',
      predicate: 'name',
      object: { text: 'Douglas Adams' },
      confidence: 0.9,
      source_hash: '00'.repeat(32),
    };
    const record = makeAssertion(fact, seed);
    const local: string = hashHex(record);
    const check = checkSignatures(record);
    if (!check.ok) throw new Error(`signatures failed: ${check.failed.join(', ')}`);

    const receipt: Receipt = await client.appendAssertion(record);
    console.log(`asserted ${receipt.hash} at lsn ${receipt.lsn} (local hash ${local})`);
    const vote = makeVote({ assertionHash: receipt.hash, weight: 1 }, seed);
    const voted = await client.appendVote(vote);
    console.log(`voted ${voted.hash} as ${toHex(publicKeyFromSeed(seed))}`);

    const got = await client.get(`H:${receipt.hash}`, { minLsn: voted.lsn });
    if (got.found && got.record && 'assertion' in got.record) {
      console.log(`read back at applied lsn ${got.appliedLsn}:`, got.record.assertion.object);
    }
    const page = await client.listAssertionsBySubject('Q42', { pageSize: 10, minLsn: voted.lsn });
    for (const { hash, assertion } of page.assertions) {
      console.log(hash, assertion.predicate, assertion.confidence);
    }
    for await (const entry of client.scanPrefixAll('S:Q42\u0000', { pageSize: 100 })) {
      console.log(entry.keyString, entry.value.toString('hex'));
    }

    const { resolution }: { resolution: Resolution } = await client.resolve('Q42', 'name', {
      lens: 'consensus',
      minLsn: voted.lsn,
    });
    console.log(`Q42 name: ${resolution.status}, winner ${resolution.winner?.hash ?? 'none'}`);
    for (const c of resolution.candidates) console.log(c.assertion_hash, c.score, c.supporters);
    const tally = await client.getTally(receipt.hash, { minLsn: voted.lsn });
    if (tally.tally) console.log(`support ${tally.tally.support}, dispute ${tally.tally.dispute}`);
    for await (const change of client.listHistoryAll('Q42', 'name')) {
      console.log(`from lsn ${change.lsn}: ${change.status} ${change.winner_hash}`);
    }

    const logKey = process.env.STEMEDB_LOG_KEY;
    if (logKey) {
      const proved = await client.verifyRecord(receipt.hash, { verifierKey: logKey, lsn: receipt.lsn });
      console.log(`in the signed log of size ${proved.checkpoint.treeSize} at lsn ${proved.lsns.join(', ')}`);
    }
    return 0;
  } catch (err) {
    if (err instanceof StemeRpcError) {
      const hint = err.code === status.UNAVAILABLE ? ' (is `make run` running?)' : '';
      console.error(`${err.method}: ${err.codeName}: ${err.details}${hint}`);
      return err.code === status.INVALID_ARGUMENT ? 2 : 3;
    }
    if (err instanceof ProofError) {
      console.error(`the log does not prove it: ${err.message}`);
      return 4;
    }
    if (err instanceof HashMismatchError) {
      console.error(`hash mismatch: ${err.expected} != ${err.actual}`);
      return 3;
    }
    throw err;
  } finally {
    client.close();
  }
}

process.exitCode = await main();
