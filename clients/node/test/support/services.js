// Support of the live tests: the real StemeDB services (stemedb-writer, stemedb-ingestor,
// stemedb-wallet from ../../.venv/bin, or env STEMEDB_BIN_DIR) as child processes in their own
// process groups, readiness by grpc.health.v1, free ports, and Python beside Node to compare with.
// When the binaries are missing the live suites are skipped with a message, unless env CI is set:
// then they fail.

import { spawn, spawnSync } from 'node:child_process';
import { accessSync, constants, createWriteStream } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

import grpc from '@grpc/grpc-js';
import protoLoader from '@grpc/proto-loader';

const HERE = path.dirname(fileURLToPath(import.meta.url));
export const BIN_DIR = path.resolve(
  process.env.STEMEDB_BIN_DIR || path.join(HERE, '..', '..', '..', '..', '.venv', 'bin'),
);
export const WRITER_BIN = path.join(BIN_DIR, 'stemedb-writer');
export const INGESTOR_BIN = path.join(BIN_DIR, 'stemedb-ingestor');
export const WALLET_BIN = path.join(BIN_DIR, 'stemedb-wallet');
export const PYTHON_BIN = process.env.STEMEDB_PYTHON || path.join(BIN_DIR, 'python');
export const READY_TIMEOUT_MS = Number(process.env.STEMEDB_READY_TIMEOUT_MS || 60_000);
export const STOP_TIMEOUT_MS = 10_000;

function executable(p) {
  try {
    accessSync(p, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

/**
 * Whether a live suite runs: `{missing, message, skip}` for the binaries it needs. `skip` is the
 * reason to skip (binaries missing and CI not set), else false; with CI set, a suite whose
 * binaries are missing must fail (throw `message` in its before hook).
 */
export function liveGate(bins) {
  const missing = bins.filter((p) => !executable(p));
  const message =
    missing.length === 0
      ? ''
      : `StemeDB services not installed: ${missing.join(', ')} missing ` +
        '(run `make install` once the services exist, or set STEMEDB_BIN_DIR)';
  const skip = missing.length > 0 && !process.env.CI ? `${message}; skipped because CI is not set` : false;
  return { missing, message, skip };
}

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

/** The grpc.health.v1 package (its proto written under `dir`). */
export async function loadHealth(dir) {
  const healthFile = path.join(dir, 'health.proto');
  await writeFile(healthFile, HEALTH_PROTO);
  return grpc.loadPackageDefinition(
    protoLoader.loadSync(healthFile, { keepCase: true, enums: String, defaults: true }),
  ).grpc.health.v1;
}

const REPO_ROOT = path.resolve(HERE, '..', '..', '..', '..');

/**
 * `n` loopback TCP ports for the services, from the Python tests' allocator (tests/support.py
 * free_port: outside the kernel's ephemeral range, one machine-wide cursor, so no other test
 * process is handed them; binding port 0 and releasing it would race with every other process).
 */
export function freePorts(n) {
  const script = `from tests.support import free_port\nprint(*(free_port() for _ in range(${n})))\n`;
  const r = spawnSync(PYTHON_BIN, ['-c', script], { cwd: REPO_ROOT, encoding: 'utf8', timeout: 30_000 });
  if (r.status !== 0) throw new Error(`tests/support.py free_port failed (${r.status}): ${r.stderr || r.error}`);
  return r.stdout.trim().split(/\s+/).map(Number);
}

/** The content hash of a JSON-form record as computed by Python (stemedb.canonical). */
export function pythonHash(record) {
  const script =
    'import json, sys\n' +
    'from stemedb.canonical import record_hash\n' +
    'from stemedb.jsonrecord import record_from_json\n' +
    'print(record_hash(record_from_json(json.load(sys.stdin))).hex())\n';
  const r = spawnSync(PYTHON_BIN, ['-c', script], { input: JSON.stringify(record), encoding: 'utf8', timeout: 30_000 });
  if (r.status !== 0) throw new Error(`python failed (${r.status}): ${r.stderr || r.error}`);
  return r.stdout.trim();
}

/** Runs a Python script with `input` as JSON on stdin and returns its stdout parsed as JSON. */
export function pythonJson(script, input) {
  const r = spawnSync(PYTHON_BIN, ['-c', script], { input: JSON.stringify(input), encoding: 'utf8', timeout: 60_000 });
  if (r.status !== 0) throw new Error(`python failed (${r.status}): ${r.stderr || r.error}`);
  return JSON.parse(r.stdout);
}

export function tail(svc, n = 40) {
  const text = svc.output.trimEnd();
  return text ? text.split('\n').slice(-n).join('\n') : '(no output)';
}

const running = new Set();
// Best effort if the runner dies before the after hook: kill the process groups we started.
process.once('exit', () => {
  for (const svc of running) svc.killGroup('SIGKILL');
});

export class Service {
  constructor(name, bin, args, logFile, env = {}) {
    this.name = name;
    this.logFile = logFile;
    const log = createWriteStream(logFile);
    // detached: its own process group, so that worker processes it forks can be killed with it.
    this.child = spawn(bin, args, {
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, PYTHONUNBUFFERED: '1', ...env },
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
export async function waitHealthy(svc, address, healthPkg, serviceName) {
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

