// End to end: starts the real stemedb-writer and stemedb-ingestor as child processes, appends from
// Node, reads back from the store and compares every hash with the one Python computes.
//
// Binaries: ../../.venv/bin (relative to clients/node), or env STEMEDB_BIN_DIR. When they are
// missing the suite is skipped with a message, unless env CI is set: then it fails.

import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { accessSync, constants, createWriteStream, readFileSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';

import grpc from '@grpc/grpc-js';
import protoLoader from '@grpc/proto-loader';

import { StemeClient, StemeRpcError, hashHex, makeAssertion, makeEpoch, makeVote, signRecord } from '../src/index.js';

const HERE = path.dirname(fileURLToPath(import.meta.url));
const REPO_ROOT = path.resolve(HERE, '..', '..', '..');
const BIN_DIR = path.resolve(process.env.STEMEDB_BIN_DIR || path.join(HERE, '..', '..', '..', '.venv', 'bin'));
const WRITER_BIN = path.join(BIN_DIR, 'stemedb-writer');
const INGESTOR_BIN = path.join(BIN_DIR, 'stemedb-ingestor');
const PYTHON_BIN = process.env.STEMEDB_PYTHON || path.join(BIN_DIR, 'python');
const READY_TIMEOUT_MS = Number(process.env.STEMEDB_READY_TIMEOUT_MS || 60_000);
const STOP_TIMEOUT_MS = 10_000;

const vectorCases = JSON.parse(
  readFileSync(new URL('../../../tests/vectors/canonical.json', import.meta.url), 'utf8'),
);

// Fixed test keys (never use them for anything else).
const SEED_A = '9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60';
const SEED_B = '4ccd089b28ff96da9db6c346ec114e0f5b8a319f35aba624da8cf6ed4fb8a6fb';

function executable(p) {
  try {
    accessSync(p, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

const missing = [WRITER_BIN, INGESTOR_BIN].filter((p) => !executable(p));
const MISSING_MSG =
  missing.length === 0
    ? ''
    : `StemeDB services not installed: ${missing.join(', ')} missing ` +
      '(run `make install` once the writer and ingestor exist, or set STEMEDB_BIN_DIR)';
const SKIP = missing.length > 0 && !process.env.CI ? `${MISSING_MSG}; skipped because CI is not set` : false;

const HEALTH_PROTO = `
syntax = "proto3";
package grpc.health.v1;
message HealthCheckRequest { string service = 1; }
message HealthCheckResponse {
  enum ServingStatus { UNKNOWN = 0; SERVING = 1; NOT_SERVING = 2; SERVICE_UNKNOWN = 3; }
  ServingStatus status = 1;
}
service Health { rpc Check(HealthCheckRequest) returns (HealthCheckResponse); }
`;

/**
 * `n` loopback TCP ports for the services, from the Python tests' allocator (tests/support.py
 * free_port: outside the kernel's ephemeral range, one machine-wide cursor, so no other test
 * process is handed them; binding port 0 and releasing it would race with every other process).
 */
function freePorts(n) {
  const script = `from tests.support import free_port\nprint(*(free_port() for _ in range(${n})))\n`;
  const r = spawnSync(PYTHON_BIN, ['-c', script], { cwd: REPO_ROOT, encoding: 'utf8', timeout: 30_000 });
  if (r.status !== 0) throw new Error(`tests/support.py free_port failed (${r.status}): ${r.stderr || r.error}`);
  return r.stdout.trim().split(/\s+/).map(Number);
}

/** The content hash of a JSON-form record as computed by Python (stemedb.canonical). */
function pythonHash(record) {
  const script =
    'import json, sys\n' +
    'from stemedb.canonical import record_hash\n' +
    'from stemedb.jsonrecord import record_from_json\n' +
    'print(record_hash(record_from_json(json.load(sys.stdin))).hex())\n';
  const r = spawnSync(PYTHON_BIN, ['-c', script], { input: JSON.stringify(record), encoding: 'utf8', timeout: 30_000 });
  if (r.status !== 0) throw new Error(`python failed (${r.status}): ${r.stderr || r.error}`);
  return r.stdout.trim();
}

function tail(svc, n = 40) {
  const text = svc.output.trimEnd();
  return text ? text.split('\n').slice(-n).join('\n') : '(no output)';
}

const running = new Set();
// Best effort if the runner dies before the after hook: kill the process groups we started.
process.once('exit', () => {
  for (const svc of running) svc.killGroup('SIGKILL');
});

class Service {
  constructor(name, bin, args, logFile) {
    this.name = name;
    this.logFile = logFile;
    const log = createWriteStream(logFile);
    // detached: its own process group, so that worker processes it forks can be killed with it.
    this.child = spawn(bin, args, {
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, PYTHONUNBUFFERED: '1' },
      detached: true,
    });
    running.add(this);
    this.output = '';
    for (const stream of [this.child.stdout, this.child.stderr]) {
      stream.pipe(log);
      stream.on('data', (d) => {
        this.output = (this.output + d.toString('utf8')).slice(-16_384);
      });
    }
    this.exited = new Promise((resolve) => {
      this.child.once('exit', (code, signal) => {
        this.exitInfo = { code, signal };
        running.delete(this);
        resolve(this.exitInfo);
      });
    });
    // 'close' comes once the output pipes have ended (possibly never, if a forked worker holds them).
    this.closed = new Promise((resolve) => this.child.once('close', resolve));
  }

  killGroup(signal) {
    try {
      process.kill(-this.child.pid, signal);
    } catch {
      // already gone
    }
  }

  /** The last lines of output, once the pipes have ended (waits at most 1 s for that). */
  async outputTail() {
    await Promise.race([this.closed, new Promise((r) => setTimeout(r, 1000))]);
    return tail(this);
  }

  /** SIGTERM, then SIGKILL (the whole process group) if it has not exited within the deadline. */
  async stop() {
    if (this.exitInfo) {
      this.killGroup('SIGKILL'); // leftover workers, if any
      return this.exitInfo;
    }
    this.child.kill('SIGTERM');
    let timer;
    const timeout = new Promise((resolve) => {
      timer = setTimeout(resolve, STOP_TIMEOUT_MS, 'timeout');
    });
    const r = await Promise.race([this.exited, timeout]);
    clearTimeout(timer);
    if (r === 'timeout') {
      this.killed = true;
      this.killGroup('SIGKILL');
      await this.exited;
    } else {
      this.killGroup('SIGKILL'); // leftover workers, if any
    }
    return this.exitInfo;
  }
}

/** Polls grpc.health.v1.Health/Check until SERVING, the process exits, or the deadline passes. */
async function waitHealthy(svc, address, healthPkg, serviceName) {
  const client = new healthPkg.Health(address, grpc.credentials.createInsecure());
  const deadline = Date.now() + READY_TIMEOUT_MS;
  let last = 'no answer yet';
  try {
    while (Date.now() < deadline) {
      if (svc.exitInfo) {
        throw new Error(`${svc.name} exited early (${JSON.stringify(svc.exitInfo)}):\n${await svc.outputTail()}`);
      }
      for (const service of ['', serviceName]) {
        const res = await new Promise((resolve) => {
          client.Check({ service }, { deadline: Date.now() + 1000 }, (err, r) => resolve(err ? { err } : r));
        });
        if (res.status === 'SERVING') return;
        last = res.err ? `${grpc.status[res.err.code] ?? res.err.code}: ${res.err.details}` : res.status;
        if (!(res.err && res.err.code === grpc.status.NOT_FOUND)) break; // '' answered: no fallback
      }
      await new Promise((r) => setTimeout(r, 100));
    }
  } finally {
    client.close();
  }
  throw new Error(`${svc.name} not SERVING at ${address} after ${READY_TIMEOUT_MS} ms (last: ${last}):\n${tail(svc)}`);
}

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
    const healthFile = path.join(dir, 'health.proto');
    await writeFile(healthFile, HEALTH_PROTO);
    const healthPkg = grpc.loadPackageDefinition(
      protoLoader.loadSync(healthFile, { keepCase: true, enums: String, defaults: true }),
    ).grpc.health.v1;

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
