// Run in the explorer's page by tests/gateway/test_explorer.py (Selenium's execute_async_script):
// StemeVerify (services/gateway/static/explorer.js) against the project's vectors
// (tests/vectors/merkle.json) and the live gateway's answers, untouched and tampered.
// arguments[0] = {tree, notes, lsn}; the last argument is Selenium's callback.

const [vectors, done] = [arguments[0], arguments[arguments.length - 1]];
(async () => {
  const V = StemeVerify, out = {};
  const hex = V.hexToBytes, flip = (h) => (parseInt(h[0], 16) ^ 1).toString(16) + h.slice(1);
  const t = vectors.tree;
  out.paths = [];
  for (const p of t.inclusion) {
    const leaf = hex(t.leaf_hashes[p.leaf_index]);
    const root = V.bytesToHex(await V.rootFromInclusion(p.leaf_index, p.tree_size, leaf, p.hashes.map(hex)));
    let flipped = null;
    if (p.hashes.length) {
      const bad = p.hashes.map((h, i) => hex(i === 0 ? flip(h) : h));
      flipped = V.bytesToHex(await V.rootFromInclusion(p.leaf_index, p.tree_size, leaf, bad));
    }
    out.paths.push({ ok: root === t.roots[p.tree_size], flipped_ok: flipped === t.roots[p.tree_size], n: p.hashes.length });
  }
  const n = vectors.notes.go_sumdb_note;
  const key = await V.parseVerifierKey(n.verifier_key);
  out.note = (await V.verifyNoteSignature(V.parseNote(n.text + "\n" + n.signature_line), key)).state;
  const at = n.signature_line.length - 20, c = n.signature_line[at];  // a byte of the signature
  const badSig = n.signature_line.slice(0, at) + (c === "A" ? "B" : "A") + n.signature_line.slice(at + 1);
  out.note_flipped = (await V.verifyNoteSignature(V.parseNote(n.text + "\n" + badSig), key)).state;
  out.note_other_key = (await V.verifyNoteSignature(V.parseNote(n.text + "\n" + n.signature_line),
    await V.parseVerifierKey(n.other_verifier_key))).state;

  const get = async (path) => (await fetch(path)).json();
  const cp = await get("/v1/checkpoint");
  const size = cp.checkpoint.split("\n")[1];
  const proof = await get(`/v1/proofs/inclusion?lsn=${vectors.lsn}&tree_size=${size}`);
  out.live = await V.checkInclusion(cp.checkpoint, cp.verifier_key, vectors.lsn, proof);
  out.live_flipped = await V.checkInclusion(cp.checkpoint, cp.verifier_key, vectors.lsn,
    { ...proof, hashes: proof.hashes.map((h, i) => (i === 0 ? flip(h) : h)) });
  const leaf = proof.leaf;
  out.live_leaf = await V.checkInclusion(cp.checkpoint, cp.verifier_key, vectors.lsn,
    { ...proof, leaf: leaf.slice(0, 60) + flip(leaf.slice(60)) });
  out.live_lsn = await V.checkInclusion(cp.checkpoint, cp.verifier_key, vectors.lsn + 1, proof);
  const other = vectors.notes.log;  // a checkpoint signed by another log key
  out.live_other_key = await V.checkInclusion(cp.checkpoint, other.verifier_key, vectors.lsn, proof);
  const lines = cp.checkpoint.split("\n");
  lines[2] = btoa(String.fromCharCode(...new Uint8Array(32)));  // another root, same signature
  out.live_other_root = await V.checkInclusion(lines.join("\n"), cp.verifier_key, vectors.lsn, proof);
  return out;
})().then(done, (err) => done({ error: String(err && err.stack || err) }));
