// The StemeDB explorer: plain JavaScript over the gateway's /v1 routes. No framework, no CDN.
"use strict";

// The explorer's check of a record's inclusion in the verifiable log (DESIGN section 13), in the
// browser: RFC 6962 hashing with SHA-256 (crypto.subtle), RFC 9162's inclusion-proof algorithm
// (section 2.1.3.2), and the C2SP signed note's ed25519 signature (WebCrypto's Ed25519, when the
// browser has it). The Python twin is stemedb.merkle / stemedb.note, the Node.js one
// clients/node/src/merkle.js; docs/verifiable-log.md is the spec.
//
// What the browser does not do: recompute the leaf from the record (that needs the canonical
// encoder; `stemedb verify HASH` and the clients do it). It takes the leaf bytes the gateway
// computed, checks that they carry the record's LSN and end with the record's signatures, and
// hashes them itself.
const StemeVerify = (() => {
  const LEAF_TAG = new TextEncoder().encode("stemedb.v1.Leaf\0");
  const PROOF_HASHES_MAX = 64;

  function hexToBytes(hex) {
    if (typeof hex !== "string" || hex.length % 2 !== 0 || !/^[0-9a-fA-F]*$/.test(hex)) {
      throw new Error(`not hex: ${String(hex).slice(0, 20)}`);
    }
    const out = new Uint8Array(hex.length / 2);
    for (let i = 0; i < out.length; i++) out[i] = parseInt(hex.substr(2 * i, 2), 16);
    return out;
  }
  function bytesToHex(bytes) {
    return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
  }
  function b64ToBytes(text) {
    const bin = atob(text);
    return Uint8Array.from(bin, (c) => c.charCodeAt(0));
  }
  function concat(...parts) {
    const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
    let at = 0;
    for (const p of parts) { out.set(p, at); at += p.length; }
    return out;
  }
  function equal(a, b) {
    if (a.length !== b.length) return false;
    let diff = 0;
    for (let i = 0; i < a.length; i++) diff |= a[i] ^ b[i];
    return diff === 0;
  }
  function u32(n) { return Uint8Array.of(n >>> 24, (n >>> 16) & 255, (n >>> 8) & 255, n & 255); }
  function u64(n) {
    const out = new Uint8Array(8);
    let v = BigInt(n);
    for (let i = 7; i >= 0; i--) { out[i] = Number(v & 255n); v >>= 8n; }
    return out;
  }

  async function sha256(bytes) { return new Uint8Array(await crypto.subtle.digest("SHA-256", bytes)); }
  const leafHash = (leaf) => sha256(concat(Uint8Array.of(0), leaf));
  const nodeHash = (left, right) => sha256(concat(Uint8Array.of(1), left, right));

  // RFC 9162 2.1.3.2: the root the audit path leads to from leaf `index` of a tree of `size`.
  async function rootFromInclusion(index, size, leaf, proof) {
    let fn = BigInt(index);
    let sn = BigInt(size) - 1n;
    if (fn > sn) throw new Error(`leaf index ${index} is not in a tree of size ${size}`);
    if (proof.length > PROOF_HASHES_MAX) throw new Error(`the proof has ${proof.length} hashes, more than ${PROOF_HASHES_MAX}`);
    let r = leaf;
    for (const p of proof) {
      if (p.length !== 32) throw new Error("a proof hash is not 32 bytes");
      if (sn === 0n) throw new Error("the proof is longer than the tree is deep");
      if ((fn & 1n) === 1n || fn === sn) {
        r = await nodeHash(p, r);
        if ((fn & 1n) === 0n) {
          while ((fn & 1n) === 0n && fn !== 0n) { fn >>= 1n; sn >>= 1n; }
        }
      } else {
        r = await nodeHash(r, p);
      }
      fn >>= 1n; sn >>= 1n;
    }
    if (sn !== 0n) throw new Error("the proof is shorter than the tree is deep");
    return r;
  }

  // c2sp.org/signed-note verifier key: <name>+<8 hex key id>+<base64 of 0x01 || public key>.
  async function parseVerifierKey(text) {
    // The name holds no "+"; the base64 may.
    const m = /^([^+\s]+)\+([0-9a-f]{8})\+([A-Za-z0-9+/]+=*)$/.exec(String(text));
    if (!m) throw new Error("malformed verifier key");
    const [, name, idHex, b64] = m;
    const raw = b64ToBytes(b64);
    if (raw.length !== 33 || raw[0] !== 1) throw new Error("the verifier key is not an ed25519 key");
    const id = (await sha256(concat(new TextEncoder().encode(name + "\n"), raw))).slice(0, 4);
    if (bytesToHex(id) !== idHex) throw new Error("the verifier key's id does not match its key");
    return { name, id, publicKey: raw.slice(1) };
  }

  // c2sp.org/signed-note: the body, a blank line, then the signature lines
  // "— <name> <base64 of key id || signature>". A checkpoint's body (c2sp.org/tlog-checkpoint)
  // is its origin, tree size and base64 root hash, a line each.
  function parseNote(text) {
    const cut = text.lastIndexOf("\n\n");
    if (cut < 0 || !text.endsWith("\n")) throw new Error("the checkpoint is not a signed note");
    const body = text.slice(0, cut + 1);
    const sigs = text.slice(cut + 2, -1).split("\n").map((line) => {
      const m = /^\u2014 (\S+) (\S+)$/.exec(line);
      if (!m) throw new Error("malformed signature line in the checkpoint");
      return { name: m[1], raw: b64ToBytes(m[2]) };
    });
    return { body, sigs };
  }

  function parseCheckpoint(text) {
    const note = parseNote(text);
    const lines = note.body.split("\n");
    if (lines.length < 4 || !/^(0|[1-9][0-9]*)$/.test(lines[1])) throw new Error("malformed checkpoint body");
    const root = b64ToBytes(lines[2]);
    if (root.length !== 32) throw new Error("the checkpoint's root hash is not 32 bytes");
    return { ...note, origin: lines[0], size: BigInt(lines[1]), root };
  }

  // "verified", "failed" or "unsupported" (a browser without WebCrypto Ed25519).
  async function verifyNoteSignature(note, key) {
    const sig = note.sigs.find((s) => s.name === key.name && s.raw.length === 68 && equal(s.raw.slice(0, 4), key.id));
    if (!sig) return { state: "failed", reason: `no signature by ${key.name} on the checkpoint` };
    let publicKey;
    try {
      publicKey = await crypto.subtle.importKey("raw", key.publicKey, { name: "Ed25519" }, false, ["verify"]);
    } catch (err) {
      return { state: "unsupported", reason: `this browser cannot check ed25519 signatures (${err.name})` };
    }
    const ok = await crypto.subtle.verify({ name: "Ed25519" }, publicKey, sig.raw.slice(4), new TextEncoder().encode(note.body));
    return ok ? { state: "verified", reason: `signed by ${key.name}` } : { state: "failed", reason: "the checkpoint's signature does not verify" };
  }

  // The leaf must carry the record's LSN and end with its signatures (u32 count, then each
  // 32-byte public key and u32-length-prefixed signature), in the record's order.
  function checkLeaf(leaf, lsn, signatures) {
    if (!equal(leaf.slice(0, 16), LEAF_TAG)) throw new Error("the leaf does not start with the stemedb.v1.Leaf tag");
    if (!equal(leaf.slice(16, 24), u64(lsn))) throw new Error(`the leaf is not of LSN ${lsn}`);
    const tail = [u32(signatures.length)];
    for (const s of signatures) {
      const sig = hexToBytes(s.signature);
      tail.push(hexToBytes(s.public_key), u32(sig.length), sig);
    }
    const end = concat(...tail);
    if (leaf.length < 24 + end.length || !equal(leaf.slice(leaf.length - end.length), end)) {
      throw new Error("the leaf does not end with the record's signatures");
    }
  }

  function signaturesOf(record) {
    if (record.vote) return [{ public_key: record.vote.agent_id || "", signature: record.vote.signature || "" }];
    const body = record.assertion || record.epoch || {};
    return body.signatures || [];
  }

  // Check an inclusion proof (the gateway's /v1/proofs/inclusion answer) against a signed
  // checkpoint (its /v1/checkpoint answer, or a pinned one). Returns
  // {merkle: bool, signature: "verified"|"failed"|"unsupported", ok: bool, reason, size, root};
  // ok means both the audit path and the checkpoint's signature verified.
  async function checkInclusion(checkpointText, verifierKey, lsn, proof) {
    let note;
    let key;
    try {
      key = await parseVerifierKey(verifierKey);
      note = parseCheckpoint(checkpointText);
    } catch (err) {
      return { ok: false, merkle: false, signature: "failed", reason: err.message };
    }
    const signature = await verifyNoteSignature(note, key);
    const out = { merkle: false, signature: signature.state, size: note.size.toString(), root: bytesToHex(note.root) };
    try {
      if (note.origin !== key.name) throw new Error(`the checkpoint's origin ${note.origin} is not the key's name ${key.name}`);
      if (BigInt(proof.tree_size) !== note.size) throw new Error(`the proof is for tree size ${proof.tree_size}, the checkpoint is of size ${note.size}`);
      if (BigInt(proof.leaf_index) !== BigInt(lsn) - 1n) throw new Error(`the proof is of leaf ${proof.leaf_index}, not of LSN ${lsn}`);
      const leaf = hexToBytes(proof.leaf);
      checkLeaf(leaf, lsn, proof.record ? signaturesOf(proof.record) : []);
      const root = await rootFromInclusion(proof.leaf_index, proof.tree_size, await leafHash(leaf), proof.hashes.map(hexToBytes));
      if (!equal(root, note.root)) throw new Error("the audit path does not lead to the checkpoint's root");
      out.merkle = true;
    } catch (err) {
      return { ...out, ok: false, reason: err.message };
    }
    // ok only when both hold; a browser without Ed25519 leaves the signature to the CLI.
    return { ...out, ok: signature.state === "verified", reason: signature.reason };
  }

  return { hexToBytes, bytesToHex, sha256, leafHash, nodeHash, rootFromInclusion, parseVerifierKey, parseNote, parseCheckpoint, verifyNoteSignature, checkInclusion };
})();


const PAGES_MAX = 20; // a subject's predicates, 100 per page: at most 2,000 shown
const $ = (sel) => document.querySelector(sel);

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === "class") node.className = v;
    else if (k === "text") node.textContent = v;
    else if (k.startsWith("on")) node.addEventListener(k.slice(2), v);
    else node.setAttribute(k, v);
  }
  for (const c of children) node.append(c instanceof Node ? c : document.createTextNode(String(c)));
  return node;
}

class ApiError extends Error {
  constructor(status, problem) {
    super(problem.detail || problem.title || `HTTP ${status}`);
    this.status = status;
    this.problem = problem;
  }
}

async function api(path) {
  let resp;
  try {
    resp = await fetch(path, { headers: { Accept: "application/json" } });
  } catch (err) {
    throw new ApiError(0, { title: "gateway unreachable", detail: "The gateway did not answer: " + err.message });
  }
  const text = await resp.text();
  let body = {};
  try { body = text ? JSON.parse(text) : {}; } catch { body = { detail: text }; }
  if (!resp.ok) throw new ApiError(resp.status, body);
  return body;
}

function short(hex) { return hex ? hex.slice(0, 12) + "…" : ""; }
function fmt(x) { return (x === null || x === undefined) ? "–" : Number(x).toFixed(3).replace(/\.?0+$/, "") || "0"; }
function statusName(s) { return (s || "").replace("STATUS_", ""); }

function valueText(obj) {
  if (!obj) return "";
  if ("text" in obj) return obj.text;
  if ("number" in obj) return String(obj.number);
  if ("flag" in obj) return obj.flag ? "true" : "false";
  if ("blob" in obj) return `<${obj.blob.length / 2} bytes>`;
  if ("ref" in obj) return "→ " + short(obj.ref);
  return "";
}

function showMessage(kind, text) {
  const m = $("#message");
  m.className = "message " + kind;
  m.textContent = text;
  m.hidden = false;
}
function clearMessage() { $("#message").hidden = true; }

function explainError(err, what) {
  if (err.status === 0) return err.message;
  const p = err.problem || {};
  if (err.status === 503 || err.status === 504 || err.status === 501) {
    const who = p.backend === "store" ? "The store (ingestor)" : p.backend ? `The ${p.backend}` : "A backend";
    return `${who} is not answering, so ${what} cannot be shown right now. (${err.message})`;
  }
  return `${what}: ${err.message}`;
}

function readHash() {
  const params = new URLSearchParams(location.hash.slice(1));
  return { subject: params.get("subject") || "", lens: params.get("lens") || "consensus", record: params.get("record") || "" };
}
function writeHash(state) {
  const params = new URLSearchParams();
  if (state.subject) params.set("subject", state.subject);
  if (state.lens) params.set("lens", state.lens);
  if (state.record) params.set("record", state.record);
  const next = "#" + params.toString();
  if (location.hash !== next) history.pushState(null, "", next);
}

const recordCache = new Map();
async function record(hash) {
  if (!recordCache.has(hash)) recordCache.set(hash, api(`/v1/records/${hash}`).catch((e) => { recordCache.delete(hash); throw e; }));
  return recordCache.get(hash);
}

async function search(state) {
  clearMessage();
  $("#intro").hidden = true;
  $("#record").hidden = true;
  const results = $("#results");
  const slots = $("#slots");
  slots.replaceChildren();
  results.hidden = true;
  const resolutions = [];
  let token = "";
  let applied = 0;
  try {
    for (let i = 0; i < PAGES_MAX; i++) {
      const q = new URLSearchParams({ lens: state.lens });
      if (token) q.set("page_token", token);
      const page = await api(`/v1/subjects/${encodeURIComponent(state.subject)}?${q}`);
      resolutions.push(...page.resolutions);
      applied = page.applied_lsn;
      token = page.next_page_token;
      if (!token) break;
    }
  } catch (err) {
    showMessage("error", explainError(err, `the facts about “${state.subject}”`));
    return;
  }
  if (resolutions.length === 0) {
    showMessage("info", `No facts about “${state.subject}” yet (the store has applied the log up to LSN ${applied}). Check the spelling: subjects are exact.`);
    return;
  }
  $("#results-title").textContent = state.subject;
  $("#results-meta").textContent = `${resolutions.length} predicate${resolutions.length === 1 ? "" : "s"} through the ${state.lens} lens, as of LSN ${applied}`;
  results.hidden = false;
  for (const r of resolutions) slots.append(slotCard(r, state));
  if (state.record) openRecord(state.record, state);
}

function slotCard(r, state) {
  const status = statusName(r.status);
  const winnerHash = r.winner ? r.winner.hash : "";
  const winnerText = r.winner ? valueText(r.winner.assertion.object) : (status === "EMPTY" ? "no candidate" : "no winner");
  const head = el("div", { class: "slot-head" },
    el("span", { class: "predicate", text: r.predicate }),
    el("span", { class: "status " + status, text: status }),
    el("span", { class: "winner", text: winnerText }),
    el("span", { class: "score", text: "score " + fmt(r.score) }));
  const rows = r.candidates.map((c) => candidateRow(c, winnerHash, state));
  const table = el("table", { class: "candidates" },
    el("thead", {}, el("tr", {},
      el("th", { text: "candidate" }), el("th", { text: "value" }), el("th", { class: "num", text: "score" }),
      el("th", { class: "num", text: "support" }), el("th", { class: "num", text: "dispute" }),
      el("th", { class: "num", text: "supporters" }), el("th", { class: "num", text: "disputers" }),
      el("th", { class: "num", text: "votes" }), el("th", { text: "" }))),
    el("tbody", {}, ...rows));
  const more = r.candidates_total > r.candidates.length
    ? el("p", { class: "muted", text: `${r.candidates_total - r.candidates.length} more candidates not listed` }) : "";
  return el("article", { class: "slot", "data-predicate": r.predicate, "data-status": status }, head, table, more);
}

function candidateRow(c, winnerHash, state) {
  const value = el("td", { class: "value", text: "…" });
  record(c.assertion_hash).then((rec) => { value.textContent = valueText(rec.record.assertion.object); })
    .catch(() => { value.textContent = "(unavailable)"; });
  const flags = el("td", { class: "flag" });
  if (c.assertion_hash === winnerHash) flags.append(el("span", { class: "tag win", text: "winner" }));
  if (c.retired) flags.append(el("span", { class: "tag retired", text: "retired" }));
  else if (c.qualified === false) flags.append(el("span", { class: "tag", text: "does not qualify" }));
  const link = el("a", { href: "#", class: "hash", text: short(c.assertion_hash), title: c.assertion_hash,
    onclick: (ev) => { ev.preventDefault(); state.record = c.assertion_hash; writeHash(state); openRecord(c.assertion_hash, state); } });
  const cls = "candidate" + (c.retired ? " retired" : "") + (c.qualified === false && !c.retired ? " unqualified" : "");
  return el("tr", { class: cls, "data-hash": c.assertion_hash },
    el("td", {}, link), value, el("td", { class: "num", text: fmt(c.score) }),
    el("td", { class: "num support", text: fmt(c.support) }), el("td", { class: "num dispute", text: fmt(c.dispute) }),
    el("td", { class: "num", text: c.supporters ?? 0 }), el("td", { class: "num", text: c.disputers ?? 0 }),
    el("td", { class: "num", text: c.votes ?? 0 }), flags);
}

function dl(pairs) {
  const list = el("dl");
  for (const [k, v] of pairs) list.append(el("dt", { text: k }), el("dd", {}, v));
  return list;
}

function hashLink(hex, state) {
  if (!hex) return "–";
  return el("a", { href: "#", class: "hash", text: hex, onclick: (ev) => { ev.preventDefault(); state.record = hex; writeHash(state); openRecord(hex, state); } });
}

async function openRecord(hash, state) {
  const panel = $("#record");
  panel.hidden = false;
  panel.replaceChildren(el("p", { class: "muted", text: "Loading " + hash + "…" }));
  let rec;
  try {
    rec = await record(hash);
  } catch (err) {
    panel.replaceChildren(el("p", { class: "message error", text: err.status === 404 ? `No record ${hash}.` : explainError(err, "this record") }));
    return;
  }
  const close = el("button", { class: "close", text: "close", onclick: () => { panel.hidden = true; state.record = ""; writeHash(state); } });
  const kind = Object.keys(rec.record)[0];
  const body = rec.record[kind];
  const parts = [close, el("h2", { text: kind[0].toUpperCase() + kind.slice(1) + " " + short(hash) }), inclusionBox(hash)];
  if (kind === "assertion") {
    parts.push(dl([
      ["hash", el("code", { text: hash })], ["subject", body.subject], ["predicate", body.predicate],
      ["object", valueText(body.object)], ["confidence", fmt(body.confidence)],
      ["source hash", el("code", { text: body.source_hash })],
      ["epoch", body.epoch ? hashLink(body.epoch, state) : "none"],
      ["signers", signers(body.signatures)],
    ]));
    parts.push(el("h3", { text: "Tally" }), el("div", { id: "record-tally", text: "…" }));
    parts.push(el("h3", { text: "Votes" }), el("div", { id: "record-votes", text: "…" }));
    parts.push(el("h3", { text: `History of ${body.subject} / ${body.predicate} (${state.lens})` }), el("div", { id: "record-history", text: "…" }));
    panel.replaceChildren(...parts);
    fillTally(hash); fillVotes(hash); fillHistory(body.subject, body.predicate, state);
  } else if (kind === "vote") {
    parts.push(dl([["hash", el("code", { text: hash })], ["on assertion", hashLink(body.assertion_hash, state)],
      ["agent", el("code", { text: body.agent_id })], ["weight", fmt(body.weight)], ["sequence", String(body.sequence || 0)]]));
    panel.replaceChildren(...parts);
  } else {
    parts.push(dl([["hash", el("code", { text: hash })], ["name", body.name], ["description", body.description || "–"],
      ["supersedes", body.supersedes ? hashLink(body.supersedes, state) : "nothing"],
      ["how", (body.supersession_type || "").replace("SUPERSESSION_TYPE_", "").toLowerCase()],
      ["signers", signers(body.signatures)]]));
    panel.replaceChildren(...parts);
  }
  panel.scrollIntoView({ behavior: "smooth", block: "start" });
}

// "Check inclusion": the signed checkpoint, the LSN the record was first appended at, and its
// inclusion proof in that checkpoint's tree; verified here (StemeVerify, above), not by the gateway.
function inclusionBox(hash) {
  const result = el("div", { id: "inclusion", class: "inclusion", "aria-live": "polite" });
  const button = el("button", { id: "check-inclusion", type: "button", text: "Check inclusion",
    onclick: () => checkInclusion(hash, result, button) });
  return el("div", { class: "inclusion-box" }, button, result);
}

async function checkInclusion(hash, box, button) {
  button.disabled = true;
  box.className = "inclusion";
  box.replaceChildren(el("span", { class: "muted", text: "Checking…" }));
  try {
    const cp = await api("/v1/checkpoint");
    const size = cp.checkpoint.split("\n")[1];
    const lsns = (await api(`/v1/records/${hash}/lsns?page_size=1`)).lsns;
    if (lsns.length === 0) { showInclusion(box, "failed", "This record is not in the log."); return; }
    const lsn = lsns[0];
    if (BigInt(lsn) > BigInt(size)) {
      showInclusion(box, "pending", `Appended at LSN ${lsn}, after the newest checkpoint (tree size ${size}); try again in a moment.`);
      return;
    }
    const proof = await api(`/v1/proofs/inclusion?lsn=${lsn}&tree_size=${size}`);
    const r = await StemeVerify.checkInclusion(cp.checkpoint, cp.verifier_key, lsn, proof);
    const where = `LSN ${lsn} is leaf ${proof.leaf_index} of the tree of size ${r.size} (root ${short(r.root || "")}), ${proof.hashes.length} hashes.`;
    if (r.ok) {
      showInclusion(box, "verified", `Verified: ${where} The checkpoint is ${r.reason}, key ${cp.verifier_key}.`);
    } else if (r.merkle && r.signature === "unsupported") {
      showInclusion(box, "partial", `Audit path verified: ${where} The checkpoint's signature was not checked: ${r.reason}; check it with \`stemedb verify ${hash}\`.`);
    } else {
      showInclusion(box, "failed", `Failed: ${r.reason}.`);
    }
  } catch (err) {
    showInclusion(box, "failed", explainError(err, "the inclusion proof"));
  } finally {
    button.disabled = false;
  }
}

function showInclusion(box, state, text) {
  box.className = "inclusion " + state;
  box.dataset.state = state;
  const label = { verified: "verified", failed: "failed", partial: "path verified", pending: "not yet" }[state];
  box.replaceChildren(el("span", { class: "tag " + state, text: label }), " ", el("span", { class: "detail", text }));
  box.append(el("p", { class: "muted small", text: "Checked in this browser: SHA-256 of the leaf and the audit path up to the checkpoint's root, and the checkpoint's ed25519 signature. The leaf bytes come from the gateway (the browser has no canonical encoder); `stemedb verify HASH` recomputes them from the record. The verifier key is the gateway's copy: compare it with the one the log's operator publishes." }));
}

function signers(sigs) {
  if (!sigs || sigs.length === 0) return el("span", { class: "muted", text: "unsigned" });
  const list = el("ul", { class: "signers" });
  for (const s of sigs) list.append(el("li", {}, el("code", { text: s.public_key })));
  return list;
}

async function fillTally(hash) {
  const box = $("#record-tally");
  try {
    const t = (await api(`/v1/assertions/${hash}/tally`)).tally;
    box.replaceChildren(dl([["support", fmt(t.support)], ["dispute", fmt(t.dispute)],
      ["supporters", String(t.supporters)], ["disputers", String(t.disputers)], ["counted votes", String(t.votes)], ["score", fmt(t.score)]]));
  } catch (err) { box.textContent = explainError(err, "the tally"); }
}

async function fillVotes(hash) {
  const box = $("#record-votes");
  try {
    const page = await api(`/v1/assertions/${hash}/votes?page_size=100`);
    if (page.votes.length === 0) { box.textContent = "No votes yet."; return; }
    const rows = page.votes.map((v) => el("tr", { class: "vote" }, el("td", {}, el("code", { text: short(v.vote.agent_id) })),
      el("td", { class: "num " + (v.vote.weight < 0 ? "dispute" : "support"), text: fmt(v.vote.weight) }),
      el("td", { class: "num", text: String(v.vote.sequence || 0) })));
    box.replaceChildren(el("table", {}, el("thead", {}, el("tr", {}, el("th", { text: "agent" }), el("th", { class: "num", text: "weight" }), el("th", { class: "num", text: "sequence" }))), el("tbody", {}, ...rows)),
      page.next_page_token ? el("p", { class: "muted", text: "(first 100 votes)" }) : "");
  } catch (err) { box.textContent = explainError(err, "the votes"); }
}

async function fillHistory(subject, predicate, state) {
  const box = $("#record-history");
  try {
    const q = new URLSearchParams({ subject, predicate, lens: state.lens });
    const page = await api(`/v1/history?${q}`);
    if (page.entries.length === 0) { box.textContent = "No changes recorded."; return; }
    const rows = page.entries.map((h) => el("tr", { class: "history" }, el("td", { class: "num", text: String(h.lsn) }),
      el("td", {}, el("span", { class: "status " + statusName(h.status), text: statusName(h.status) })),
      el("td", {}, h.winner_hash ? hashLink(h.winner_hash, state) : "–"), el("td", { class: "num", text: fmt(h.score) })));
    box.replaceChildren(el("table", {}, el("thead", {}, el("tr", {}, el("th", { class: "num", text: "LSN" }), el("th", { text: "status" }), el("th", { text: "winner" }), el("th", { class: "num", text: "score" }))), el("tbody", {}, ...rows)));
  } catch (err) { box.textContent = explainError(err, "the history"); }
}

function fromHash() {
  const state = readHash();
  $("#subject").value = state.subject;
  $("#lens").value = state.lens;
  if (state.subject) search(state);
}

document.addEventListener("DOMContentLoaded", () => {
  $("#search").addEventListener("submit", (ev) => {
    ev.preventDefault();
    const state = { subject: $("#subject").value.trim(), lens: $("#lens").value, record: "" };
    if (!state.subject) return;
    writeHash(state);
    search(state);
  });
  $("#lens").addEventListener("change", () => {
    const state = { ...readHash(), subject: $("#subject").value.trim(), lens: $("#lens").value };
    if (!state.subject) return;
    writeHash(state);
    search(state);
  });
  window.addEventListener("popstate", fromHash);
  fromHash();
});
