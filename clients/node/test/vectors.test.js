// The Node.js implementation against the shared test vectors (tests/vectors/canonical.json).

import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, test } from 'node:test';

import {
  canonicalBytes,
  checkSignatures,
  hash,
  hashHex,
  loadProtos,
  makeVote,
  publicKeyFromSeed,
  recordFromProto,
  recordToProto,
  sign,
  signRecord,
  verify,
} from '../src/index.js';

const VECTORS = new URL('../../../tests/vectors/canonical.json', import.meta.url);
const cases = JSON.parse(readFileSync(VECTORS, 'utf8'));

test('the vector file holds the expected cases', () => {
  assert.equal(cases.length, 35);
  const kinds = new Set(cases.map((c) => c.kind));
  assert.deepEqual([...kinds].sort(), ['assertion', 'epoch', 'vote']);
});

for (const c of cases) {
  describe(`vector ${c.name}`, () => {
    test('canonical bytes', () => {
      assert.equal(canonicalBytes(c.record).toString('hex'), c.canonical_hex);
    });

    test('hash', () => {
      assert.equal(hashHex(c.record), c.hash_hex);
      assert.equal(hash(c.record).length, 32);
    });

    test('signatures', () => {
      const h = Buffer.from(c.hash_hex, 'hex');
      const tampered = Buffer.from(h);
      tampered[0] ^= 0x01;
      for (const s of c.signatures) {
        assert.equal(publicKeyFromSeed(s.seed_hex).toString('hex'), s.public_key_hex);
        assert.equal(sign(s.seed_hex, h).toString('hex'), s.signature_hex);
        assert.equal(verify(s.public_key_hex, s.signature_hex, h), true);
        assert.equal(verify(s.public_key_hex, s.signature_hex, tampered), false);
        const badSig = Buffer.from(s.signature_hex, 'hex');
        badSig[63] ^= 0x40;
        assert.equal(verify(s.public_key_hex, badSig, h), false);
      }
      // The signatures carried by the record itself verify too.
      const check = checkSignatures(c.record);
      assert.deepEqual(check.failed, []);
    });

    test('re-signing from the seeds reproduces the record', () => {
      if (c.signatures.length === 0) return;
      const [kind, body] = Object.entries(c.record)[0];
      const seeds = c.signatures.map((s) => s.seed_hex);
      const unsigned =
        kind === 'vote'
          ? { vote: { ...body, signature: undefined } }
          : { [kind]: { ...body, signatures: [] } };
      const signed = signRecord(unsigned, ...seeds);
      if (kind === 'vote') assert.equal(signed.vote.signature, body.signature);
      else assert.deepEqual(signed[kind].signatures, body.signatures);
    });

    test('JSON form -> proto message -> JSON form round trip keeps the hash', () => {
      const pkg = loadProtos();
      const Record = pkg.Record.type; // protobufjs Type via proto-loader
      assert.ok(Record);
      const proto = recordToProto(c.record);
      const back = recordFromProto(proto);
      assert.equal(hashHex(back), c.hash_hex);
    });
  });
}

test('negative zero differs from zero', () => {
  const z = cases.find((c) => c.name === 'assertion-number-zero');
  const nz = cases.find((c) => c.name === 'assertion-number-negative-zero');
  assert.ok(Object.is(nz.record.assertion.object.number, -0));
  assert.notEqual(hashHex(z.record), hashHex(nz.record));
});

test('malformed records are rejected with the field named', () => {
  const base = cases.find((c) => c.name === 'assertion-text-minimal').record.assertion;
  assert.throws(
    () => canonicalBytes({ assertion: { ...base, source_hash: 'abcd' } }),
    /assertion\.source_hash must be 32 bytes/,
  );
  assert.throws(
    () => canonicalBytes({ assertion: { ...base, visual_hash: '123' } }),
    /assertion\.visual_hash must be 16 hex digits/,
  );
  assert.throws(() => canonicalBytes({ assertion: { ...base, source_hash: 'zz' } }), /hex/);
  assert.throws(() => canonicalBytes({ thing: {} }), /"assertion", "vote" or "epoch"/);
  assert.throws(
    () => canonicalBytes({ epoch: { name: 'e', supersession_type: 'NOPE' } }),
    /epoch\.supersession_type/,
  );
});

test('bytes fields accept Uint8Array as well as hex', () => {
  const c = cases.find((x) => x.name === 'vote-fractional');
  const v = c.record.vote;
  const asBytes = {
    vote: {
      ...v,
      assertion_hash: Uint8Array.from(Buffer.from(v.assertion_hash, 'hex')),
      agent_id: Buffer.from(v.agent_id, 'hex'),
    },
  };
  assert.equal(hashHex(asBytes), c.hash_hex);
});

test('makeVote signs with the seed and sets agent_id', () => {
  const c = cases.find((x) => x.name === 'vote-fractional');
  const seed = c.signatures[0].seed_hex;
  const vote = makeVote({ assertionHash: c.record.vote.assertion_hash, weight: -0.375 }, seed);
  assert.deepEqual(vote, c.record);
});

test('verify rejects malformed keys and signatures without throwing', () => {
  const h = Buffer.alloc(32);
  assert.equal(verify('00', 'ff', h), false);
  assert.equal(verify(Buffer.alloc(32, 0xff), Buffer.alloc(64), h), false);
  assert.equal(verify('not hex', Buffer.alloc(64), h), false);
});

test('a vote with sequence 0 keeps its v1 bytes; any other sequence appends u64', () => {
  const c = cases.find((x) => x.name === 'vote-sequence-millis');
  const v = c.record.vote;
  const v1 = canonicalBytes({ vote: { ...v, sequence: undefined } });
  assert.equal(v1.length, 16 + 32 + 32 + 8);
  assert.equal(canonicalBytes({ vote: { ...v, sequence: 0 } }).toString('hex'), v1.toString('hex'));
  const withSeq = canonicalBytes(c.record);
  assert.equal(withSeq.length, v1.length + 8);
  assert.equal(withSeq.subarray(v1.length).readBigUInt64BE(), 1764633600123n);
  // A bigint and a decimal string (as proto-loader gives uint64) encode the same.
  assert.equal(hashHex({ vote: { ...v, sequence: 1764633600123n } }), c.hash_hex);
  assert.equal(hashHex({ vote: { ...v, sequence: '1764633600123' } }), c.hash_hex);
  assert.throws(() => canonicalBytes({ vote: { ...v, sequence: -1 } }), /vote\.sequence/);
  assert.throws(() => canonicalBytes({ vote: { ...v, sequence: 1.5 } }), /vote\.sequence/);
});

test('makeVote with a sequence reproduces the vector', () => {
  const c = cases.find((x) => x.name === 'vote-sequence-millis');
  const seed = c.signatures[0].seed_hex;
  const vote = makeVote(
    { assertionHash: c.record.vote.assertion_hash, weight: -0.5, sequence: 1764633600123 },
    seed,
  );
  assert.deepEqual(vote, c.record);
});
