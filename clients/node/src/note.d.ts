// Type declarations of note.js: C2SP signed notes and checkpoints (ed25519).

export const ALG_ED25519: number;
export const NOTE_SIGNATURES_MAX: number;
export const NOTE_BYTES_MAX: number;

/** Base class of the note errors. */
export class NoteError extends Error {
  constructor(message: string);
}
/** A signer or verifier key that does not parse, or whose key id does not match. */
export class MalformedKey extends NoteError {}
/** A note that breaks the signed-note syntax or a bound. */
export class MalformedNote extends NoteError {}
/** A note text that is not a well-formed checkpoint. */
export class MalformedCheckpoint extends NoteError {}
/** No valid signature by the trusted key, or a bad one by it, or the wrong origin. */
export class NoteNotVerified extends NoteError {}

export interface Verifier {
  name: string;
  id: number;
  publicKey: Buffer;
  verify(msg: Uint8Array, sig: Uint8Array): boolean;
  /** The verifier key text, `name+id+base64`. */
  encode(): string;
}

export interface Signer {
  name: string;
  id: number;
  verifier: Verifier;
  sign(msg: Uint8Array): Buffer;
  /** The signer key text (secret), `PRIVATE+KEY+name+id+base64`. */
  encode(): string;
}

export interface NoteSignature {
  name: string;
  id: number;
  signature: Buffer;
  line: string;
}

export interface OpenedNote {
  text: string;
  signatures: NoteSignature[];
  unverified: NoteSignature[];
}

export interface Checkpoint {
  origin: string;
  treeSize: bigint;
  rootHash: Buffer;
  extensions: string[];
}

/** The 32-bit key id of an ed25519 public key under a name. */
export function keyId(name: string, publicKey: Uint8Array): number;
export function parseVerifierKey(text: string): Verifier;
export function makeVerifier(name: string, publicKey: Uint8Array): Verifier;
export function parseSignerKey(text: string): Signer;
export function makeSigner(name: string, seed: Uint8Array): Signer;
/** The signed note of `text` (ending in a newline) by each of `signers`. */
export function signNote(text: string, signers: Signer[]): string;
/** Verifies a note against the verifiers; throws a NoteError when none signed it validly. */
export function openNote(msg: string | Uint8Array, verifiers: Verifier[]): OpenedNote;
export function parseCheckpoint(text: string): Checkpoint;
/** The note text of a checkpoint. */
export function checkpointBody(checkpoint: {
  origin: string;
  treeSize: bigint | number;
  rootHash: Uint8Array;
  extensions?: string[];
}): string;
/** Verifies a signed checkpoint with the log's verifier (or verifier key text) and parses it. */
export function openCheckpoint(msg: string | Uint8Array, verifier: Verifier | string, origin?: string): Checkpoint;
