// StemeClient against an in-process fake server: conversions, hash checks, retries, deadlines.

import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { after, before, beforeEach, describe, test } from 'node:test';

import grpc from '@grpc/grpc-js';

import {
  HashMismatchError,
  ProofError,
  StemeClient,
  StemeRpcError,
  hash,
  hashHex,
  loadProtos,
  makeVote,
  note,
  recordLeafHash,
  recordToProto,
} from '../src/index.js';
import { mth, path as auditPath, subproof } from './support/tree.js';

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

  test('the wallet key goes out as stemedb-key metadata, per client or per call; a bad name is refused', async () => {
    const rec = byName['assertion-unsigned'].record;
    const addr = `127.0.0.1:${port}`;
    const keyed = new StemeClient({ writer: addr, store: addr, key: 'agent-1', deadlineMs: 3000 });
    try {
      behave = (m) => [null, m === 'AppendBatch' ? { receipts: [receipt(rec, 4).receipt] } : receipt(rec, 4)];
      await keyed.appendAssertion(rec);
      await keyed.appendBatch([rec], { key: 'other.key' });
      await client.appendAssertion(rec);
      assert.deepEqual(calls.map((c) => c.metadata['stemedb-key']), ['agent-1', 'other.key', undefined]);
      for (const bad of ['', 'bad name', '-x', 'x'.repeat(65), 7]) {
        await assert.rejects(keyed.appendAssertion(rec, { key: bad }), /key: .* is not a wallet key name/);
        assert.throws(() => new StemeClient({ writer: addr, store: addr, key: bad }), /is not a wallet key name/);
      }
      assert.equal(calls.length, 3, 'nothing sent for a bad key name');
    } finally {
      keyed.close();
    }
  });

  test('an unsigned vote (for the wallet) takes the receipt hash; a signed one is still checked', async () => {
    const other = Buffer.alloc(32, 9);
    behave = () => [null, { receipt: { hash: other, lsn: '5', tree_size: '5' } }];
    const unsigned = { vote: { assertion_hash: 'ab'.repeat(32), weight: 0.5 } };
    const r = await client.appendVote(unsigned);
    assert.deepEqual(r, { hash: other.toString('hex'), lsn: 5, treeSize: 5 });
    assert.equal(calls[0].request.vote.signature.length, 0);
    await assert.rejects(client.appendVote(makeVote({ assertionHash: 'ab'.repeat(32), weight: 0.5 }, 'cd'.repeat(32))), HashMismatchError);
  });

  const assertionOf = (name) => recordToProto(byName[name].record).assertion;

  test('resolve sends the request and answers in the JSON form, the winner checked', async () => {
    const w = byName['assertion-all-fields'];
    const cand = {
      assertion_hash: hash(w.record), score: 2.5, support: 3, dispute: 0.5, supporters: 3, disputers: 1,
      retired: false, votes: 4, first_lsn: '7', last_lsn: '9', qualified: true,
    };
    const res = {
      resolution: {
        subject: 'Q42', predicate: 'name', lens: 'skeptic', status: 'STATUS_CONTESTED',
        winner: { hash: hash(w.record), assertion: assertionOf('assertion-all-fields') },
        score: 2.5, candidates: [cand], policy_hash: Buffer.alloc(32, 1), as_of_lsn: '12', candidates_total: 3,
      },
      applied_lsn: '20',
    };
    behave = (m) => [null, res];
    const r = await client.resolve('Q42', 'name', { lens: 'skeptic', minLsn: 11, asOfLsn: 12 });
    assert.deepEqual(calls[0].request, { subject: 'Q42', predicate: 'name', lens: 'skeptic', min_lsn: '11', as_of_lsn: '12' });
    assert.equal(calls[0].method, 'Resolve');
    assert.equal(r.appliedLsn, 20);
    assert.deepEqual(r.resolution, {
      subject: 'Q42', predicate: 'name', lens: 'skeptic', status: 'STATUS_CONTESTED',
      winner: { hash: w.hash_hex, assertion: w.record.assertion },
      score: 2.5,
      candidates: [{ ...cand, assertion_hash: w.hash_hex, first_lsn: 7, last_lsn: 9 }],
      policy_hash: '01'.repeat(32), as_of_lsn: 12, candidates_total: 3,
    });
    // A winner whose assertion does not hash to the winner's hash is refused.
    res.resolution.winner.assertion = assertionOf('assertion-flag-true');
    await assert.rejects(client.resolve('Q42', 'name'), HashMismatchError);
    // No winner (EMPTY): the field is left out; the lens defaults to the service's.
    behave = () => [null, { resolution: { subject: 'Q42', predicate: 'x', lens: 'consensus', status: 'STATUS_EMPTY' }, applied_lsn: '1' }];
    const e = await client.resolve('Q42', 'x');
    assert.equal(calls.at(-1).request.lens, '');
    assert.equal('winner' in e.resolution, false);
    assert.equal(e.resolution.status, 'STATUS_EMPTY');
  });

  test('bad query arguments are refused before any call, naming the argument', async () => {
    await assert.rejects(client.resolve(42, 'name'), /subject must be a string/);
    await assert.rejects(client.resolve('Q42', undefined), /predicate must be a string/);
    await assert.rejects(client.resolve('Q42', 'name', { lens: 'x'.repeat(300) }), /lens must be at most 256 bytes/);
    await assert.rejects(client.resolve('Q42', 'name', { asOfLsn: -1 }), /asOfLsn must be in \[0, 2\*\*64 - 1\]/);
    await assert.rejects(client.resolve('Q42', 'name', { asOfLsn: 1.5 }), /asOfLsn must be an integer/);
    await assert.rejects(client.resolveSubject('Q42', { pageSize: -1 }), /pageSize must be an integer/);
    await assert.rejects(client.getTally('abcd'), /assertionHash must be 32 bytes/);
    await assert.rejects(client.getInclusionProof(2n ** 64n), /lsn must be in/);
    assert.equal(calls.length, 0);
  });

  test('resolveSubjectAll and listHistoryAll follow page tokens', async () => {
    const resolution = (p) => ({ subject: 's', predicate: p, lens: 'recent', status: 'STATUS_UNCERTAIN' });
    const entry = (lsn) => ({ lsn: String(lsn), status: 'STATUS_RESOLVED', winner_hash: Buffer.alloc(32, lsn), score: lsn });
    behave = (m, req) => {
      const second = req.page_token === 't2';
      if (m === 'ResolveSubject') {
        return [null, { resolutions: [resolution(second ? 'b' : 'a')], next_page_token: second ? '' : 't2', applied_lsn: '3' }];
      }
      return [null, { entries: [entry(second ? 2 : 1)], next_page_token: second ? '' : 't2', applied_lsn: '3' }];
    };
    const preds = [];
    for await (const r of client.resolveSubjectAll('s', { lens: 'recent', pageSize: 1 })) preds.push(r.predicate);
    assert.deepEqual(preds, ['a', 'b']);
    assert.deepEqual(calls.map((c) => [c.request.lens, c.request.page_size, c.request.page_token]), [['recent', 1, ''], ['recent', 1, 't2']]);
    const hist = [];
    for await (const e of client.listHistoryAll('s', 'p')) hist.push(e);
    assert.deepEqual(hist, [
      { lsn: 1, status: 'STATUS_RESOLVED', winner_hash: '01'.repeat(32), score: 1 },
      { lsn: 2, status: 'STATUS_RESOLVED', winner_hash: '02'.repeat(32), score: 2 },
    ]);
  });

  test('getTally and listLenses', async () => {
    const h = Buffer.alloc(32, 3);
    behave = (m, req) => {
      if (m === 'ListLenses') {
        return [null, { lenses: [{ name: 'skeptic', description: 'd', parameters: { threshold: 0.6, min_supporters: 2 } }],
          policy_hash: Buffer.alloc(32, 2), candidates_max: 10, applied_lsn: '8' }];
      }
      if (req.assertion_hash.equals(h)) {
        return [null, { found: true, tally: { assertion_hash: h, support: 3, dispute: 1, supporters: 3, disputers: 1, votes: 4, score: 2 },
          policy_hash: Buffer.alloc(32, 2), applied_lsn: '8' }];
      }
      return [null, { found: false, policy_hash: Buffer.alloc(32, 2), applied_lsn: '8' }];
    };
    const t = await client.getTally(h.toString('hex'), { minLsn: 8 });
    assert.deepEqual(t, {
      found: true,
      tally: { assertion_hash: h.toString('hex'), support: 3, dispute: 1, supporters: 3, disputers: 1, votes: 4, score: 2 },
      policyHash: '02'.repeat(32),
      appliedLsn: 8,
    });
    assert.equal(calls[0].request.min_lsn, '8');
    assert.deepEqual(await client.getTally(Buffer.alloc(32)), { found: false, tally: null, policyHash: '02'.repeat(32), appliedLsn: 8 });
    const l = await client.listLenses();
    assert.deepEqual(l, {
      lenses: [{ name: 'skeptic', description: 'd', parameters: { threshold: 0.6, min_supporters: 2 } }],
      policyHash: '02'.repeat(32), candidatesMax: 10, appliedLsn: 8,
    });
  });

  // A small log served by the fake LogService: three records, a checkpoint signed by LOG_SIGNER.
  const LOG_SIGNER = note.makeSigner('test.log/stemedb', Buffer.alloc(32, 0x4c));
  const OTHER_SIGNER = note.makeSigner('test.log/stemedb', Buffer.alloc(32, 0x4d));
  const LOG_RECORDS = ['epoch-minimal', 'assertion-all-fields', 'vote-positive'].map((n) => byName[n].record);
  const LOG_LEAVES = LOG_RECORDS.map((r, i) => recordLeafHash(i + 1, r));
  const signedCheckpoint = (signer = LOG_SIGNER, root = mth(LOG_LEAVES)) =>
    note.signNote(note.checkpointBody({ origin: signer.name, treeSize: LOG_LEAVES.length, rootHash: root }), [signer]);

  function fakeLog({ checkpoint = signedCheckpoint(), tamper = (p) => p, recordAt = (lsn) => LOG_RECORDS[lsn - 1] } = {}) {
    return (m, req) => {
      if (m === 'GetCheckpoint') return [null, { checkpoint, verifier_key: LOG_SIGNER.verifier.encode(), applied_lsn: '3' }];
      if (m === 'ListRecordLsns') {
        const lsns = LOG_RECORDS.flatMap((r, i) => (hash(r).equals(req.hash) ? [String(i + 1)] : []));
        return [null, { lsns, next_page_token: '', applied_lsn: '3' }];
      }
      if (m === 'GetInclusionProof') {
        const lsn = Number(req.lsn);
        const proof = { leaf_index: String(lsn - 1), tree_size: '3', hashes: auditPath(lsn - 1, LOG_LEAVES),
          record: recordToProto(recordAt(lsn)), checkpoint, applied_lsn: '3' };
        return [null, tamper(proof)];
      }
      throw new Error(`unexpected ${m}`);
    };
  }

  test('verifyRecord: a record in the signed log verifies against the pinned key', async () => {
    behave = fakeLog();
    const vkey = LOG_SIGNER.verifier.encode();
    const r = await client.verifyRecord(hashHex(LOG_RECORDS[1]), { verifierKey: vkey });
    assert.equal(r.found, true);
    assert.deepEqual(r.lsns, [2]);
    assert.equal(r.checkpoint.treeSize, 3n);
    assert.deepEqual(r.checkpoint.rootHash, mth(LOG_LEAVES));
    assert.deepEqual(calls.map((c) => c.method), ['GetCheckpoint', 'ListRecordLsns', 'GetInclusionProof']);
    assert.equal(calls[2].request.tree_size, '3');
    const byLsn = await client.verifyRecord(hashHex(LOG_RECORDS[2]), { verifierKey: vkey, lsn: 3 });
    assert.deepEqual(byLsn.lsns, [3]);
    const absent = await client.verifyRecord(Buffer.alloc(32, 1), { verifierKey: vkey });
    assert.equal(absent.found, false);
    await assert.rejects(client.verifyRecord(hashHex(LOG_RECORDS[0]), {}), /verifierKey is required/);
    const n = calls.length;
    await assert.rejects(client.verifyRecord(hashHex(LOG_RECORDS[0]), { verifierKey: vkey, lsn: 1.5 }), /lsn must be an integer/);
    await assert.rejects(client.verifyRecord(hashHex(LOG_RECORDS[0]), { verifierKey: vkey, lsn: 0 }), /lsn must be at least 1/);
    assert.equal(calls.length, n, 'refused before any call');
  });

  test('checkLogExtends: an extension verifies; a shrink, a fork and a bad consistency proof are refused', async () => {
    const vkey = LOG_SIGNER.verifier.encode();
    const signedAt = (size, root = mth(LOG_LEAVES.slice(0, size))) =>
      note.signNote(note.checkpointBody({ origin: LOG_SIGNER.name, treeSize: size, rootHash: root }), [LOG_SIGNER]);
    let served = signedAt(3);
    let proof = subproof(2, LOG_LEAVES, true);
    behave = (m, req) => {
      if (m === 'GetCheckpoint') return [null, { checkpoint: served, verifier_key: vkey, applied_lsn: '3' }];
      assert.deepEqual([req.first_size, req.second_size], ['2', '3']);
      return [null, { hashes: proof, applied_lsn: '3' }];
    };
    const r = await client.checkLogExtends(signedAt(2), { verifierKey: vkey });
    assert.equal(r.checkpoint.treeSize, 3n);
    assert.equal(r.checkpointText, served);
    await assert.rejects(client.checkLogExtends(signedAt(3), { verifierKey: vkey }).then(() => {
      served = signedAt(2);
      return client.checkLogExtends(signedAt(3), { verifierKey: vkey });
    }), /the log shrank: size 2 served, 3 trusted/);
    served = signedAt(3, Buffer.alloc(32, 1));
    await assert.rejects(client.checkLogExtends(signedAt(3), { verifierKey: vkey }), /fork: two roots for size 3/);
    served = signedAt(3);
    proof = proof.map((h, i) => (i === 0 ? Buffer.alloc(32, 2) : h));
    await assert.rejects(client.checkLogExtends(signedAt(2), { verifierKey: vkey }), ProofError);
    await assert.rejects(client.checkLogExtends(signedAt(2), {}), /verifierKey is required/);
  });

  test('verifyRecord refuses a tampered proof, a forged checkpoint and a swapped record', async () => {
    const vkey = LOG_SIGNER.verifier.encode();
    const h = hashHex(LOG_RECORDS[1]);
    const flipped = (p) => {
      const hashes = p.hashes.map((x) => Buffer.from(x));
      hashes[0][5] ^= 0x01;
      return { ...p, hashes };
    };
    behave = fakeLog({ tamper: flipped });
    await assert.rejects(client.verifyRecord(h, { verifierKey: vkey }), ProofError);
    behave = fakeLog({ tamper: (p) => ({ ...p, hashes: p.hashes.slice(1) }) });
    await assert.rejects(client.verifyRecord(h, { verifierKey: vkey }), ProofError);
    behave = fakeLog({ tamper: (p) => ({ ...p, tree_size: '2' }) });
    await assert.rejects(client.verifyRecord(h, { verifierKey: vkey }), /tree size 2/);
    // A checkpoint signed by another key (the served verifier key is not used: ours is pinned).
    behave = fakeLog({ checkpoint: signedCheckpoint(OTHER_SIGNER) });
    await assert.rejects(client.verifyRecord(h, { verifierKey: vkey }), note.NoteError);
    // A validly signed checkpoint over another root.
    behave = fakeLog({ checkpoint: signedCheckpoint(LOG_SIGNER, Buffer.alloc(32, 7)) });
    await assert.rejects(client.verifyRecord(h, { verifierKey: vkey }), ProofError);
    // The store answers a record of another hash at that LSN.
    behave = fakeLog({ recordAt: () => LOG_RECORDS[0] });
    await assert.rejects(client.verifyRecord(h, { verifierKey: vkey, lsn: 2 }), /record of another hash/);
    // An LSN beyond the checkpoint (once the deadline for a covering checkpoint is over).
    behave = fakeLog();
    await assert.rejects(client.verifyRecord(h, { verifierKey: vkey, lsn: 9, deadlineMs: 1000 }), /not in the signed log of size 3/);
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
