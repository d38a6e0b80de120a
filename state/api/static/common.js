// Shared by every page: token, polling with ETags, DOM helpers, formatting, severities.

const TOKEN_KEY = "coldwake-token";

// A `#token=XYZ` is kept for the tab and removed from the address bar (and history).
function takeToken() {
  const token = new URLSearchParams(location.hash.slice(1)).get("token");
  if (token === null) return false;
  sessionStorage.setItem(TOKEN_KEY, token);
  history.replaceState(null, "", location.pathname + location.search);
  return true;
}

export const $ = (id) => document.getElementById(id);

// An element ("svg:rect" for SVG) with attributes (null/undefined skipped) and children.
export function el(tag, attrs = {}, ...kids) {
  const svg = tag.startsWith("svg:");
  const node = svg ? document.createElementNS("http://www.w3.org/2000/svg", tag.slice(4)) : document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) if (v != null) node.setAttribute(k, v);
  node.append(...kids.filter((k) => k != null));
  return node;
}

export function setText(node, text) {
  if (node.textContent !== text) node.textContent = text;
}

const sigs = new WeakMap();
// Rebuild a node's content only when its signature changed: unchanged cells keep their
// nodes, and so the keyboard focus on a link inside them.
export function fill(node, sig, build) {
  if (sigs.get(node) === sig) return;
  sigs.set(node, sig);
  node.replaceChildren(...[].concat(build()).filter((k) => k != null));
}

// Bring parent's children (rows, map markers) in line with items, in order, keyed by
// data-<attr>: kept nodes are reused and only out-of-place ones move (focus stays),
// new ones come from make(), all are refreshed by update(node, item).
export function syncRows(parent, items, attr, keyOf, make, update) {
  const old = new Map([...parent.children].map((r) => [r.dataset[attr], r]));
  let cursor = parent.firstElementChild;
  for (const item of items) {
    const key = keyOf(item);
    const row = old.get(key) ?? make(item);
    old.delete(key);
    row.dataset[attr] = key;
    update(row, item);
    if (row === cursor) cursor = cursor.nextElementSibling;
    else parent.insertBefore(row, cursor);
  }
  for (const row of old.values()) row.remove();
}

// A row of n empty cells, for an update function to fill.
export const emptyRow = (n, attrs = {}) => el("tr", attrs, ...Array.from({ length: n }, () => el("td")));

// A link to a fleet page, the bare id where there are none (on a vessel), or "—".
export const link = (base, id, links = true) =>
  id ? (links ? el("a", { href: base + encodeURIComponent(id) }, id) : id) : "—";

let marked = false;
// Marks the first complete render, for the benchmark.
export function rendered() {
  if (!marked) performance.mark("coldwake-rendered");
  marked = true;
}

// --- formatting: all times are UTC, the fleet's clock ---

export const parseTime = (iso) => (iso ? Date.parse(iso) : NaN);
export const isNum = (v) => typeof v === "number" && Number.isFinite(v);
// SVG coordinates to a tenth of a pixel: shorter attributes, no visible difference.
export const r1 = (v) => Math.round(v * 10) / 10;
export const plural = (n, word) => `${n} ${word}${n === 1 ? "" : "s"}`;
export const fmtNum = (v, digits = 1, unit = "") => (isNum(v) ? v.toFixed(digits) + unit : "—");
// A signed difference, "+0.4" or "-1.2" ("0.0", never "-0.0").
export function fmtDelta(d) {
  const r = Math.round(d * 10) / 10 || 0;
  return isNum(d) ? `${r > 0 ? "+" : ""}${r.toFixed(1)}` : "—";
}

export function fmtTime(iso, zone = " UTC") {
  const t = parseTime(iso);
  return Number.isNaN(t) ? "—" : new Date(t).toISOString().slice(0, 16).replace("T", " ") + zone;
}

// "11-26 10:00", for tables whose header says UTC.
export const fmtShort = (iso) => fmtTime(iso, "").replace(/^\d{4}-/, "");

export function fmtDuration(seconds) {
  if (!isNum(seconds)) return "—";
  const s = Math.max(0, Math.round(seconds));
  const [m, h, d] = [Math.floor(s / 60), Math.floor(s / 3600), Math.floor(s / 86400)];
  if (s < 60) return `${s} s`;
  if (m < 60) return `${m} min`;
  if (h < 24) return m % 60 ? `${h} h ${m % 60} min` : `${h} h`;
  return h % 24 ? `${d} d ${h % 24} h` : `${d} d`;
}

// Age of `iso` at the reference time `ref` ("3 h 20 min ago"), or "" without one.
export function fmtAge(iso, ref) {
  const d = (parseTime(ref) - parseTime(iso)) / 1000;
  return isNum(d) ? `${fmtDuration(d)} ago` : "";
}

export function fmtPos(lat, lon) {
  const f = (v, pos, neg) => `${Math.abs(v).toFixed(1)}°${v < 0 ? neg : pos}`;
  return isNum(lat) && isNum(lon) ? `${f(lat, "N", "S")} ${f(lon, "E", "W")}` : "—";
}

// --- severities: served by the API, so no kind is named here ---

export const severity = (sev, kind) => sev?.[kind] ?? { rank: 999, level: "watch", label: `${kind}` };
const byRank = (sev) => (a, b) => severity(sev, a).rank - severity(sev, b).rank;
export const kindsByRank = (sev, kinds = Object.keys(sev ?? {})) => [...kinds].sort(byRank(sev));

// A coloured chip that always says its meaning in text too.
export const chip = (level, text) => el("span", { class: `chip ${level}` }, text);

export function kindChip(sev, kind) {
  const s = severity(sev, kind);
  return chip(s.level, `${s.level.toUpperCase()} · ${s.label}`);
}

// One row of the open-alerts tables (fleet and vessel pages); links: fleet pages exist.
export function updateAlertRow(row, a, sev, ref, links) {
  const s = severity(sev, a.kind);
  Object.assign(row.dataset, { kind: a.kind, vessel: a.vessel_id ?? "", container: a.container_id ?? "" });
  const [level, kind, vessel, box, since, pos] = row.cells;
  fill(level, s.level, () => chip(s.level, s.level.toUpperCase()));
  setText(kind, s.label);
  fill(vessel, `${a.vessel_id}`, () => link("/vessels/", a.vessel_id, links));
  fill(box, `${a.container_id}`, () => link("/containers/", a.container_id, links));
  const age = fmtAge(a.since, ref);
  fill(since, `${a.since}|${age}`, () => [
    el("time", { datetime: a.since ?? "", title: fmtTime(a.since) }, fmtShort(a.since)),
    age ? el("span", { class: "age" }, age) : null,
  ]);
  setText(pos, fmtPos(a.lat, a.lon));
}

// The id in /containers/{id} or /vessels/{id}, decoded; null elsewhere.
export function pathId(prefix) {
  const p = location.pathname;
  if (!p.startsWith(prefix) || p.length === prefix.length) return null;
  const raw = p.slice(prefix.length).replace(/\/$/, "");
  try {
    return decodeURIComponent(raw);
  } catch {
    return raw; // a stray "%" typed in the address
  }
}

// Fetch `url` now and a second after each answer, with If-None-Match; render(body) on
// each 200 with `found` not false (else say `missing`: the page polls on until it is).
// Failures never clear what is shown: they only say so.
export function poll(url, render, missing) {
  const updated = $("updated");
  const message = $("message");
  let etag = null;
  let shown = null; // "position N · updated T" of the data on screen
  let timer = 0;
  let busy = false; // one request at a time, whatever woke the poller
  let absent = false; // the last view said found: false

  const say = (text) => {
    message.hidden = !text;
    setText(message, text ?? "");
  };
  const status = (lost) => {
    const text = lost ? [shown, "connection lost, retrying"].filter(Boolean).join(" · ") : shown ?? "no data";
    setText(updated, text);
    updated.classList.toggle("lost", lost);
  };

  async function request() {
    const headers = {};
    const token = sessionStorage.getItem(TOKEN_KEY);
    if (token) headers.Authorization = `Bearer ${token}`;
    if (etag) headers["If-None-Match"] = etag;
    let res;
    let body = null;
    try {
      res = await fetch(url, { headers });
      if (res.status === 200) body = await res.json();
      if (res.status === 404) body = await res.json().catch(() => null);
    } catch {
      return status(true);
    }
    if (res.status === 200) {
      etag = res.headers.get("ETag");
      absent = body.found === false;
      if (!absent) render(body);
      shown = `position ${body.position ?? "—"} · updated ${new Date().toISOString().slice(11, 19)} UTC`;
    }
    if (res.status === 401) say("This API needs a token: open the page as …/#token=YOUR_TOKEN");
    else if (res.status === 404) say(body?.error ?? `Not found: ${url}`);
    else if (res.status < 400) say(absent ? missing : null); // a 304 too: it may answer a new token
    status(res.status >= 500);
    // a wrong token stays wrong: wait for a new #token= (hashchange) instead of retrying
    return res.status === 401;
  }

  async function tick() {
    if (busy) return;
    busy = true;
    clearTimeout(timer);
    let stop = false;
    try {
      // a hidden tab skips its polls and catches up when shown again
      stop = !document.hidden && (await request());
    } finally {
      busy = false;
      if (!stop) timer = setTimeout(tick, 1000);
    }
  }

  addEventListener("hashchange", () => takeToken() && tick());
  addEventListener("visibilitychange", () => document.hidden || tick());
  takeToken();
  tick();
}
