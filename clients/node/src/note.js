// C2SP signed notes (https://c2sp.org/signed-note) and transparency log checkpoints
// (c2sp.org/tlog-checkpoint), with the key formats of Go's golang.org/x/mod/sumdb/note and
// ed25519 (signature type 0x01). The Python twin is stemedb.note; docs/verifiable-log.md is the
// spec, and tests/vectors/merkle.json holds the known answers both are tested against.
//
//   signer key    PRIVATE+KEY+<name>+<8 hex key id>+<base64(0x01 || 32-byte seed)>
//   verifier key  <name>+<8 hex key id>+<base64(0x01 || 32-byte public key)>
//   key id        SHA-256(name || 0x0A || 0x01 || public key)[:4], big-endian
//   signed note   text ending in "\n", a blank line, then lines "— <name> <base64(id || sig)>"
//
// Opening follows the spec and Go's note.Open: signatures by unknown keys are ignored, a failing
// signature by a known key rejects the whole note, and a note without a verified signature is
// rejected. Every refusal throws a NoteError subclass naming the problem.

import { createHash, createPrivateKey, createPublicKey, sign as edSign, verify as edVerify } from 'node:crypto';

import { publicKeyFromSeed } from './canonical.js';

export const ALG_ED25519 = 0x01;
/** At most this many signature lines are read (the spec asks for at least 16; Go stops at 100). */
export const NOTE_SIGNATURES_MAX = 100;
/** A note longer than this many bytes is refused before it is parsed. */
export const NOTE_BYTES_MAX = 1 << 20;

const SIG_PREFIX = '\u2014 ';
const HEX8 = /^[0-9a-f]{8}$/;
const SIZE = /^(0|[1-9][0-9]*)$/;
const B64 = /^[A-Za-z0-9+/]*={0,2}$/;
// Control characters other than newline.
const FORBIDDEN = /[\u0000-\u0009\u000b-\u001f]/;

/** Base class of the note errors. */
export class NoteError extends Error {
  constructor(message) {
    super(message);
    this.name = this.constructor.name;
  }
}
/** A signer or verifier key that does not parse, or whose key id does not match. */
export class MalformedKey extends NoteError {}
/** A note that breaks the signed-note syntax or a bound. */
export class MalformedNote extends NoteError {}
/** A note text that is not a well-formed checkpoint. */
export class MalformedCheckpoint extends NoteError {}
/** No valid signature by the trusted key, or a bad one by it, or the wrong origin. */
export class NoteNotVerified extends NoteError {}

function validName(name) {
  // Unicode White_Space, as Go's unicode.IsSpace (JS's \s differs: it has U+FEFF, lacks U+0085).
  return name.length > 0 && !name.includes('+') && !/\p{White_Space}/u.test(name) && !FORBIDDEN.test(name);
}

/** The 32-bit key id of an ed25519 public key under a name. */
export function keyId(name, publicKey) {
  const h = createHash('sha256')
    .update(Buffer.from(name, 'utf8'))
    .update(Buffer.from([0x0a, ALG_ED25519]))
    .update(publicKey)
    .digest();
  return h.readUInt32BE(0);
}

function b64decode(text, what, ErrorClass) {
  if (!B64.test(text) || text.length % 4 !== 0) {
    throw new ErrorClass(`${what} is not valid base64`);
  }
  const raw = Buffer.from(text, 'base64');
  // Only the canonical encoding is accepted, so one value has one spelling.
  if (raw.toString('base64') !== text) throw new ErrorClass(`${what} is not canonical base64`);
  return raw;
}

function splitKey(text, parts, what) {
  if (typeof text !== 'string') throw new MalformedKey(`${what} must be text`);
  // The base64 key data may itself hold '+': split only at the first parts - 1 of them.
  const fields = [];
  let rest = text;
  for (let i = 0; i < parts - 1; i++) {
    const at = rest.indexOf('+');
    if (at < 0) break;
    fields.push(rest.slice(0, at));
    rest = rest.slice(at + 1);
  }
  fields.push(rest);
  if (fields.length !== parts) {
    throw new MalformedKey(`${what} must have ${parts} '+'-separated fields, got ${fields.length}`);
  }
  return fields;
}

function keyParts(name, idHex, b64, what) {
  if (!validName(name)) throw new MalformedKey(`${what}: invalid key name ${JSON.stringify(name)}`);
  if (!HEX8.test(idHex)) throw new MalformedKey(`${what}: key id must be 8 lowercase hex digits`);
  const raw = b64decode(b64, `${what} key data`, MalformedKey);
  if (raw.length !== 33) throw new MalformedKey(`${what}: key data must be 33 bytes, got ${raw.length}`);
  if (raw[0] !== ALG_ED25519) {
    throw new MalformedKey(`${what}: unknown signature type 0x${raw[0].toString(16).padStart(2, '0')}`);
  }
  return { id: Number.parseInt(idHex, 16), key: raw.subarray(1) };
}

function jwkPublic(publicKey) {
  return createPublicKey({
    key: { kty: 'OKP', crv: 'Ed25519', x: Buffer.from(publicKey).toString('base64url') },
    format: 'jwk',
  });
}

/**
 * A verifier from its C2SP verifier key text.
 * @returns {{name: string, id: number, publicKey: Buffer, verify: (msg: Buffer, sig: Buffer) => boolean, encode: () => string}}
 */
export function parseVerifierKey(text) {
  const [name, idHex, b64] = splitKey(text, 3, 'verifier key');
  const { id, key } = keyParts(name, idHex, b64, 'verifier key');
  const v = makeVerifier(name, key);
  if (v.id !== id) throw new MalformedKey(`verifier key: key id ${idHex} does not match the key`);
  return v;
}

/** A verifier for a raw 32-byte ed25519 public key under a name. */
export function makeVerifier(name, publicKey) {
  if (!validName(name)) throw new MalformedKey(`invalid key name ${JSON.stringify(name)}`);
  const pub = Buffer.from(publicKey);
  if (pub.length !== 32) throw new MalformedKey(`public key must be 32 bytes, got ${pub.length}`);
  const id = keyId(name, pub);
  let keyObject;
  return {
    name,
    id,
    publicKey: pub,
    verify(msg, sig) {
      if (sig.length !== 64) return false;
      try {
        keyObject ??= jwkPublic(pub);
        return edVerify(null, msg, keyObject, sig);
      } catch {
        return false; // not a valid curve point
      }
    },
    encode() {
      const data = Buffer.concat([Buffer.from([ALG_ED25519]), pub]).toString('base64');
      return `${name}+${id.toString(16).padStart(8, '0')}+${data}`;
    },
  };
}

/** A signer from its signer key text (keep it secret). */
export function parseSignerKey(text) {
  const [priv, key, name, idHex, b64] = splitKey(text, 5, 'signer key');
  if (priv !== 'PRIVATE' || key !== 'KEY') throw new MalformedKey('signer key must start with PRIVATE+KEY+');
  const parts = keyParts(name, idHex, b64, 'signer key');
  const s = makeSigner(name, parts.key);
  if (s.id !== parts.id) throw new MalformedKey(`signer key: key id ${idHex} does not match the key`);
  return s;
}

/** A signer for a raw 32-byte ed25519 seed under a name. */
export function makeSigner(name, seed) {
  const d = Buffer.from(seed);
  if (d.length !== 32) throw new MalformedKey(`ed25519 seed must be 32 bytes, got ${d.length}`);
  const verifier = makeVerifier(name, publicKeyFromSeed(d));
  const keyObject = createPrivateKey({
    key: { kty: 'OKP', crv: 'Ed25519', d: d.toString('base64url'), x: verifier.publicKey.toString('base64url') },
    format: 'jwk',
  });
  return {
    name,
    id: verifier.id,
    verifier,
    sign: (msg) => edSign(null, msg, keyObject),
    encode() {
      const data = Buffer.concat([Buffer.from([ALG_ED25519]), d]).toString('base64');
      return `PRIVATE+KEY+${name}+${verifier.id.toString(16).padStart(8, '0')}+${data}`;
    },
  };
}

function checkText(text, what) {
  const bad = FORBIDDEN.exec(text);
  if (bad) {
    const code = bad[0].charCodeAt(0).toString(16).toUpperCase().padStart(4, '0');
    throw new MalformedNote(`${what} contains control character U+${code} at index ${bad.index}`);
  }
  if (!text.isWellFormed()) throw new MalformedNote(`${what} is not valid UTF-8 (lone surrogate)`);
}

/** The signed note of `text` (ending in a newline) by each of `signers`. */
export function signNote(text, signers) {
  if (typeof text !== 'string' || !text.endsWith('\n')) throw new MalformedNote('note text must end with a newline');
  checkText(text, 'note text');
  if (!signers.length) throw new MalformedNote('a signed note needs at least one signer');
  const msg = Buffer.from(text, 'utf8');
  const lines = signers.map((s) => {
    const id = Buffer.alloc(4);
    id.writeUInt32BE(s.id);
    return `${SIG_PREFIX}${s.name} ${Buffer.concat([id, s.sign(msg)]).toString('base64')}\n`;
  });
  return `${text}\n${lines.join('')}`;
}

function decode(msg) {
  if (typeof msg === 'string') {
    if (Buffer.byteLength(msg, 'utf8') > NOTE_BYTES_MAX) throw new MalformedNote(`note is more than ${NOTE_BYTES_MAX} bytes`);
    return msg;
  }
  if (msg instanceof Uint8Array) {
    if (msg.length > NOTE_BYTES_MAX) throw new MalformedNote(`note is ${msg.length} bytes, more than ${NOTE_BYTES_MAX}`);
    try {
      return new TextDecoder('utf-8', { fatal: true, ignoreBOM: true }).decode(msg);
    } catch {
      throw new MalformedNote('note is not valid UTF-8');
    }
  }
  throw new MalformedNote(`a note is text, got ${typeof msg}`);
}

function parseSignatureLine(line, number) {
  if (!line.startsWith(SIG_PREFIX)) {
    throw new MalformedNote(`signature line ${number} does not start with an em dash and a space`);
  }
  const rest = line.slice(SIG_PREFIX.length);
  const at = rest.indexOf(' ');
  const name = at < 0 ? rest : rest.slice(0, at);
  const b64 = at < 0 ? '' : rest.slice(at + 1);
  if (at < 0 || !validName(name) || !b64) throw new MalformedNote(`signature line ${number} is not '— <name> <base64>'`);
  const raw = b64decode(b64, `signature line ${number}`, MalformedNote);
  if (raw.length < 5) throw new MalformedNote(`signature line ${number} holds ${raw.length} bytes, fewer than 5`);
  return { name, id: raw.readUInt32BE(0), signature: raw.subarray(4), line };
}

/**
 * Parses a signed note and verifies it with the known verifiers.
 * @returns {{text: string, signatures: object[], unverified: object[]}}
 */
export function openNote(msg, verifiers) {
  const all = decode(msg);
  checkText(all, 'note');
  const split = all.lastIndexOf('\n\n');
  if (split < 0) throw new MalformedNote('note has no blank line before its signatures');
  const text = all.slice(0, split + 1);
  const block = all.slice(split + 2);
  if (!block || !block.endsWith('\n')) throw new MalformedNote('note has no signature lines, or its last line has no newline');
  const lines = block.slice(0, -1).split('\n');
  if (lines.length > NOTE_SIGNATURES_MAX) throw new MalformedNote(`note has ${lines.length} signatures, more than ${NOTE_SIGNATURES_MAX}`);
  const known = new Map();
  for (const v of verifiers) {
    const k = `${v.name}+${v.id}`;
    if (known.has(k) && !known.get(k).publicKey.equals(v.publicKey)) throw new NoteNotVerified(`ambiguous key ${k}`);
    known.set(k, v);
  }
  const message = Buffer.from(text, 'utf8');
  const signatures = [];
  const unverified = [];
  const seen = new Set();
  lines.forEach((line, i) => {
    const sig = parseSignatureLine(line, i + 1);
    const k = `${sig.name}+${sig.id}`;
    const v = known.get(k);
    if (!v) {
      if (!unverified.some((u) => u.line === line)) unverified.push(sig);
      return;
    }
    if (seen.has(k)) return;
    seen.add(k);
    if (!v.verify(message, sig.signature)) {
      throw new NoteNotVerified(`invalid signature for key ${sig.name}+${sig.id.toString(16).padStart(8, '0')}`);
    }
    signatures.push(sig);
  });
  if (!signatures.length) throw new NoteNotVerified('note has no signature by a known key');
  return { text, signatures, unverified };
}

/**
 * Parses a checkpoint's note text.
 * @returns {{origin: string, treeSize: bigint, rootHash: Buffer, extensions: string[]}}
 */
export function parseCheckpoint(text) {
  if (!text.endsWith('\n')) throw new MalformedCheckpoint('checkpoint text must end with a newline');
  const lines = text.slice(0, -1).split('\n');
  if (lines.length < 3) throw new MalformedCheckpoint(`checkpoint has ${lines.length} lines, needs at least 3`);
  const [origin, size, rootB64, ...extensions] = lines;
  if (!origin) throw new MalformedCheckpoint('checkpoint origin line is empty');
  if (!SIZE.test(size) || size.length > 20) throw new MalformedCheckpoint('tree size line is not a decimal without leading zeros');
  const treeSize = BigInt(size);
  if (treeSize >= 1n << 64n) throw new MalformedCheckpoint(`tree size ${size} is beyond 2**64 - 1`);
  const rootHash = b64decode(rootB64, 'root hash line', MalformedCheckpoint);
  if (rootHash.length !== 32) throw new MalformedCheckpoint(`root hash is ${rootHash.length} bytes, expected 32`);
  if (extensions.some((e) => !e)) throw new MalformedCheckpoint('checkpoint extension lines must be non-empty');
  return { origin, treeSize, rootHash, extensions };
}

/** The note text of a checkpoint. */
export function checkpointBody({ origin, treeSize, rootHash, extensions = [] }) {
  const root = Buffer.from(rootHash).toString('base64');
  return [origin, String(treeSize), root, ...extensions].map((l) => `${l}\n`).join('');
}

/**
 * Verifies a signed checkpoint with the log's verifier (or verifier key text) and parses it.
 * The origin line must equal `origin`, by default the key's name (the log's key name is its
 * origin).
 */
export function openCheckpoint(msg, verifier, origin = undefined) {
  const v = typeof verifier === 'string' ? parseVerifierKey(verifier) : verifier;
  const n = openNote(msg, [v]);
  const cp = parseCheckpoint(n.text);
  const expected = origin ?? v.name;
  if (cp.origin !== expected) throw new NoteNotVerified(`checkpoint origin ${JSON.stringify(cp.origin)} is not ${JSON.stringify(expected)}`);
  return cp;
}
