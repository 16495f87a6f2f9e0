// End to end: starts the real stemedb-writer and stemedb-ingestor as child processes, appends from
// Node, reads back from the store and compares every hash with the one Python computes.
//
// Binaries: ../../.venv/bin (relative to clients/node), or env STEMEDB_BIN_DIR. When they are
// missing the suite is skipped with a message, unless env CI is set: then it fails.

import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';

import { StemeClient, StemeRpcError, hashHex, makeAssertion, makeEpoch, makeVote, signRecord } from '../src/index.js';
import {
  INGESTOR_BIN,
  STOP_TIMEOUT_MS,
  Service,
  WRITER_BIN,
  freePorts,
  liveGate,
  loadHealth,
  pythonHash,
  tail,
  waitHealthy,
} from './support/services.js';

const vectorCases = JSON.parse(
  readFileSync(new URL('../../../tests/vectors/canonical.json', import.meta.url), 'utf8'),
);

// Fixed test keys (never use them for anything else).
const SEED_A = '9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60';
const SEED_B = '4ccd089b28ff96da9db6c346ec114e0f5b8a319f35aba624da8cf6ed4fb8a6fb';

const { message: MISSING_MSG, missing, skip: SKIP } = liveGate([WRITER_BIN, INGESTOR_BIN]);

describe('live writer + ingestor', { skip: SKIP, timeout: 180_000 }, () => {
  let dir;
  let writer;
  let ingestor;
  let client;
  const subject = `node-live ${process.pid} ✓ Ελληνικά`;
  const sourceHash = Buffer.alloc(32, 7).toString('hex');
  const state = {};

  before(async () => {
    if (missing.length > 0) throw new Error(`${MISSING_MSG} (CI is set, so this is a failure)`);
    dir = await mkdtemp(path.join(os.tmpdir(), 'stemedb-node-'));
    const [p1, m1, p2, m2] = freePorts(4);
    const healthPkg = await loadHealth(dir);

    const wal = path.join(dir, 'wal');
    const writerAddr = `127.0.0.1:${p1}`;
    const storeAddr = `127.0.0.1:${p2}`;
    writer = new Service(
      'stemedb-writer',
      WRITER_BIN,
      ['--wal-dir', wal, '--listen', writerAddr, '--metrics-listen', `127.0.0.1:${m1}`],
      path.join(dir, 'writer.log'),
    );
    await waitHealthy(writer, writerAddr, healthPkg, 'stemedb.v1.WriterService');
    ingestor = new Service(
      'stemedb-ingestor',
      INGESTOR_BIN,
      ['--wal-dir', wal, '--db-dir', path.join(dir, 'db'), '--listen', storeAddr, '--metrics-listen', `127.0.0.1:${m2}`],
      path.join(dir, 'ingestor.log'),
    );
    await waitHealthy(ingestor, storeAddr, healthPkg, 'stemedb.v1.StoreService');
    client = new StemeClient({ writer: writerAddr, store: storeAddr, deadlineMs: 15_000 });
  });

  after(async () => {
    client?.close();
    const results = await Promise.all([ingestor?.stop(), writer?.stop()]);
    for (const [svc, r] of [
      [ingestor, results[0]],
      [writer, results[1]],
    ]) {
      if (svc?.killed) console.error(`${svc.name} ignored SIGTERM for ${STOP_TIMEOUT_MS} ms: SIGKILLed`);
      else if (svc && r && r.code !== 0 && r.signal !== 'SIGTERM') {
        console.error(`${svc.name} exited with ${JSON.stringify(r)}:\n${tail(svc)}`);
      }
    }
    if (dir && !process.env.STEMEDB_KEEP_TMP) await rm(dir, { recursive: true, force: true });
    else if (dir) console.error(`kept ${dir}`);
  });

  test('append a signed assertion: receipt hash = local hash = Python hash', async () => {
    const record = makeAssertion(
      {
        subject,
        predicate: 'name',
        object: { text: 'Douglas Adams' },
        confidence: 0.75,
        source_hash: sourceHash,
        visual_hash: 'c3d3e1f0b4a59687',
      },
      SEED_A,
    );
    const receipt = await client.appendAssertion(record);
    assert.equal(receipt.hash, hashHex(record));
    assert.equal(receipt.hash, pythonHash(record));
    assert.ok(receipt.lsn >= 1);
    Object.assign(state, { assertion: record, aReceipt: receipt });
  });

  test('NFD text is appended as NFC: the hash is the NFC vector\'s, reads return NFC', async () => {
    const c = vectorCases.find((x) => x.name === 'assertion-nfd-input');
    const receipt = await client.appendAssertion(c.input);
    assert.equal(receipt.hash, c.hash_hex);
    const got = await client.getAssertion(receipt.hash, { minLsn: receipt.lsn });
    assert.equal(got.assertion.subject, c.record.assertion.subject);
    const [batchReceipt] = await client.appendBatch([c.input]);
    assert.equal(batchReceipt.hash, c.hash_hex);
  });

  test('vote on it from Node: receipt hash = Python hash', async () => {
    const vote = makeVote({ assertionHash: state.aReceipt.hash, weight: -0.5 }, SEED_B);
    const receipt = await client.appendVote(vote);
    assert.equal(receipt.hash, hashHex(vote));
    assert.equal(receipt.hash, pythonHash(vote));
    assert.ok(receipt.lsn > state.aReceipt.lsn);
    Object.assign(state, { vote, vReceipt: receipt });
  });

  test('Get H:<hash> with min_lsn returns the assertion', async () => {
    const res = await client.get(`H:${state.aReceipt.hash}`, { minLsn: state.vReceipt.lsn });
    assert.equal(res.found, true);
    assert.ok(res.value.length > 0);
    assert.ok(res.appliedLsn >= state.vReceipt.lsn);
    assert.deepEqual(res.record, state.assertion);
    assert.equal(pythonHash(res.record), state.aReceipt.hash);
  });

  test('Get V:<hash> returns the vote', async () => {
    const res = await client.get(`V:${state.vReceipt.hash}`, { minLsn: state.vReceipt.lsn });
    assert.equal(res.found, true);
    assert.deepEqual(res.record, state.vote);
  });

  test('a missing key is found = false, not an error', async () => {
    const res = await client.get(`H:${'0'.repeat(64)}`);
    assert.equal(res.found, false);
    assert.equal(res.record, null);
  });

  test('ScanPrefix S:<subject>\\0 lists the subject index entry', async () => {
    const prefix = `S:${subject}\u0000`;
    const res = await client.scanPrefix(prefix, { pageSize: 10, minLsn: state.vReceipt.lsn });
    assert.equal(res.entries.length, 1);
    assert.equal(res.entries[0].keyString, prefix + state.aReceipt.hash);
    assert.equal(res.entries[0].value.toString('hex'), state.aReceipt.hash);
    assert.equal(res.nextPageToken, '');
    assert.ok(res.appliedLsn >= state.vReceipt.lsn);
  });

  test('co-signing merges signatures; typed reads return them', async (t) => {
    const cosigned = signRecord({ assertion: { ...state.assertion.assertion, signatures: [] } }, SEED_B);
    const receipt = await client.appendAssertion(cosigned);
    assert.equal(receipt.hash, state.aReceipt.hash, 'same assertion, same hash');
    assert.ok(receipt.lsn > state.vReceipt.lsn, 'a new event gets a new LSN');
    let got;
    try {
      got = await client.getAssertion(receipt.hash, { minLsn: receipt.lsn });
    } catch (err) {
      if (err instanceof StemeRpcError && err.codeName === 'UNIMPLEMENTED') return t.skip('GetAssertion unimplemented');
      throw err;
    }
    assert.equal(got.found, true);
    const keys = got.assertion.signatures.map((s) => s.public_key).sort();
    const expected = [state.assertion.assertion.signatures[0].public_key, cosigned.assertion.signatures[0].public_key].sort();
    assert.deepEqual(keys, expected);

    const bySubject = await client.listAssertionsBySubject(subject, { minLsn: receipt.lsn });
    assert.deepEqual(bySubject.assertions.map((a) => a.hash), [receipt.hash]);
    const votes = await client.listVotes(receipt.hash, { minLsn: receipt.lsn });
    assert.deepEqual(votes.votes.map((v) => v.hash), [state.vReceipt.hash]);
    assert.deepEqual(votes.votes[0].vote, state.vote.vote);
  });

  test('AppendBatch: receipts in order with consecutive LSNs, hashes = Python hashes', async () => {
    const epoch = makeEpoch({ name: `node epoch ${process.pid}`, description: 'from Node' }, SEED_A);
    const a2 = makeAssertion(
      {
        subject,
        predicate: 'mass',
        object: { number: 1952 },
        confidence: 1,
        source_hash: sourceHash,
        epoch: hashHex(epoch),
      },
      SEED_A,
      SEED_B,
    );
    const v2 = makeVote({ assertionHash: hashHex(a2), weight: 1 }, SEED_A);
    const records = [epoch, a2, v2];
    const receipts = await client.appendBatch(records);
    assert.equal(receipts.length, 3);
    for (let i = 0; i < records.length; i++) {
      assert.equal(receipts[i].hash, pythonHash(records[i]));
      if (i > 0) assert.equal(receipts[i].lsn, receipts[i - 1].lsn + 1);
    }
    const last = receipts[2].lsn;
    const e = await client.get(`E:${receipts[0].hash}`, { minLsn: last });
    assert.deepEqual(e.record, epoch);
    const scan = await client.scanPrefix(`S:${subject}\u0000`, { minLsn: last });
    assert.deepEqual(
      scan.entries.map((x) => x.value.toString('hex')),
      [state.aReceipt.hash, receipts[1].hash].sort(),
    );
  });

  test('an invalid record (confidence 2) is INVALID_ARGUMENT naming assertion.confidence', async () => {
    const bad = makeAssertion(
      { subject, predicate: 'name', object: { text: 'x' }, confidence: 2, source_hash: sourceHash },
      SEED_A,
    );
    await assert.rejects(client.appendAssertion(bad), (err) => {
      assert.ok(err instanceof StemeRpcError, `expected a StemeRpcError, got ${err}`);
      assert.equal(err.codeName, 'INVALID_ARGUMENT');
      assert.match(err.details, /assertion\.confidence/);
      return true;
    });
  });
});
