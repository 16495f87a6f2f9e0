// StemeClient against an in-process fake server: conversions, hash checks, retries, deadlines.

import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { after, before, beforeEach, describe, test } from 'node:test';

import grpc from '@grpc/grpc-js';

import { HashMismatchError, StemeClient, StemeRpcError, hash, hashHex, loadProtos, recordToProto } from '../src/index.js';

const cases = JSON.parse(readFileSync(new URL('../../../tests/vectors/canonical.json', import.meta.url), 'utf8'));
const byName = Object.fromEntries(cases.map((c) => [c.name, c]));

describe('StemeClient (fake server)', () => {
  let server;
  let port;
  let client;
  let calls;
  // Per-test behaviour of the fake: a function (method, request) -> [err, response] or undefined.
  let behave;

  function handler(method) {
    return (call, cb) => {
      calls.push({ method, request: call.request, metadata: call.metadata.getMap() });
      const out = behave(method, call.request);
      if (out === 'hang') return; // never answer
      const [err, res] = out;
      cb(err, res);
    };
  }

  before(async () => {
    const pkg = loadProtos();
    server = new grpc.Server();
    const impl = (svc) =>
      Object.fromEntries(Object.keys(svc.service).map((m) => [m, handler(m)]));
    server.addService(pkg.WriterService.service, impl(pkg.WriterService));
    server.addService(pkg.StoreService.service, impl(pkg.StoreService));
    server.addService(pkg.QueryService.service, impl(pkg.QueryService));
    server.addService(pkg.LogService.service, impl(pkg.LogService));
    port = await new Promise((resolve, reject) =>
      server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (e, p) => (e ? reject(e) : resolve(p))),
    );
    const addr = `127.0.0.1:${port}`;
    client = new StemeClient({ writer: addr, store: addr, deadlineMs: 3000, initialBackoffMs: 10 });
  });

  after(() => {
    client?.close();
    server?.forceShutdown();
  });

  beforeEach(() => {
    calls = [];
  });

  const unavailable = () => Object.assign(new Error('down'), { code: grpc.status.UNAVAILABLE, details: 'down' });
  const receipt = (record, lsn) => ({ receipt: { hash: hash(record), lsn: String(lsn), tree_size: String(lsn + 1) } });

  test('appendAssertion sends the proto form and checks the receipt', async () => {
    const rec = byName['assertion-all-fields'].record;
    behave = () => [null, receipt(rec, 7)];
    const r = await client.appendAssertion(rec);
    assert.deepEqual(r, { hash: byName['assertion-all-fields'].hash_hex, lsn: 7, treeSize: 8 });
    const sent = calls[0].request.assertion;
    assert.equal(sent.visual_hash, BigInt('0x0123456789abcdef').toString());
    assert.equal(sent.source_hash.toString('hex'), rec.assertion.source_hash);
    assert.equal(sent.object.ref.toString('hex'), rec.assertion.object.ref);
    assert.equal(sent.signatures.length, 3);
  });

  test('negative zero survives the proto round trip', async () => {
    const rec = byName['assertion-number-negative-zero'].record;
    behave = (m, req) => {
      assert.ok(Object.is(req.assertion.object.number, -0));
      return [null, receipt(rec, 1)];
    };
    await client.appendAssertion(rec);
  });

  test('a receipt with another hash is a HashMismatchError', async () => {
    const rec = byName['vote-positive'].record;
    behave = () => [null, { receipt: { hash: Buffer.alloc(32), lsn: '3' } }];
    await assert.rejects(client.appendVote(rec), HashMismatchError);
  });

  test('UNAVAILABLE is retried with backoff, then succeeds', async () => {
    const rec = byName['epoch-refinement'].record;
    let n = 0;
    behave = () => (++n < 3 ? [unavailable()] : [null, receipt(rec, 9)]);
    const r = await client.appendEpoch(rec);
    assert.equal(r.lsn, 9);
    assert.equal(calls.length, 3);
  });

  test('UNAVAILABLE gives up after maxAttempts', async () => {
    behave = () => [unavailable()];
    await assert.rejects(client.appendVote(byName['vote-zero'].record), (err) => {
      assert.ok(err instanceof StemeRpcError);
      assert.equal(err.codeName, 'UNAVAILABLE');
      return true;
    });
    assert.equal(calls.length, 5);
  });

  test('INVALID_ARGUMENT is not retried and names the field', async () => {
    behave = () => [{ code: grpc.status.INVALID_ARGUMENT, details: 'assertion.confidence must be in [0, 1]' }];
    await assert.rejects(client.appendAssertion(byName['assertion-unsigned'].record), (err) => {
      assert.equal(err.codeName, 'INVALID_ARGUMENT');
      assert.match(err.message, /AppendAssertion failed: INVALID_ARGUMENT: assertion\.confidence/);
      return true;
    });
    assert.equal(calls.length, 1);
  });

  test('the deadline bounds a call', async () => {
    behave = () => 'hang';
    const t0 = Date.now();
    await assert.rejects(client.get('H:x', { deadlineMs: 300 }), (err) => err.codeName === 'DEADLINE_EXCEEDED');
    assert.ok(Date.now() - t0 < 2500);
  });

  test('appendBatch checks every receipt and their count', async () => {
    const recs = [byName['epoch-minimal'].record, byName['assertion-ref'].record, byName['vote-negative'].record];
    behave = () => [null, { receipts: recs.map((r, i) => receipt(r, 10 + i).receipt) }];
    const rs = await client.appendBatch(recs);
    assert.deepEqual(rs.map((r) => r.lsn), [10, 11, 12]);
    assert.deepEqual(rs.map((r) => r.hash), recs.map(hashHex));
    assert.equal(calls[0].request.records.length, 3);
    behave = () => [null, { receipts: [receipt(recs[0], 1).receipt] }];
    await assert.rejects(client.appendBatch(recs), /sent 3 records but got 1 receipts/);
  });

  test('get decodes the record into the JSON form and checks its hash against the key', async () => {
    const c = byName['assertion-visual-hash-max'];
    behave = (m, req) => {
      assert.equal(req.key.toString(), `H:${c.hash_hex}`);
      assert.equal(req.min_lsn, '42');
      return [null, { found: true, value: Buffer.from('x'), record: recordToProto(c.record), applied_lsn: '42' }];
    };
    const r = await client.get(`H:${c.hash_hex}`, { minLsn: 42 });
    assert.equal(r.found, true);
    assert.equal(r.appliedLsn, 42);
    assert.deepEqual(r.record, c.record);

    behave = () => [null, { found: true, record: recordToProto(byName['assertion-flag-true'].record), applied_lsn: '1' }];
    await assert.rejects(client.get(`H:${c.hash_hex}`), HashMismatchError);
  });

  test('get of a missing key', async () => {
    behave = () => [null, { found: false, applied_lsn: '5' }];
    const r = await client.get('H:' + '0'.repeat(64));
    assert.deepEqual(r, { found: false, value: Buffer.alloc(0), record: null, appliedLsn: 5 });
  });

  test('scanPrefix and scanPrefixAll follow page tokens', async () => {
    const pages = {
      '': { entries: [{ key: Buffer.from('S:a\0' + '1'.repeat(64)), value: Buffer.alloc(32, 1) }], next_page_token: 'p2' },
      p2: { entries: [{ key: Buffer.from('S:a\0' + '2'.repeat(64)), value: Buffer.alloc(32, 2) }], next_page_token: '' },
    };
    behave = (m, req) => {
      assert.equal(req.prefix.toString(), 'S:a\0');
      return [null, { ...pages[req.page_token], applied_lsn: '3' }];
    };
    const first = await client.scanPrefix('S:a\u0000', { pageSize: 1 });
    assert.equal(first.nextPageToken, 'p2');
    assert.equal(first.entries[0].keyString, 'S:a\0' + '1'.repeat(64));
    assert.equal(calls[0].request.page_size, 1);
    const all = [];
    for await (const e of client.scanPrefixAll('S:a\u0000', { pageSize: 1 })) all.push(e.value[0]);
    assert.deepEqual(all, [1, 2]);
  });

  test('typed reads convert to the JSON form', async () => {
    const a = byName['assertion-with-epoch'];
    const v = byName['vote-fractional'];
    behave = (m) => {
      if (m === 'GetAssertion') return [null, { found: true, assertion: recordToProto(a.record).assertion, applied_lsn: '2' }];
      if (m === 'ListAssertionsBySubject') {
        return [null, { assertions: [{ hash: hash(a.record), assertion: recordToProto(a.record).assertion }], applied_lsn: '2' }];
      }
      return [null, { votes: [{ hash: hash(v.record), vote: recordToProto(v.record).vote }], applied_lsn: '2' }];
    };
    const g = await client.getAssertion(a.hash_hex);
    assert.deepEqual(g.assertion, a.record.assertion);
    const l = await client.listAssertionsBySubject('Q42');
    assert.deepEqual(l.assertions, [{ hash: a.hash_hex, assertion: a.record.assertion }]);
    const lv = await client.listVotes(a.hash_hex);
    assert.deepEqual(lv.votes, [{ hash: v.hash_hex, vote: v.record.vote }]);
  });
});

test('nothing listening: UNAVAILABLE after the retries', async () => {
  const c = new StemeClient({ writer: '127.0.0.1:1', store: '127.0.0.1:1', deadlineMs: 3000, maxAttempts: 2, initialBackoffMs: 10 });
  try {
    await assert.rejects(c.get('H:x'), (err) => err instanceof StemeRpcError && err.codeName === 'UNAVAILABLE');
  } finally {
    c.close();
  }
});

test('a bad protoDir is a clear error', () => {
  assert.throws(() => new StemeClient({ protoDir: '/nonexistent' }), /StemeDB protos not found.*STEMEDB_PROTO_DIR/);
});
