/**
 * The inspector's page and script. The page holds no data: its script asks
 * for the metrics token (kept in sessionStorage, or taken from `#token=` in
 * the address — a fragment never reaches the server or its logs), then polls
 * the JSON API with `Authorization: Bearer`. The charts are plain SVG drawn
 * here (no chart library to ship or to trust on an operator's page).
 */

/** The inspector's HTML (the script is served beside it, so a strict CSP applies). */
export const INSPECTOR_HTML = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>edgewire inspector</title>
<style>
  :root { font: 14px/1.4 system-ui, sans-serif; color: #1d2330; background: #f4f6fa; }
  body { margin: 0; padding: 16px 24px; }
  header { display: flex; gap: 16px; align-items: baseline; flex-wrap: wrap; }
  h1 { font-size: 20px; margin: 0; }
  h2 { font-size: 15px; margin: 0 0 8px; }
  .muted { color: #667; }
  .grid { display: grid; grid-template-columns: repeat(auto-fit, minmax(340px, 1fr)); gap: 14px; margin-top: 14px; }
  .card { background: #fff; border-radius: 8px; padding: 12px 14px; box-shadow: 0 1px 2px #0002; }
  .tiles { display: flex; gap: 18px; flex-wrap: wrap; }
  .tile b { display: block; font-size: 22px; }
  table { border-collapse: collapse; width: 100%; }
  th, td { text-align: left; padding: 3px 6px; border-bottom: 1px solid #eee; }
  td.n, th.n { text-align: right; font-variant-numeric: tabular-nums; }
  tr.room { cursor: pointer; } tr.room:hover { background: #eef3ff; }
  svg { width: 100%; height: 130px; display: block; }
  .legend span { margin-right: 10px; white-space: nowrap; } .legend i { display: inline-block; width: 10px; height: 10px; margin-right: 4px; border-radius: 2px; }
  #login { max-width: 420px; margin: 60px auto; } #login input { width: 100%; padding: 6px; margin: 8px 0; box-sizing: border-box; }
  #error { color: #b00020; }
  pre { margin: 0; white-space: pre-wrap; word-break: break-all; font-size: 12px; }
  [hidden] { display: none !important; }
</style>
</head>
<body>
<form id="login" class="card" hidden>
  <h2>edgewire inspector</h2>
  <p class="muted">The token is the instance's EDGEWIRE_METRICS_TOKEN.</p>
  <input id="token" type="password" autocomplete="off" placeholder="metrics token" aria-label="metrics token">
  <button type="submit">Open</button>
  <p id="error" role="alert"></p>
</form>
<main id="main" hidden>
  <header>
    <h1>edgewire inspector</h1>
    <span id="who" class="muted"></span>
    <span id="status" class="muted"></span>
  </header>
  <div class="grid">
    <section class="card"><h2>Now</h2><div class="tiles" id="tiles"></div>
      <h2 style="margin-top:12px">Connections by route and transport</h2><table id="connections"></table></section>
    <section class="card"><h2>Messages per second</h2><svg id="chart-messages" role="img" aria-label="messages per second"></svg><div class="legend" id="legend-messages"></div></section>
    <section class="card"><h2>Connections by transport</h2><svg id="chart-connections" role="img" aria-label="connections"></svg><div class="legend" id="legend-connections"></div></section>
    <section class="card"><h2>Refused handshakes per interval, by reason</h2><svg id="chart-refused" role="img" aria-label="refused handshakes"></svg><div class="legend" id="legend-refused"></div></section>
    <section class="card"><h2>Closes per interval, by code</h2><svg id="chart-closes" role="img" aria-label="close codes"></svg><div class="legend" id="legend-closes"></div></section>
    <section class="card"><h2>Rooms <span id="room-count" class="muted"></span></h2><table id="rooms"></table></section>
    <section class="card" id="room-view" hidden><h2 id="room-title"></h2><p id="room-meta" class="muted"></p>
      <h2>Members</h2><table id="room-members"></table>
      <h2 style="margin-top:12px">Last messages</h2><table id="room-messages"></table></section>
  </div>
</main>
<script src="inspector.js"></script>
</body>
</html>
`;

/** The inspector's script: token, polling, tables and SVG charts. */
export const INSPECTOR_JS = `"use strict";
(() => {
  const base = location.pathname.replace(/\\/$/, "");
  const $ = (id) => document.getElementById(id);
  const COLORS = ["#3366cc", "#dc3912", "#ff9900", "#109618", "#990099", "#0099c6", "#dd4477", "#66aa00"];
  let token = "";
  let selected = null;
  let timer = 0;

  const fromHash = new URLSearchParams(location.hash.slice(1)).get("token");
  if (fromHash) { sessionStorage.setItem("edgewire-inspector", fromHash); history.replaceState(null, "", location.pathname); }
  token = sessionStorage.getItem("edgewire-inspector") || "";

  function cell(tr, text, cls) { const td = document.createElement("td"); td.textContent = String(text); if (cls) td.className = cls; tr.appendChild(td); return td; }
  function table(el, head, rows) {
    el.textContent = "";
    const h = document.createElement("tr");
    for (const [name, cls] of head) { const th = document.createElement("th"); th.textContent = name; if (cls) th.className = cls; h.appendChild(th); }
    el.appendChild(h);
    for (const row of rows) el.appendChild(row);
  }

  async function api(path) {
    const res = await fetch(base + "/api/" + path, { headers: { authorization: "Bearer " + token } });
    if (res.status === 401) { const e = new Error("unauthorized"); e.status = 401; throw e; }
    if (!res.ok) throw new Error("HTTP " + res.status);
    return res.json();
  }

  // A line per series over the samples' times; y from 0 to the largest value.
  function chart(svgId, legendId, times, series) {
    const svg = $(svgId);
    const W = 400, H = 130, L = 34, B = 16;
    const names = Object.keys(series);
    let max = 1;
    for (const n of names) for (const v of series[n]) max = Math.max(max, v);
    const t0 = times[0] || 0, t1 = times[times.length - 1] || 1;
    const x = (t) => L + ((t - t0) / Math.max(1, t1 - t0)) * (W - L - 4);
    const y = (v) => H - B - (v / max) * (H - B - 6);
    let out = '<line x1="' + L + '" y1="' + (H - B) + '" x2="' + W + '" y2="' + (H - B) + '" stroke="#ccc"/>';
    out += '<text x="2" y="12" font-size="10" fill="#667">' + (max < 10 ? max.toFixed(1) : Math.round(max)) + '</text><text x="2" y="' + (H - B) + '" font-size="10" fill="#667">0</text>';
    out += '<text x="' + L + '" y="' + (H - 3) + '" font-size="10" fill="#667">-' + Math.round((t1 - t0) / 1000) + ' s</text><text x="' + (W - 24) + '" y="' + (H - 3) + '" font-size="10" fill="#667">now</text>';
    names.forEach((n, i) => {
      const pts = series[n].map((v, j) => x(times[j]).toFixed(1) + "," + y(v).toFixed(1)).join(" ");
      out += '<polyline fill="none" stroke-width="2" stroke="' + COLORS[i % COLORS.length] + '" points="' + pts + '" data-series="' + n.replace(/[^\\w.-]/g, "") + '"/>';
    });
    svg.setAttribute("viewBox", "0 0 " + W + " " + H);
    svg.innerHTML = out;
    const legend = $(legendId);
    legend.textContent = "";
    if (names.length === 0) { legend.textContent = "nothing yet"; return; }
    names.forEach((n, i) => {
      const s = document.createElement("span");
      const sw = document.createElement("i"); sw.style.background = COLORS[i % COLORS.length];
      s.appendChild(sw); s.appendChild(document.createTextNode(n + " (" + series[n][series[n].length - 1] + ")"));
      legend.appendChild(s);
    });
  }

  // Cumulative counters → per-interval counts (or per-second rates), per label.
  function deltas(samples, pick, perSecond) {
    const out = {};
    const labels = new Set();
    for (const s of samples) for (const k of Object.keys(pick(s))) labels.add(k);
    for (const k of labels) out[k] = [];
    samples.forEach((s, i) => {
      const prev = samples[i - 1];
      for (const k of labels) {
        const d = prev ? Math.max(0, (pick(s)[k] || 0) - (pick(prev)[k] || 0)) : 0;
        const secs = prev ? Math.max(0.001, (s.t - prev.t) / 1000) : 1;
        out[k].push(perSecond ? Math.round((d / secs) * 10) / 10 : d);
      }
    });
    return out;
  }

  function render(o) {
    $("who").textContent = o.runtime + (o.instance ? " · instance " + o.instance : "") + " · up " + Math.round(o.uptimeMs / 1000) + " s";
    let total = 0;
    const connRows = [];
    for (const [route, byT] of Object.entries(o.connections)) for (const [t, n] of Object.entries(byT)) {
      total += n; const tr = document.createElement("tr"); cell(tr, route); cell(tr, t); cell(tr, n, "n"); connRows.push(tr);
    }
    table($("connections"), [["route"], ["transport"], ["open", "n"]], connRows);
    const tiles = $("tiles"); tiles.textContent = "";
    for (const [label, value] of [["connections", total], ["rooms", o.roomCount], ["polling sessions", o.pollSessions]]) {
      const d = document.createElement("div"); d.className = "tile"; const b = document.createElement("b"); b.textContent = String(value);
      d.appendChild(b); d.appendChild(document.createTextNode(label)); d.dataset.tile = label; tiles.appendChild(d);
    }
    const s = o.samples;
    const times = s.map((x) => x.t);
    chart("chart-messages", "legend-messages", times, deltas(s, (x) => ({ received: x.messagesIn, sent: x.messagesOut }), true));
    const transports = new Set(); for (const x of s) for (const k of Object.keys(x.connections)) transports.add(k);
    const conns = {}; for (const k of transports) conns[k] = s.map((x) => x.connections[k] || 0);
    chart("chart-connections", "legend-connections", times, conns);
    chart("chart-refused", "legend-refused", times, deltas(s, (x) => x.refused, false));
    chart("chart-closes", "legend-closes", times, deltas(s, (x) => x.closes, false));
    $("room-count").textContent = "(" + o.roomCount + (o.rooms.length < o.roomCount ? ", busiest " + o.rooms.length + " shown" : "") + ")";
    const roomRows = o.rooms.map((r) => {
      const tr = document.createElement("tr"); tr.className = "room"; tr.dataset.room = r.room;
      cell(tr, r.route); cell(tr, r.room); cell(tr, r.members, "n"); cell(tr, r.rate.toFixed(1), "n");
      tr.addEventListener("click", () => { selected = { route: r.route, room: r.room }; void tick(); });
      return tr;
    });
    table($("rooms"), [["route"], ["room"], ["members here", "n"], ["frames/s", "n"]], roomRows);
  }

  function renderRoom(r) {
    $("room-view").hidden = false;
    $("room-title").textContent = "Room " + r.route + " / " + r.room;
    $("room-meta").textContent = "seq " + r.seq + " · epoch " + (r.epoch || "—") + " · " + r.count + " members (" + r.localMembers + " on this instance)";
    table($("room-members"), [["id"], ["joined"], ["info"]], r.members.map((m) => {
      const tr = document.createElement("tr"); cell(tr, m.id); cell(tr, new Date(m.joinedAt).toLocaleTimeString());
      const pre = document.createElement("pre"); pre.textContent = m.info === undefined ? "" : JSON.stringify(m.info); cell(tr, "").appendChild(pre); return tr;
    }));
    table($("room-messages"), [["seq", "n"], ["from"], ["data"]], r.messages.slice().reverse().map((m) => {
      const tr = document.createElement("tr"); cell(tr, m.seq, "n"); cell(tr, m.from || "push");
      const pre = document.createElement("pre"); pre.textContent = JSON.stringify(m.data); cell(tr, "").appendChild(pre); return tr;
    }));
  }

  async function tick() {
    clearTimeout(timer);
    try {
      render(await api("overview"));
      if (selected) renderRoom(await api("rooms/" + encodeURIComponent(selected.route) + "/" + encodeURIComponent(selected.room)));
      $("status").textContent = "live · " + new Date().toLocaleTimeString();
      timer = setTimeout(tick, 2000);
    } catch (error) {
      if (error.status === 401) return showLogin("That token was refused.");
      $("status").textContent = "unreachable (" + error.message + "), retrying";
      timer = setTimeout(tick, 5000);
    }
  }

  function showLogin(message) {
    sessionStorage.removeItem("edgewire-inspector");
    $("main").hidden = true; $("login").hidden = false; $("error").textContent = message || "";
  }

  $("login").addEventListener("submit", (e) => {
    e.preventDefault();
    token = $("token").value.trim();
    sessionStorage.setItem("edgewire-inspector", token);
    $("login").hidden = true; $("main").hidden = false; void tick();
  });

  if (token) { $("main").hidden = false; void tick(); } else showLogin("");
})();
`;
