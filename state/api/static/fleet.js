// Fleet page: summary, map, the open-alerts table with its filters, and the vessel list.

import {
  $, el, setText, fill, syncRows, poll, plural, fmtTime, fmtShort, fmtDuration, severity, kindsByRank,
  chip, link, emptyRow, updateAlertRow, isNum, rendered,
} from "./common.js";
import { createMap } from "./map.js";

const kindFilter = $("kind-filter");
const vesselFilter = $("vessel-filter");
const tbody = document.querySelector("#alerts tbody");
// a vessel picked on the map filters the alerts to it
const map = createMap($("map"), (id) => {
  vesselFilter.value = id;
  renderAlerts();
});
const landDrawn = map.loadLand("/static/vendor/land-110m.json");
let data = null;
let selected = null; // alert_id of the highlighted row
// The first render draws the rows a screen can show at once, and the rest (thousands of
// alerts, the vessel list) right after it has painted: the desk sees the fleet sooner.
const FIRST_ROWS = 100;
let complete = false;

// Options follow the data; the current choice stays even when its value is gone.
function setOptions(select, pairs) {
  const keep = select.value;
  if (keep && !pairs.some(([v]) => v === keep)) pairs.push([keep, keep]);
  const options = () => [select.options[0], ...pairs.map(([value, label]) => el("option", { value }, label))];
  fill(select, JSON.stringify(pairs), options);
  select.value = keep;
}

function renderAlerts() {
  const [kind, vessel] = [kindFilter.value, vesselFilter.value];
  const shown = data.alerts.filter((a) => (!kind || a.kind === kind) && (!vessel || a.vessel_id === vessel));
  syncRows(tbody, complete ? shown : shown.slice(0, FIRST_ROWS), "alert", (a) => a.alert_id, () => emptyRow(6, { tabindex: 0 }), (row, a) => {
    updateAlertRow(row, a, data.severities, data.fleet_time, true);
    if (a.alert_id === selected) row.setAttribute("aria-selected", "true");
    else row.removeAttribute("aria-selected");
  });
  document.querySelector(".alerts-panel .empty").hidden = shown.length > 0;
  const total = plural(data.alerts.length, "open alert");
  setText($("alert-count"), shown.length === data.alerts.length ? total : `${shown.length} of ${total}`);
}

// The list also shows the vessels the map cannot: those without a position fix.
function renderVessels() {
  const sev = data.severities;
  const rank = (v) => (v.worst ? severity(sev, v.worst).rank : 999);
  const list = [...data.vessels].sort((a, b) => rank(a) - rank(b) || a.vessel_id.localeCompare(b.vessel_id));
  const body = $("vessels").tBodies[0];
  syncRows(body, list, "id", (v) => v.vessel_id, () => emptyRow(4), (row, v) => {
    const [id, status, open, heard] = row.cells;
    const s = v.worst ? severity(sev, v.worst) : null;
    // the age shown is the fleet's lag behind this vessel: what makes it stale
    const age = v.last_heard && isNum(v.behind_s) ? `${fmtDuration(v.behind_s)} ago` : null;
    fill(id, v.vessel_id, () => link("/vessels/", v.vessel_id));
    fill(status, `${v.stale}|${v.worst}|${isNum(v.lat)}`, () => [
      v.stale ? chip("stale", "STALE") : null,
      s ? chip(s.level, s.level.toUpperCase()) : chip("ok", "OK"),
      s ? s.label : "no open alert",
      isNum(v.lat) ? null : el("span", { class: "age" }, "no position fix"),
    ]);
    setText(open, `${v.open_alerts ?? 0}`);
    fill(heard, `${v.last_heard}|${age}`, () => [
      el("time", { datetime: v.last_heard ?? "", title: fmtTime(v.last_heard) }, fmtShort(v.last_heard)),
      age && el("span", { class: "age" }, age),
    ]);
  });
  body.parentElement.nextElementSibling.hidden = list.length > 0;
}

function render(body) {
  data = { ...body, vessels: body.vessels ?? [], alerts: body.alerts ?? [], grid: body.grid ?? [] };
  const sev = data.severities;
  setText($("vessel-count"), plural(data.vessels.length, "vessel"));
  setText($("fleet-time"), `fleet time ${fmtTime(data.fleet_time)}`);
  setText($("legend-stale"), `Stale (no data for > ${fmtDuration(data.stale_after_s)})`);
  // each level in the legend names its kinds on hover
  for (const li of document.querySelectorAll("#legend [data-level]")) {
    const kinds = kindsByRank(sev).filter((k) => severity(sev, k).level === li.dataset.level);
    li.title = kinds.map((k) => severity(sev, k).label).join(", ");
  }
  map.update(data);
  setOptions(kindFilter, kindsByRank(sev).map((k) => [k, severity(sev, k).label]));
  const ids = new Set([...data.vessels, ...data.alerts].map((x) => x.vessel_id).filter(Boolean));
  setOptions(vesselFilter, [...ids].sort().map((id) => [id, id]));
  renderAlerts();
  if (complete) {
    renderVessels();
    return;
  }
  landDrawn.then(() => {
    rendered();
    setTimeout(() => {
      complete = true;
      renderAlerts();
      renderVessels();
      performance.mark("coldwake-complete");
    });
  });
}

// Highlight an alert's row and centre the map on it (on its vessel when it has no position).
function select(row) {
  const a = data.alerts.find((x) => x.alert_id === row.dataset.alert);
  if (!a) return;
  selected = a.alert_id;
  for (const r of tbody.querySelectorAll("[aria-selected]")) r.removeAttribute("aria-selected");
  row.setAttribute("aria-selected", "true");
  const v = data.vessels.find((x) => x.vessel_id === a.vessel_id);
  const at = [a, v].find((p) => isNum(p?.lat) && isNum(p?.lon));
  if (at) map.centre(at.lat, at.lon);
}

tbody.addEventListener("click", (e) => {
  const row = e.target.closest("tr[data-alert]");
  if (row && !e.target.closest("a")) select(row);
});
tbody.addEventListener("keydown", (e) => {
  if (e.key === "Enter" && e.target.matches("tr[data-alert]")) select(e.target);
});
kindFilter.addEventListener("change", () => data && renderAlerts());
vesselFilter.addEventListener("change", () => data && renderAlerts());
$("world").addEventListener("click", () => map.world());

poll("/api/view/fleet", render);
