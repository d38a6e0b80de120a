// Vessel page, served two ways: /vessels/{id} in a fleet dir, and / in a vessel's own
// data dir (the crew's view: no shore link, no fleet pages to link to).

import {
  $, el, setText, fill, syncRows, poll, pathId, emptyRow, chip, kindChip, link, severity, kindsByRank, plural,
  fmtTime, fmtShort, fmtAge, fmtDelta, fmtDuration, fmtNum, fmtPos, parseTime, isNum, updateAlertRow, rendered,
} from "./common.js";

const id = pathId("/vessels/");
const filter = $("reefer-filter");
let data = null;

function renderSummary() {
  const v = data.vessel ?? {};
  const name = data.vessel_id ?? id;
  setText($("title"), name ? `Vessel ${name}` : "This vessel");
  document.title = `Coldwake · ${name ?? "This vessel"}`;
  for (const row of document.querySelectorAll("[data-fleet-only]")) row.hidden = !data.fleet;
  const p = v.position ?? {};
  setText($("last-heard"), fmtTime(v.last_heard));
  setText($("position"), fmtPos(p.lat, p.lon));
  setText($("reefers-aboard"), `${v.reefers_aboard ?? "—"}`);
  setText($("out-of-range"), isNum(v.out_of_range_containers) ? plural(v.out_of_range_containers, "container") : "—");
  setText($("dead-letters"), `${v.dead_letters ?? "—"}`);
  setText($("late"), `${v.late ?? "—"}`);
  const open = v.open_alerts ?? {};
  fill($("open-by-kind"), JSON.stringify(open), () => {
    const kinds = kindsByRank(data.severities, Object.keys(open));
    const chipOf = (k) => chip(severity(data.severities, k).level, `${severity(data.severities, k).label} ${open[k]}`);
    return kinds.length ? kinds.map(chipOf) : chip("ok", "none");
  });

  const shore = data.link;
  const status = $("link-status");
  status.classList.toggle("down", !!shore?.stale);
  const last = v.last_heard ? ` (last record ${fmtTime(v.last_heard)})` : "";
  fill(status, `${shore?.stale}|${shore?.behind_s}|${last}|${JSON.stringify(shore?.mirror)}`, () => (!shore
    ? "Link: this is the vessel's own data, read on board."
    : [...(shore.stale
      ? [chip("stale", "STALE"), `Link down? no data for ${fmtDuration(shore.behind_s)}${last}`]
      : [`Link: data up to date (${fmtDuration(shore.behind_s)} behind the fleet)`]),
    ...mirrorText(shore.mirror)]));
}

// What `mirror status` says waits on board (only when the server watches the mirrors).
function mirrorText(m) {
  if (!m) return [];
  if (m.error) return [` · mirror status unknown: ${m.error}`];
  const waiting = `${m.waiting.toLocaleString("en")} record${m.waiting === 1 ? "" : "s"} waiting to cross`;
  const problems = m.problems.length ? ` · ${m.problems.join(" · ")}` : "";
  return [` · ${waiting} (mirror ${m.mirror}, link ${m.link ?? "unknown"}, checked ${fmtTime(m.checked_at)})${problems}`];
}

// Ages are read against the fleet's clock, or on board against the newest reading.
function refTime() {
  const newest = Math.max(...data.reefers.map((r) => parseTime(r.ts)).filter(Number.isFinite));
  return data.link?.fleet_time ?? (Number.isFinite(newest) ? new Date(newest).toISOString() : null);
}

function renderReefers(ref) {
  const sev = data.severities;
  const sorted = (r) => kindsByRank(sev, r.open_alerts ?? []);
  const rank = (r) => (r.open_alerts?.length ? severity(sev, sorted(r)[0]).rank : Infinity);
  const q = filter.value.trim().toLowerCase();
  // the filter matches a container id or the label of one of its open alerts
  const words = (r) => [r.container_id, ...(r.open_alerts ?? []).map((k) => severity(sev, k).label)];
  const rows = data.reefers
    .filter((r) => words(r).some((w) => `${w}`.toLowerCase().includes(q)))
    .sort((a, b) => rank(a) - rank(b) || `${a.container_id}`.localeCompare(b.container_id));
  syncRows($("reefers").tBodies[0], rows, "container", (r) => r.container_id, () => emptyRow(8), (row, r) => {
    const [box, temp, sp, dev, power, door, alerts, last] = row.cells;
    const d = isNum(r.temp_c) && isNum(r.setpoint_c) ? r.temp_c - r.setpoint_c : null;
    const age = fmtAge(r.ts, ref);
    fill(box, `${r.container_id}|${data.fleet}`, () => link("/containers/", r.container_id, data.fleet));
    setText(temp, fmtNum(r.temp_c));
    setText(sp, fmtNum(r.setpoint_c));
    setText(dev, fmtDelta(d));
    setText(power, fmtNum(r.power_kw));
    setText(door, r.door_open === true ? "OPEN" : r.door_open === false ? "closed" : "—");
    fill(alerts, `${sorted(r)}`, () => sorted(r).map((k) => kindChip(sev, k)));
    fill(last, `${r.ts}|${age}`, () => [fmtShort(r.ts), age && el("span", { class: "age" }, age)]);
  });
  $("reefers").nextElementSibling.hidden = rows.length > 0;
  const total = plural(data.reefers.length, "container");
  setText($("reefer-count"), rows.length === data.reefers.length ? total : `${rows.length} of ${total}`);
}

function render(body) {
  data = { ...body, reefers: body.reefers ?? [], alerts: body.alerts ?? [] };
  const ref = refTime();
  renderSummary();
  const update = (row, a) => updateAlertRow(row, a, data.severities, ref, data.fleet);
  syncRows($("alerts").tBodies[0], data.alerts, "alert", (a) => a.alert_id, () => emptyRow(6), update);
  $("alerts").nextElementSibling.hidden = data.alerts.length > 0;
  setText($("alert-count"), plural(data.alerts.length, "open alert"));
  renderReefers(ref);
  rendered();
}

filter.addEventListener("input", () => data && renderReefers(refTime()));

// only a fleet dir serves /vessels/{id}: the fleet-only facts are laid out before data comes
for (const row of document.querySelectorAll("[data-fleet-only]")) row.hidden = !id;
setText($("title"), id ? `Vessel ${id}` : "This vessel");
const url = id ? `/api/view/vessels/${encodeURIComponent(id)}` : "/api/view/vessel";
poll(url, render, `No vessel ${id} in the fleet tables`);
