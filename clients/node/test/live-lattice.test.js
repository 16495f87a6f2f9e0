// End to end, the Lattice, the verifiable log and the wallet from Node: real stemedb-writer,
// stemedb-ingestor and stemedb-wallet processes (test/support/services.js starts them).
//
// - Competing assertions and votes written from Node; Node's Resolve (every lens), ResolveSubject,
//   GetTally and ListHistory answers equal, field by field, what Python's generated stubs get
//   from the same ingestor (rendered by the gateway's JSON module, the same JSON form).
// - A receipt's inclusion proof verifies in Node against the writer's log key, read from its key
//   file (pinned out of band); a proxy that tampers with the proof, or serves a checkpoint of
//   another key, is refused.
// - Node writes an unsigned assertion and an unsigned vote through the wallet's Unix socket
//   (`unix:<relative path>`, with a `key`); the store shows them signed by the wallet's key.

import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';

import grpc from '@grpc/grpc-js';
import protoLoader from '@grpc/proto-loader';

import {
  LOADER_OPTIONS,
  ProofError,
  StemeClient,
  checkSignatures,
  defaultProtoDir,
  loadProtos,
  makeAssertion,
  makeVote,
  note,
  publicKeyFromSeed,
} from '../src/index.js';
import {
  INGESTOR_BIN,
  STOP_TIMEOUT_MS,
  Service,
  WALLET_BIN,
  WRITER_BIN,
  freePorts,
  liveGate,
  loadHealth,
  pythonJson,
  tail,
  waitHealthy,
} from './support/services.js';

// Fixed test keys of four agents (never use them for anything else).
const SEEDS = ['a1', 'b2', 'c3', 'd4'].map((b) => b.repeat(32));
const [A, B, C, D] = SEEDS;
const PASSPHRASE = 'correct horse battery staple';
// Argon2id at libsodium's minimum cost: the wallet's code path, in milliseconds.
const FAST_KDF = ['--kdf-opslimit', '1', '--kdf-memlimit-bytes', '8192'];

const { message: MISSING_MSG, missing, skip: SKIP } = liveGate([WRITER_BIN, INGESTOR_BIN, WALLET_BIN]);

// Python's answers to the same QueryService calls: generated stubs over a plain channel, each
// response rendered by stemedb.jsonmessage (proto field names, hex bytes, numbers, enum names).
const PY_QUERY = `
import json, sys
import grpc
from stemedb.jsonmessage import message_to_json
from stemedb.v1 import query_pb2 as q, query_pb2_grpc
job = json.load(sys.stdin)
out = []
with grpc.insecure_channel(job["store"]) as ch:
    stub = query_pb2_grpc.QueryServiceStub(ch)
    for method, req in job["calls"]:
        if method == "GetTally":
            req = dict(req, assertion_hash=bytes.fromhex(req["assertion_hash"]))
        if method in ("ListHistory", "ResolveSubject"):
            field = "entries" if method == "ListHistory" else "resolutions"
            items, token = [], ""
            while True:
                page = getattr(stub, method)(getattr(q, method + "Request")(**req, page_token=token), timeout=30)
                items += [message_to_json(m) for m in getattr(page, field)]
                token = page.next_page_token
                if not token:
                    break
            out.append({field: items, "applied_lsn": page.applied_lsn})
        else:
            out.append(message_to_json(getattr(stub, method)(getattr(q, method + "Request")(**req), timeout=30)))
print(json.dumps(out))
`;

async function collect(iterable) {
  const out = [];
  for await (const x of iterable) out.push(x);
  return out;
}

describe('live: Lattice, verifiable log and wallet from Node', { skip: SKIP, timeout: 240_000 }, () => {
  let dir;
  const services = [];
  let client;
  let writerAddr;
  let storeAddr;
  let walletSock;
  let logKey; // the log's verifier key, from the writer's key file
  const subject = `node-lattice ${process.pid}`;
  const source = Buffer.alloc(32, 5).toString('hex');
  const s = {};

  before(async () => {
    if (missing.length > 0) throw new Error(`${MISSING_MSG} (CI is set, so this is a failure)`);
    dir = await mkdtemp(path.join(os.tmpdir(), 'stemedb-nl-'));
    const health = await loadHealth(dir);
    const [p1, m1, p2, m2, m3] = freePorts(5);
    const wal = path.join(dir, 'wal');
    writerAddr = `127.0.0.1:${p1}`;
    storeAddr = `127.0.0.1:${p2}`;
    const writer = new Service(
      'stemedb-writer',
      WRITER_BIN,
      ['--wal-dir', wal, '--listen', writerAddr, '--metrics-listen', `127.0.0.1:${m1}`, '--verify-workers', '1'],
      path.join(dir, 'writer.log'),
    );
    services.push(writer);
    await waitHealthy(writer, writerAddr, health, 'stemedb.v1.WriterService');
    const ingestor = new Service(
      'stemedb-ingestor',
      INGESTOR_BIN,
      ['--wal-dir', wal, '--db-dir', path.join(dir, 'db'), '--listen', storeAddr, '--metrics-listen', `127.0.0.1:${m2}`],
      path.join(dir, 'ingestor.log'),
    );
    services.push(ingestor);
    walletSock = path.join(dir, 'wallet.sock');
    const wallet = new Service(
      'stemedb-wallet',
      WALLET_BIN,
      ['--keystore', path.join(dir, 'ks'), '--listen', `unix:${walletSock}`, '--writer', writerAddr,
        '--metrics-listen', `127.0.0.1:${m3}`, ...FAST_KDF],
      path.join(dir, 'wallet.log'),
      { STEMEDB_WALLET_PASSPHRASE: PASSPHRASE },
    );
    services.push(wallet);
    await Promise.all([
      waitHealthy(ingestor, storeAddr, health, 'stemedb.v1.QueryService'),
      waitHealthy(wallet, `unix:${walletSock}`, health, 'stemedb.v1.WalletService'),
    ]);
    // Pinned out of band: the verifier key derived from the writer's own key file.
    logKey = note.parseSignerKey(readFileSync(path.join(wal, 'log.key'), 'ascii').trim()).verifier.encode();
    client = new StemeClient({ writer: writerAddr, store: storeAddr, deadlineMs: 20_000 });
  });

  after(async () => {
    client?.close();
    const results = await Promise.all(services.map((svc) => svc.stop()));
    services.forEach((svc, i) => {
      const r = results[i];
      if (svc.killed) console.error(`${svc.name} ignored SIGTERM for ${STOP_TIMEOUT_MS} ms: SIGKILLed`);
      else if (r && r.code !== 0 && r.signal !== 'SIGTERM') console.error(`${svc.name} exited with ${JSON.stringify(r)}:\n${tail(svc)}`);
    });
    if (dir && !process.env.STEMEDB_KEEP_TMP) await rm(dir, { recursive: true, force: true });
    else if (dir) console.error(`kept ${dir}`);
  });

  test('competing assertions and votes: Node answers = Python answers, with the exact tallies', async () => {
    const fact = (object, confidence, seed) =>
      makeAssertion({ subject, predicate: 'capital', object: { text: object }, confidence, source_hash: source }, seed);
    const x = fact('Canberra', 0.8, A);
    const y = fact('Sydney', 0.5, B);
    const z = makeAssertion(
      { subject, predicate: 'population', object: { number: 26e6 }, confidence: 0.9, source_hash: source },
      C,
    );
    const [rx, ry, rz] = await client.appendBatch([x, y, z]);
    // Three agents vote +1 on X, one on Y; then D changes its mind about Y (a higher sequence).
    for (const seed of [A, B, C]) await client.appendVote(makeVote({ assertionHash: rx.hash, weight: 1, sequence: 1 }, seed));
    await client.appendVote(makeVote({ assertionHash: ry.hash, weight: 1, sequence: 1 }, D));
    const last = await client.appendVote(makeVote({ assertionHash: ry.hash, weight: -1, sequence: 2 }, D));
    Object.assign(s, { rx, ry, rz, x, last });

    const { lenses } = await client.listLenses();
    const names = lenses.map((l) => l.name);
    assert.deepEqual([...names].sort(), ['consensus', 'recent', 'skeptic']);
    const node = {};
    for (const lens of names) node[lens] = await client.resolve(subject, 'capital', { lens, minLsn: last.lsn });
    const tallyX = await client.getTally(rx.hash, { minLsn: last.lsn });
    const tallyY = await client.getTally(ry.hash, { minLsn: last.lsn });
    const history = await collect(client.listHistoryAll(subject, 'capital', { pageSize: 1 }));
    const subjectAll = await collect(client.resolveSubjectAll(subject, { lens: 'skeptic', pageSize: 1 }));
    const asOf = await client.resolve(subject, 'capital', { asOfLsn: rz.lsn });

    const py = pythonJson(PY_QUERY, {
      store: storeAddr,
      calls: [
        ...names.map((lens) => ['Resolve', { subject, predicate: 'capital', lens }]),
        ['GetTally', { assertion_hash: rx.hash }],
        ['GetTally', { assertion_hash: ry.hash }],
        ['ListHistory', { subject, predicate: 'capital', page_size: 1 }],
        ['ResolveSubject', { subject, lens: 'skeptic', page_size: 1 }],
        ['Resolve', { subject, predicate: 'capital', as_of_lsn: rz.lsn }],
        ['ListLenses', {}],
      ],
    });
    names.forEach((lens, i) => {
      assert.deepEqual(node[lens].resolution, py[i].resolution, `Resolve under ${lens}`);
      assert.equal(node[lens].appliedLsn, py[i].applied_lsn);
    });
    let k = names.length;
    for (const t of [tallyX, tallyY]) {
      assert.deepEqual(t.tally, py[k].tally);
      assert.equal(t.policyHash, py[k].policy_hash);
      k++;
    }
    assert.deepEqual(history, py[k++].entries);
    assert.deepEqual(subjectAll, py[k++].resolutions);
    assert.deepEqual(asOf.resolution, py[k++].resolution);
    assert.deepEqual((await client.listLenses()).lenses, py[k].lenses);

    // The figures themselves (DESIGN 9.1: a vote overrides its signer's confidence).
    assert.deepEqual(tallyX.tally, {
      assertion_hash: rx.hash, support: 3, dispute: 0, supporters: 3, disputers: 0, votes: 3, score: 3,
    });
    assert.deepEqual(tallyY.tally, {
      assertion_hash: ry.hash, support: 0.5, dispute: 1, supporters: 1, disputers: 1, votes: 1, score: -0.5,
    });
    const consensus = node.consensus.resolution;
    assert.equal(consensus.status, 'STATUS_RESOLVED');
    assert.deepEqual(consensus.winner, { hash: rx.hash, assertion: x.assertion });
    assert.deepEqual(consensus.candidates.map((c) => c.assertion_hash), [rx.hash, ry.hash]);
    assert.equal(consensus.as_of_lsn, last.lsn);
    assert.equal(node.recent.resolution.winner.hash, ry.hash, 'recent: the last appended wins');
    assert.deepEqual(subjectAll.map((r) => r.predicate), ['capital', 'population']);
    assert.equal(asOf.resolution.as_of_lsn, rz.lsn);
    assert.equal(asOf.resolution.candidates.find((c) => c.assertion_hash === rx.hash).votes, 0, 'before the votes');
    assert.ok(history.length >= 1 && history.every((e, i) => i === 0 || e.lsn > history[i - 1].lsn));
  });

  test('a bad lens and an as_of_lsn beyond the applied LSN are INVALID_ARGUMENT', async () => {
    await assert.rejects(client.resolve(subject, 'capital', { lens: 'nope' }), (err) => {
      assert.equal(err.codeName, 'INVALID_ARGUMENT');
      assert.match(err.details, /consensus/);
      return true;
    });
    await assert.rejects(client.resolve(subject, 'capital', { asOfLsn: 10_000_000 }), (err) => err.codeName === 'INVALID_ARGUMENT');
  });

  test("a receipt's inclusion proof verifies in Node against the pinned log key", async () => {
    const r = await client.verifyRecord(s.rx.hash, { verifierKey: logKey, lsn: s.rx.lsn });
    assert.deepEqual(r.lsns, [s.rx.lsn]);
    assert.ok(r.checkpoint.treeSize >= BigInt(s.rx.lsn));
    assert.ok(s.rx.treeSize >= s.rx.lsn, 'the receipt carries its tree size');
    // Every append of the record, found through ListRecordLsns.
    const all = await client.verifyRecord(s.rx.hash, { verifierKey: logKey });
    assert.deepEqual(all.lsns, [s.rx.lsn]);
    // The served checkpoint extends one trusted earlier (a consistency proof).
    const before = r.checkpointText;
    const more = await client.appendAssertion(
      makeAssertion({ subject, predicate: 'motto', object: { text: 'x' }, confidence: 0.5, source_hash: source }, A),
    );
    await client.verifyRecord(more.hash, { verifierKey: logKey, lsn: more.lsn });
    const ext = await client.checkLogExtends(before, { verifierKey: logKey });
    assert.ok(ext.checkpoint.treeSize >= BigInt(more.lsn));
  });

  test('a tampering LogService (flipped proof hash, checkpoint of another key) is refused', async () => {
    const pkg = loadProtos();
    const upstream = new pkg.LogService(storeAddr, grpc.credentials.createInsecure());
    const forger = note.makeSigner(note.parseVerifierKey(logKey).name, Buffer.alloc(32, 0x66));
    let mode = 'proof';
    const forward = (method, change) => (call, cb) =>
      upstream[method](call.request, { deadline: Date.now() + 20_000 }, (err, res) => (err ? cb(err) : cb(null, change(res))));
    const proxy = new grpc.Server();
    proxy.addService(pkg.LogService.service, {
      GetCheckpoint: forward('GetCheckpoint', (res) => {
        if (mode !== 'checkpoint') return res;
        const cp = note.parseCheckpoint(res.checkpoint.slice(0, res.checkpoint.indexOf('\n\n') + 1));
        return { ...res, checkpoint: note.signNote(note.checkpointBody(cp), [forger]), verifier_key: forger.verifier.encode() };
      }),
      GetInclusionProof: forward('GetInclusionProof', (res) => {
        if (mode !== 'proof' || !res.hashes.length) return res;
        const hashes = res.hashes.map((h) => Buffer.from(h));
        hashes[hashes.length - 1][0] ^= 0x80;
        return { ...res, hashes };
      }),
      GetConsistencyProof: forward('GetConsistencyProof', (res) => res),
      ListRecordLsns: forward('ListRecordLsns', (res) => res),
    });
    const port = await new Promise((resolve, reject) =>
      proxy.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (e, p) => (e ? reject(e) : resolve(p))),
    );
    const viaProxy = new StemeClient({ writer: writerAddr, store: `127.0.0.1:${port}`, deadlineMs: 20_000 });
    try {
      await assert.rejects(viaProxy.verifyRecord(s.rx.hash, { verifierKey: logKey, lsn: s.rx.lsn }), ProofError);
      mode = 'checkpoint';
      await assert.rejects(viaProxy.verifyRecord(s.rx.hash, { verifierKey: logKey, lsn: s.rx.lsn }), note.NoteError);
      mode = 'none';
      const ok = await viaProxy.verifyRecord(s.rx.hash, { verifierKey: logKey, lsn: s.rx.lsn });
      assert.deepEqual(ok.lsns, [s.rx.lsn], 'the proxy itself forwards faithfully');
    } finally {
      viaProxy.close();
      upstream.close();
      proxy.forceShutdown();
    }
  });

  test("Node writes unsigned records through the wallet's socket: the store shows the wallet's signatures", async () => {
    const walletDef = protoLoader.loadSync('stemedb/v1/wallet.proto', { ...LOADER_OPTIONS, includeDirs: [defaultProtoDir()] });
    const { WalletService } = grpc.loadPackageDefinition(walletDef).stemedb.v1;
    // The form of DESIGN 11, unix:./path, relative to the working directory (restored below,
    // after the channels that resolve it are closed).
    const cwd = process.cwd();
    process.chdir(path.dirname(walletSock));
    const relative = `unix:./${path.basename(walletSock)}`;
    const wallet = new WalletService(relative, grpc.credentials.createInsecure());
    const create = (name) =>
      new Promise((resolve, reject) =>
        wallet.CreateKey({ name }, { deadline: Date.now() + 20_000 }, (e, r) => (e ? reject(e) : resolve(r.key))),
      );
    let viaWallet;
    try {
      const first = await create('first'); // the default key
      const agent = await create('agent');
      viaWallet = new StemeClient({ writer: relative, store: storeAddr, key: 'agent', deadlineMs: 20_000 });
      const unsigned = { subject, predicate: 'signed-by', object: { text: 'the wallet' }, confidence: 0.7, source_hash: source };
      const ra = await viaWallet.appendAssertion({ assertion: unsigned });
      const rv = await viaWallet.appendVote({ vote: { assertion_hash: ra.hash, weight: 0.25 } });
      const rd = await viaWallet.appendVote({ vote: { assertion_hash: s.rx.hash, weight: -0.5 } }, { key: 'first' });

      const got = await client.getAssertion(ra.hash, { minLsn: rd.lsn });
      assert.deepEqual(got.assertion.signatures.map((x) => x.public_key), [agent.public_key.toString('hex')]);
      assert.equal(checkSignatures({ assertion: got.assertion }).ok, true, 'the signature verifies');
      const votes = await client.listVotes(ra.hash, { minLsn: rd.lsn });
      assert.equal(votes.votes.length, 1);
      assert.equal(votes.votes[0].hash, rv.hash);
      assert.equal(votes.votes[0].vote.agent_id, agent.public_key.toString('hex'));
      assert.equal(checkSignatures({ vote: votes.votes[0].vote }).ok, true);
      const onX = await client.listVotes(s.rx.hash, { minLsn: rd.lsn });
      const byFirst = onX.votes.find((v) => v.hash === rd.hash);
      assert.equal(byFirst.vote.agent_id, first.public_key.toString('hex'), 'the per-call key signed it');
      assert.ok(!SEEDS.map((x) => publicKeyFromSeed(x).toString('hex')).includes(byFirst.vote.agent_id));
      // Counted by the Lattice: the wallet's vote moves the tally.
      const t = await client.getTally(ra.hash, { minLsn: rv.lsn });
      assert.equal(t.tally.votes, 1);
      assert.equal(t.tally.support, 0.25);
    } finally {
      wallet.close();
      viaWallet?.close();
      process.chdir(cwd);
    }
  });
});
