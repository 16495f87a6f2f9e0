// The StemeDB explorer: plain JavaScript over the gateway's /v1 routes. No framework, no CDN.
"use strict";

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
  const parts = [close, el("h2", { text: kind[0].toUpperCase() + kind.slice(1) + " " + short(hash) })];
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
