// The fleet map: an equirectangular SVG (viewBox 0 0 1000 500) with land, alert grid
// cells and vessel markers. Zooming changes the viewBox; markers are drawn in screen
// pixels (scaled back by the zoom) so they keep one size.

import {
  el, setText, syncRows, fmtDuration, fmtPos, fmtNum, fmtTime, plural, severity, kindsByRank, isNum, r1,
} from "./common.js";

const [W, H] = [1000, 500];
const ZOOM_W = (40 / 360) * W; // a centred alert shows about 40° × 20°
const project = (lat, lon) => [((lon + 180) / 360) * W, ((90 - lat) / 180) * H];
const ARROW = "M0,-9L6,7L0,3.5L-6,7Z"; // points north before the rotation by cog
const DOT = "M-5.5,0a5.5,5.5 0 1,0 11,0a5.5,5.5 0 1,0-11,0";
const fmtLat = (v) => (v ? `${Math.abs(v)}°${v > 0 ? "N" : "S"}` : "0°");
const fmtLon = (v) => (v % 180 ? `${Math.abs(v)}°${v > 0 ? "E" : "W"}` : `${Math.abs(v)}°`);

// world-atlas' land is not cut at the antimeridian (Fiji, Chukotka): a ring's longitudes
// are made continuous, and a ring that then runs past ±180° is drawn again one world over
// (the SVG clips the rest). A ring round the pole (Antarctica) ends 360° from its start.
function ringPath(ring) {
  const lons = [ring[0][0]];
  for (let k = 1; k < ring.length; k++) lons.push(ring[k][0] - 360 * Math.round((ring[k][0] - lons[k - 1]) / 360));
  const shifts = [0];
  if (Math.abs(lons.at(-1) - lons[0]) < 180) {
    if (Math.min(...lons) < -180) shifts.push(360);
    if (Math.max(...lons) > 180) shifts.push(-360);
  }
  const path = (dx) => "M" + ring.map(([, lat], k) => project(lat, lons[k] + dx).map(r1)).join("L") + "Z";
  return shifts.map(path).join("");
}

export function createMap(svg, onVesselPick) {
  const [land, cells, vessels, focus] = [".land", ".cells", ".vessels", ".focus-mark"].map((q) => svg.querySelector(q));
  let view = [0, 0, W, H];
  let focusAt = null;

  const lines = [];
  for (let d = 30; d < 360; d += 30) lines.push(`M${(d / 360) * W},0V${H}`);
  for (let d = 30; d < 180; d += 30) lines.push(`M0,${(d / 180) * H}H${W}`);
  svg.querySelector(".graticule").setAttribute("d", lines.join(""));

  // Markers are in CSS pixels: scale by the SVG units per pixel at the current zoom.
  function placeMarks() {
    const k = (view[2] / (svg.clientWidth || W)).toFixed(4); // read once: reading it between writes forces layouts
    const at = (x, y) => `translate(${r1(x)} ${r1(y)}) scale(${k})`;
    for (const g of vessels.children) {
      g.setAttribute("transform", at(+g.dataset.x, +g.dataset.y));
      // a stale label near the right edge goes to the left of its marker
      const right = +g.dataset.x > view[0] + view[2] * 0.75;
      const label = g.querySelector(".stale-label");
      label?.setAttribute("x", right ? -15 : 15);
      label?.setAttribute("text-anchor", right ? "end" : "start");
    }
    if (focusAt) focus.setAttribute("transform", at(...project(...focusAt)));
  }

  function setView(v) {
    view = v;
    svg.setAttribute("viewBox", v.map(r1).join(" "));
    placeMarks();
  }

  async function loadLand(url) {
    try {
      const topo = await (await fetch(url)).json();
      const geo = window.topojson.feature(topo, topo.objects.land);
      const rings = (g) => (g?.type === "Polygon" ? g.coordinates : g?.coordinates?.flat() ?? []);
      land.setAttribute("d", (geo.features ?? [geo]).flatMap((f) => rings(f.geometry)).map(ringPath).join(""));
    } catch {
      // without the land file the map still shows the positions on the graticule
    }
  }

  function drawCells(grid, sev) {
    const max = Math.max(1, ...grid.map((c) => c.open_alerts));
    const size = r1((5 / 360) * W);
    cells.replaceChildren(...grid.map((c) => {
      const kinds = kindsByRank(sev, Object.keys(c.by_kind ?? {}));
      const detail = kinds.map((k) => `${severity(sev, k).label.toLowerCase()} ${c.by_kind[k]}`).join(", ");
      const [x, y] = project(c.lat_min + 5, c.lon_min);
      const where = `${fmtLat(c.lat_min)}–${fmtLat(c.lat_min + 5)} ${fmtLon(c.lon_min)}–${fmtLon(c.lon_min + 5)}`;
      const title = `${where}: ${plural(c.open_alerts, "open alert")}${detail ? ` (${detail})` : ""}`;
      return el("svg:rect", {
        class: `cell ${severity(sev, kinds[0]).level}`, x: r1(x), y: r1(y), width: size, height: size,
        "data-open": c.open_alerts, "fill-opacity": (0.1 + (0.4 * c.open_alerts) / max).toFixed(2),
      }, el("svg:title", {}, title));
    }));
  }

  function vesselMark(v) {
    const g = el("svg:g", { class: "vessel", tabindex: 0 },
      el("svg:circle", { class: "halo", r: 12 }), el("svg:path", { class: "mark" }), el("svg:title"));
    g.addEventListener("click", () => onVesselPick(v.vessel_id));
    g.addEventListener("keydown", (e) => e.key === "Enter" && onVesselPick(v.vessel_id));
    return g;
  }

  function updateVessel(g, v, sev) {
    const s = v.worst ? severity(sev, v.worst) : null;
    [g.dataset.x, g.dataset.y] = project(v.lat, v.lon);
    Object.assign(g.dataset, { stale: `${!!v.stale}`, worst: v.worst ?? "none" });
    g.setAttribute("class", `vessel ${v.stale ? "stale" : s?.level ?? "ok"}`);
    const mark = g.querySelector(".mark");
    mark.setAttribute("d", isNum(v.cog_deg) ? ARROW : DOT);
    mark.setAttribute("transform", `rotate(${isNum(v.cog_deg) ? v.cog_deg : 0})`);

    const noData = v.stale ? `no data ${fmtDuration(v.behind_s)}` : null;
    let label = g.querySelector(".stale-label");
    if (noData && !label) g.append((label = el("svg:text", { class: "stale-label", y: 4 })));
    if (noData) setText(label, noData);
    else label?.remove();

    const moving = isNum(v.cog_deg) ? `, heading ${Math.round(v.cog_deg)}° at ${fmtNum(v.sog_kn, 1, " kn")}` : "";
    const worst = s ? `${s.level}: ${s.label}` : "no open alert";
    const stale = noData ? `, stale (${noData})` : "";
    const text = `${v.vessel_id}: ${worst}, ${plural(v.open_alerts ?? 0, "open alert")}${stale}; ` +
      `${fmtPos(v.lat, v.lon)}${moving}; last heard ${fmtTime(v.last_heard)}`;
    g.setAttribute("aria-label", text);
    setText(g.querySelector("title"), text);
  }

  function update(data) {
    drawCells(data.grid, data.severities);
    const placed = data.vessels.filter((v) => isNum(v.lat) && isNum(v.lon));
    // stale vessels are drawn first, so a grey marker never hides a live one
    const ordered = [...placed.filter((v) => v.stale), ...placed.filter((v) => !v.stale)];
    syncRows(vessels, ordered, "vessel", (v) => v.vessel_id, vesselMark, (g, v) => updateVessel(g, v, data.severities));
    const missing = data.vessels.length - placed.length;
    const unplaced = missing ? `, ${missing} without a position fix` : "";
    svg.setAttribute("aria-label", `Fleet map: ${plural(data.vessels.length, "vessel")}${unplaced}`);
    placeMarks();
  }

  // Centre on a position at alert zoom, the view kept inside the world.
  function centre(lat, lon) {
    const [x, y] = project(lat, lon);
    const clamp = (v, hi) => Math.min(Math.max(v, 0), hi);
    focusAt = [lat, lon];
    focus.removeAttribute("visibility");
    svg.dataset.center = `${lat},${lon}`;
    setView([clamp(x - ZOOM_W / 2, W - ZOOM_W), clamp(y - ZOOM_W / 4, H - ZOOM_W / 2), ZOOM_W, ZOOM_W / 2]);
  }

  function world() {
    focusAt = null;
    focus.setAttribute("visibility", "hidden");
    delete svg.dataset.center;
    setView([0, 0, W, H]);
  }

  addEventListener("resize", placeMarks);
  return { loadLand, update, centre, world };
}
