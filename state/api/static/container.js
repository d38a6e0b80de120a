// Container page: current state, one chart (temperature, alerts and vessels on a shared
// time axis, in pixels, redrawn whole on each update) and the alerts table.

import {
  $, el, setText, fill, syncRows, poll, pathId, emptyRow, chip, kindChip, link, severity, plural,
  fmtTime, fmtShort, fmtDelta, fmtDuration, fmtNum, parseTime as t, isNum, r1, rendered,
} from "./common.js";

const id = pathId("/containers/") ?? "";
const svg = $("chart");
let data = null;

const STEPS = [5, 10, 15, 30, 60, 120, 180, 360, 720, 1440, 2880, 10080].map((m) => m * 60e3);
const s = (tag, attrs, ...kids) => el(`svg:${tag}`, attrs, ...kids);
const tip = (text) => s("title", {}, text);
const label = (x, y, text, cls) => s("text", { class: cls, x, y, "text-anchor": "end" }, text);
const isTime = (iso) => Number.isFinite(t(iso));
const span = (w) => [t(w.window_start), t(w.window_end)];
const mid = (w) => (t(w.window_start) + t(w.window_end)) / 2;

function timeDomain(d) {
  const all = [...d.windows.flatMap(span), ...d.alerts.flatMap((a) => [t(a.since), t(a.closed_at)]), t(d.state?.ts)];
  // vessel spans may reach far back: they set the domain only when nothing else does
  let ms = all.filter(Number.isFinite);
  if (!ms.length) ms = d.vessels.flatMap((v) => [v.from, v.to]).filter(isTime).map(t);
  const t1 = Math.max(...ms);
  return ms.length ? [Math.min(...ms, t1 - 3600e3), t1] : null;
}

function drawTemperature(d, c, g) {
  const { L, R, x } = c;
  const [top, h] = [12, c.alTop - 24];
  const tol = d.tolerance_c ?? 0;
  const vals = d.windows.flatMap((w) => [w.temp_min, w.temp_max, w.temp_mean, w.setpoint_c - tol, w.setpoint_c + tol]
    .filter((v, i) => isNum(v) && (i < 3 || isNum(w.setpoint_c))));
  const [min, max] = vals.length ? [Math.min(...vals), Math.max(...vals)] : [-1, 1];
  const pad = Math.max(0.5, (max - min) * 0.08);
  const [lo, hi] = [min - pad, max + pad];
  const y = (v) => r1(top + ((hi - v) / (hi - lo)) * h);
  const line = (pts) => pts.map(([px, v], i) => `${i ? "L" : "M"}${r1(px)},${y(v)}`).join("");
  const area = (upper, lower) => line(upper) + line(lower.reverse()).replace("M", "L") + "Z";

  // y ticks at a round step (1, 2, 2.5 or 5 × 10^n), about one per 34 px
  const raw = (hi - lo) / Math.max(3, Math.floor(h / 34));
  const mag = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 2.5, 5, 10].map((m) => m * mag).find((v) => v >= raw);
  const axis = s("g", { class: "axis" }, label(L - 6, top - 2, "°C", "lane-title"));
  for (let v = Math.ceil(lo / step) * step; v <= hi; v += step) {
    axis.append(s("line", { x1: L, x2: R, y1: y(v), y2: y(v) }), label(L - 6, y(v) + 4, `${+v.toFixed(2)}`));
  }
  g.append(s("rect", { class: "lane-bg", x: L, y: top, width: R - L, height: h }), axis);

  // setpoint as a step line within the tolerance band; both break where it is unknown
  const sp = [[]];
  d.windows.forEach((w, i) => {
    if (!isNum(w.setpoint_c)) return sp.push([]);
    const [xs, xe] = span(w).map(x);
    if (sp.at(-1).length) sp.at(-1).push([xs, d.windows[i - 1].setpoint_c]);
    sp.at(-1).push([xs, w.setpoint_c], [xe, w.setpoint_c]);
  });
  const runsSp = sp.filter((r) => r.length);
  const shift = (r, dv) => r.map(([px, v]) => [px, v + dv]);
  g.append(
    s("path", { class: "tolerance", d: runsSp.map((r) => area(shift(r, tol), shift(r, -tol))).join("") }),
    s("path", { class: "setpoint", d: runsSp.map(line).join("") }),
  );

  // min–max as a step area per window (the mean stands in for a missing end), the mean
  // as a line; both break at a gap longer than a window (the sensor was silent)
  const runs = [];
  d.windows.filter((w) => isNum(w.temp_mean)).forEach((w, i, ws) => {
    const p = ws[i - 1];
    if (!p || t(w.window_start) - t(p.window_end) > t(p.window_end) - t(p.window_start)) runs.push([]);
    runs.at(-1).push(w);
  });
  const or = (v, w) => (isNum(v) ? v : w.temp_mean);
  const edges = (run, key) => run.flatMap((w) => span(w).map((ms) => [x(ms), or(w[key], w)]));
  g.append(
    s("path", { class: "band", d: runs.map((r) => area(edges(r, "temp_max"), edges(r, "temp_min"))).join("") }),
    s("path", { class: "mean", d: runs.map((r) => line(r.map((w) => [x(mid(w)), w.temp_mean]))).join("") }),
  );

  // exactly one point per window; one without a mean sits hollow on its setpoint
  for (const w of d.windows) {
    const has = isNum(w.temp_mean);
    const out = w.out_of_range > 0;
    const v = has ? w.temp_mean : isNum(w.setpoint_c) ? w.setpoint_c : (lo + hi) / 2;
    const when = `${fmtShort(w.window_start)}–${fmtTime(w.window_end).slice(11)}`;
    const text = has
      ? `${when}: mean ${fmtNum(w.temp_mean)} °C (${fmtNum(w.temp_min)} to ${fmtNum(w.temp_max)}), setpoint ` +
        `${fmtNum(w.setpoint_c)}, ${plural(w.count ?? 0, "reading")}${out ? `, ${w.out_of_range} out of range` : ""}`
      : `${when}: no temperature`;
    const cls = `point${out ? " out" : ""}${has ? "" : " empty"}`;
    g.append(s("circle", { class: cls, cx: r1(x(mid(w))), cy: y(v), r: out ? 3.5 : 2.5 }, tip(text)));
  }
}

// Alerts as spans, stacked in rows where they overlap; an open one runs to the right edge.
function drawAlerts(d, c, g) {
  const top = c.alTop;
  g.append(s("rect", { class: "lane-bg", x: c.L, y: top, width: c.R - c.L, height: 56 }));
  g.append(label(c.L - 6, top + 14, "Alerts", "lane-title"));
  const ends = [];
  const placed = d.alerts.filter((a) => isTime(a.since)).sort((a, b) => t(a.since) - t(b.since)).map((a) => {
    const [start, end] = [t(a.since), isTime(a.closed_at) ? t(a.closed_at) : c.t1];
    let row = ends.findIndex((e) => e <= start);
    if (row < 0) row = ends.length;
    ends[row] = end;
    return { a, start, end, row };
  });
  const rowH = Math.min(18, 56 / Math.max(1, ends.length));
  for (const { a, start, end, row } of placed) {
    const sev = severity(d.severities, a.kind);
    const open = !a.closed_at;
    const [x0, y0] = [c.x(start), top + row * rowH + 1];
    const w = Math.max(3, c.x(end) - x0);
    const text = `${sev.label} (${sev.level}), ${a.state ?? (open ? "open" : "closed")}: ${fmtTime(a.since)} → ` +
      `${open ? "still open" : fmtTime(a.closed_at)} (${fmtDuration((end - start) / 1000)})`;
    g.append(s("rect", {
      class: `alert-span ${sev.level}`, "data-kind": a.kind, "data-alert": a.alert_id,
      x: r1(x0), y: r1(y0), width: r1(w), height: r1(rowH - 2),
    }, tip(text)));
    const arrow = `M${r1(x0 + w)},${r1(y0 + rowH / 2 - 6)}l6,5l-6,5Z`;
    if (open) g.append(s("path", { class: "open-end", d: arrow }, tip(text)));
    if (w > sev.label.length * 6.5 + 10 && rowH >= 14) {
      g.append(s("text", { class: `span-label ${sev.level}`, x: r1(x0 + 5), y: r1(y0 + rowH / 2 + 2) }, sev.label));
    }
  }
}

function drawVessels(d, c, g) {
  const top = c.alTop + 64;
  g.append(label(c.L - 6, top + 15, "Vessel", "lane-title"));
  for (const v of d.vessels) {
    const [from, to] = [Math.max(c.t0, t(v.from) || c.t0), Math.min(c.t1, isTime(v.to) ? t(v.to) : c.t1)];
    if (to < from) continue;
    const [x0, w] = [c.x(from), Math.max(2, c.x(to) - c.x(from))];
    const text = `${v.vessel_id}: ${fmtTime(v.from)} → ${v.to ? fmtTime(v.to) : "now"}`;
    const attrs = { class: "vessel-span", "data-vessel": v.vessel_id, x: r1(x0), y: top, width: r1(w), height: 22 };
    g.append(s("rect", attrs, tip(text)));
    if (w > v.vessel_id.length * 7.5 + 12) {
      g.append(s("text", { class: "vessel-label", x: r1(x0 + 6), y: top + 15 }, v.vessel_id));
    }
  }
}

// Time ticks at a round step, about one per 90 px; the date under the first tick of each day.
function drawAxis(c, g, bottom) {
  const step = STEPS.find((v) => (c.t1 - c.t0) / v <= (c.R - c.L) / 90) ?? STEPS.at(-1);
  let day = null;
  for (let ms = Math.ceil(c.t0 / step) * step; ms <= c.t1; ms += step) {
    const iso = new Date(ms).toISOString();
    const px = r1(c.x(ms));
    g.append(s("line", { x1: px, x2: px, y1: 12, y2: bottom }));
    if (px < c.L + 18) continue; // keeps clear of the "UTC" label
    const text = s("text", { x: px, y: bottom + 13, "text-anchor": "middle" }, iso.slice(11, 16));
    if (iso.slice(5, 10) !== day) text.append(s("tspan", { x: px, dy: 12 }, (day = iso.slice(5, 10))));
    g.append(text);
  }
  g.append(label(c.L - 6, bottom + 13, "UTC"));
}

function drawChart() {
  if (!data) return;
  const [W, H] = [Math.max(300, svg.clientWidth), Math.max(200, svg.clientHeight)];
  svg.setAttribute("viewBox", `0 0 ${W} ${H}`);
  const dom = timeDomain(data);
  if (!dom) {
    const text = "No readings or alerts for this container yet.";
    return svg.replaceChildren(s("text", { class: "nodata", x: W / 2, y: H / 2, "text-anchor": "middle" }, text));
  }
  // lanes from the bottom: time axis (30 px), vessels (22), alerts (56), temperature above
  const [t0, t1, L, R] = [...dom, 56, W - 16];
  const c = { t0, t1, L, R, alTop: H - 120, x: (ms) => L + ((ms - t0) / (t1 - t0)) * (R - L) };
  const [axis, g] = [s("g", { class: "axis" }), s("g")];
  drawAxis(c, axis, H - 30);
  drawTemperature(data, c, g);
  drawAlerts(data, c, g);
  drawVessels(data, c, g);
  svg.replaceChildren(axis, g);
  const out = data.windows.filter((w) => w.out_of_range > 0).length;
  svg.setAttribute("aria-label", `Container ${data.container_id}, ${fmtTime(new Date(t0).toISOString())} to ` +
    `${fmtTime(new Date(t1).toISOString())}: ${plural(data.windows.length, "reading window")} (${out} out of range), ` +
    `${plural(data.alerts.length, "alert")}, ${plural(data.vessels.length, "vessel")}`);
}

function render(body) {
  data = { ...body, windows: body.windows ?? [], alerts: body.alerts ?? [], vessels: body.vessels ?? [] };
  const st = data.state;
  const dev = isNum(st?.temp_c) && isNum(st?.setpoint_c) ? st.temp_c - st.setpoint_c : null;
  const kinds = st?.open_alerts ?? [];
  fill($("on-vessel"), `${st?.vessel_id}`, () => (st ? link("/vessels/", st.vessel_id) : "no current state"));
  setText($("temp"), fmtNum(st?.temp_c, 1, " °C") + (isNum(dev) ? ` (${fmtDelta(dev)})` : ""));
  setText($("setpoint"), fmtNum(st?.setpoint_c, 1, " °C"));
  setText($("power"), fmtNum(st?.power_kw, 1, " kW"));
  setText($("door"), st?.door_open === true ? "OPEN" : st?.door_open === false ? "closed" : "—");
  setText($("last-reading"), fmtTime(st?.ts));
  const chips = () => (kinds.length ? kinds.map((k) => kindChip(data.severities, k)) : chip("ok", "none"));
  fill($("open-alerts"), `${kinds}`, chips);
  setText($("legend-tolerance"), `Tolerance (setpoint ± ${fmtNum(data.tolerance_c, 1, " °C")})`);
  drawChart();
  syncRows($("alerts").tBodies[0], data.alerts, "alert", (a) => a.alert_id, () => emptyRow(5), (row, a) => {
    const [kind, state, vessel, since, closed] = row.cells;
    row.dataset.kind = a.kind;
    fill(kind, a.kind, () => kindChip(data.severities, a.kind));
    setText(state, a.state ?? (a.closed_at ? "closed" : "open"));
    fill(vessel, `${a.vessel_id}`, () => link("/vessels/", a.vessel_id));
    setText(since, fmtShort(a.since));
    setText(closed, fmtShort(a.closed_at));
  });
  $("alerts").nextElementSibling.hidden = data.alerts.length > 0;
  rendered();
}

let frame = 0;
addEventListener("resize", () => {
  cancelAnimationFrame(frame);
  frame = requestAnimationFrame(drawChart);
});

setText($("title"), `Container ${id}`);
document.title = `Coldwake · ${id}`;
poll(`/api/view/containers/${encodeURIComponent(id)}`, render, `No container ${id} in the fleet tables`);
