// Rapport's page: everything is drawn from the worker's JSON API; alerts arrive by
// server-sent events. No build step, no framework: Chart.js (vendored) draws the charts.
"use strict";

const TIER_ORDER = ["T0", "T1", "T2", "T3", "T4", "T5", "top", "upper", "base"];
const RICH_CLUB_KS = [5, 10, 20, 50, 100, 200];
const REFRESH_MS = 30000;
const PALETTE = ["#2563eb", "#16a34a", "#f59e0b", "#dc2626", "#7c3aed", "#0891b2", "#db2777",
  "#65a30d", "#9ca3af"];
const charts = {};

Chart.defaults.animation = false;
Chart.defaults.maintainAspectRatio = false;
Chart.defaults.font.family = getComputedStyle(document.body).fontFamily;

// --- small helpers ---

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === "class") node.className = v;
    else if (k === "dataset") Object.assign(node.dataset, v);
    else node.setAttribute(k, v);
  }
  for (const child of children.flat()) {
    if (child !== null && child !== undefined) node.append(child);
  }
  return node;
}

async function api(path, params = {}) {
  const query = new URLSearchParams(Object.entries(params).filter(([, v]) => v !== null && v !== ""));
  const response = await fetch(query.toString() ? `${path}?${query}` : path);
  const body = await response.json();
  if (!response.ok) throw new Error(body.error || response.statusText);
  return body;
}

const pct = (x) => (x === null || x === undefined ? null : Math.round(x * 1000) / 10);
const fmtPct = (x) => (x === null || x === undefined ? "–" : `${pct(x)}%`);
const fmtNum = (x) => (x === null || x === undefined ? "–" : Number(x).toLocaleString("en"));
const fmtTime = (ms) => new Date(ms).toISOString().slice(0, 16).replace("T", " ") + " UTC";

function fmtWindow(start, end) {
  const a = fmtTime(start), b = fmtTime(end);
  return a.slice(0, 10) === b.slice(0, 10) ? `${a.slice(0, 16)}–${b.slice(11)}` : `${a} – ${b}`;
}

function fmtSeconds(s) {
  if (s === null || s === undefined) return "–";
  if (s < 60) return `${Math.round(s)} s`;
  if (s < 3600) return `${Math.round(s / 60)} min`;
  if (s < 86400) return `${(s / 3600).toFixed(1)} h`;
  return `${(s / 86400).toFixed(1)} d`;
}

function tierSort(a, b) {
  const ia = TIER_ORDER.indexOf(a), ib = TIER_ORDER.indexOf(b);
  return (ia < 0 ? 99 : ia) - (ib < 0 ? 99 : ib) || String(a).localeCompare(String(b));
}

function draw(id, config) {
  if (charts[id]) charts[id].destroy();
  charts[id] = new Chart(document.getElementById(id), config);
  return charts[id];
}

function settle(cardId, promise) {
  const card = document.getElementById(cardId);
  card.dataset.state = "loading";
  return promise.then(
    () => { card.dataset.state = "ready"; card.querySelector(".error")?.remove(); },
    (err) => {
      card.dataset.state = "error";
      card.querySelector(".error")?.remove();
      card.append(el("p", { class: "error" }, `Could not load: ${err.message}`));
    },
  );
}

const percentAxis = { min: 0, max: 100, ticks: { callback: (v) => `${v}%` } };
const windowParam = () => document.getElementById("window").value;

// --- alerts (live) ---

function renderAlert(alert) {
  const ev = alert.evidence || {};
  const counts = Object.entries(ev.counts || {}).sort().map(([k, v]) => `${k.replaceAll("_", " ")} ${fmtNum(v)}`);
  const sample = ev.url || ev.text_sample;
  const severity = String(alert.severity).toLowerCase();
  return el("li", { class: `alert ${severity}`, dataset: { alertId: alert.alert_id, rule: alert.rule, actor: alert.actor } },
    el("div", { class: "alert-head" },
      el("span", { class: `badge ${severity}` }, `${alert.rule} ${severity.toUpperCase()}`),
      el("a", { class: "actor", href: `/accounts/${encodeURIComponent(alert.actor)}` }, alert.actor),
      el("span", { class: "when" }, `window ${fmtWindow(alert.window_start, alert.window_end)}`)),
    el("div", { class: "detail" }, ev.detail || ""),
    counts.length ? el("div", { class: "counts" }, counts.join(" · ")) : null,
    sample ? el("div", { class: "sample" }, "sample: ", el("code", {}, sample.slice(0, 160))) : null,
    (ev.sample_event_ids || []).length
      ? el("div", { class: "events" }, "events: ", (ev.sample_event_ids || []).slice(0, 5).join(", "))
      : null);
}

function showAlert(list, alert) {
  // an alert whose evidence grew comes again with the same id: replace it, keep newest first
  list.querySelector(`li[data-alert-id="${CSS.escape(alert.alert_id)}"]`)?.remove();
  const item = renderAlert(alert);
  item.dataset.lastSeen = alert.last_seen;
  const after = [...list.children].find((li) => Number(li.dataset.lastSeen) < alert.last_seen);
  list.insertBefore(item, after || null);
  item.classList.add("new");
  setTimeout(() => item.classList.remove("new"), 4000);
  list.closest(".card").classList.add("has-alerts");
}

function followAlerts(list, params = {}) {
  const status = document.getElementById("live");
  const query = new URLSearchParams(params).toString();
  const source = new EventSource(`/api/alerts/stream${query ? `?${query}` : ""}`);
  source.onopen = () => {
    status.textContent = "live";
    status.className = "status on";
    list.closest(".card").dataset.state = "ready";
  };
  source.onerror = () => { status.textContent = "reconnecting…"; status.className = "status off"; };
  source.addEventListener("alert", (e) => showAlert(list, JSON.parse(e.data)));
  return source;
}

// --- overview ---

async function responsiveness() {
  const report = await api("/api/reports/responsiveness", { window: windowParam() });
  const tiers = [...report.by_tier].sort((a, b) => tierSort(a.tier, b.tier));
  draw("by-tier", {
    type: "bar",
    data: {
      labels: tiers.map((t) => t.tier),
      datasets: [
        { label: "answered ≤15 min", data: tiers.map((t) => pct(t.rate_15m)), backgroundColor: PALETTE[1] },
        { label: "answered ≤1 h", data: tiers.map((t) => pct(t.rate_1h)), backgroundColor: PALETTE[0] },
        { label: "answered (any time)", data: tiers.map((t) => pct(t.rate)), backgroundColor: PALETTE[4] },
      ],
    },
    options: { scales: { y: percentAxis } },
  });
  const table = document.getElementById("by-tier-table");
  table.replaceChildren(
    el("tr", {}, ["tier", "inbound", "answered", "rate", "p50", "p90"].map((h) => el("th", {}, h))),
    ...tiers.map((t) => el("tr", {},
      el("td", {}, t.tier), el("td", {}, fmtNum(t.inbound)), el("td", {}, fmtNum(t.answered)),
      el("td", {}, fmtPct(t.rate)), el("td", {}, fmtSeconds(t.p50_s)), el("td", {}, fmtSeconds(t.p90_s)))));

  const cells = report.by_requester_tier;
  const responders = [...new Set(cells.map((c) => c.responder_tier))].sort(tierSort);
  const requesters = [...new Set(cells.map((c) => c.requester_tier))].sort(tierSort);
  draw("by-requester", {
    type: "bar",
    data: {
      labels: responders,
      datasets: requesters.map((rq, i) => ({
        label: `asked by ${rq}`,
        backgroundColor: PALETTE[i % PALETTE.length],
        data: responders.map((rs) => {
          const c = cells.find((x) => x.responder_tier === rs && x.requester_tier === rq);
          return c ? pct(c.rate) : null;
        }),
      })),
    },
    options: { scales: { y: percentAxis, x: { title: { display: true, text: "responder tier" } } } },
  });
}

// Writes each cell's count in the heat map (the matrix chart draws only colours).
const cellLabels = {
  id: "cellLabels",
  afterDatasetsDraw(chart) {
    const { ctx } = chart;
    const meta = chart.getDatasetMeta(0);
    ctx.save();
    ctx.textAlign = "center";
    ctx.textBaseline = "middle";
    ctx.font = "12px sans-serif";
    meta.data.forEach((cell, i) => {
      const d = chart.data.datasets[0].data[i];
      const { x, y, width, height } = cell.getProps(["x", "y", "width", "height"], true);
      ctx.fillStyle = d.v > 0.5 ? "#fff" : "#111";
      ctx.fillText(fmtNum(d.n), x + width / 2, y + height / 2);
    });
    ctx.restore();
  },
};

async function mixing() {
  const report = await api("/api/reports/tiers", { window: windowParam() });
  const tiers = [...new Set(report.mixing.flatMap((m) => [m.src_tier, m.dst_tier]))].sort(tierSort);
  const data = report.mixing.map((m) => ({ x: m.dst_tier, y: m.src_tier, v: m.share_of_src, n: m.n }));
  draw("mixing", {
    type: "matrix",
    data: {
      datasets: [{
        label: "share of the row",
        data,
        backgroundColor: (c) => `rgba(37, 99, 235, ${0.08 + 0.92 * (c.raw?.v || 0)})`,
        borderColor: "#fff",
        borderWidth: 1,
        width: ({ chart }) => (chart.chartArea || {}).width / Math.max(tiers.length, 1) - 1,
        height: ({ chart }) => (chart.chartArea || {}).height / Math.max(tiers.length, 1) - 1,
      }],
    },
    options: {
      plugins: {
        legend: { display: false },
        tooltip: { callbacks: {
          title: () => "",
          label: (c) => `${c.raw.y} → ${c.raw.x}: ${fmtNum(c.raw.n)} (${fmtPct(c.raw.v)} of ${c.raw.y})`,
        } },
      },
      scales: {
        x: { type: "category", labels: tiers, offset: true, grid: { display: false }, title: { display: true, text: "to tier" } },
        // the matrix controller reverses y by default; rows read top-down, like a table
        y: { type: "category", labels: tiers, offset: true, reverse: false, grid: { display: false }, title: { display: true, text: "from tier" } },
      },
    },
    plugins: [cellLabels],
  });
}

async function richClub() {
  const win = windowParam();
  const reports = await Promise.all(RICH_CLUB_KS.map((k) => api("/api/reports/rich-club", { window: win, limit: k })));
  const points = reports.map((r) => r.summary).filter((s, i, all) => i === 0 || s.k > all[i - 1].k);
  draw("rich-club", {
    type: "line",
    data: {
      labels: points.map((s) => s.k),
      datasets: [
        { label: "φ(k): density among the top k", data: points.map((s) => s.phi), borderColor: PALETTE[0], backgroundColor: PALETTE[0], yAxisID: "phi" },
        { label: "ρ_rc(k): φ over what chance gives", data: points.map((s) => s.rho_rc), borderColor: PALETTE[3], backgroundColor: PALETTE[3], yAxisID: "rho" },
      ],
    },
    options: {
      scales: {
        x: { title: { display: true, text: "k (top accounts)" } },
        phi: { position: "left", min: 0, title: { display: true, text: "φ" } },
        rho: { position: "right", min: 0, grid: { drawOnChartArea: false }, title: { display: true, text: "ρ_rc (1 = chance)" } },
      },
    },
  });
  const top = reports[RICH_CLUB_KS.indexOf(20)].summary;
  document.getElementById("rich-club-summary").textContent = top.rho_rc === null
    ? "Not enough data for a rich club yet."
    : `Top ${top.k}: ${fmtNum(top.pairs_among_top)} directed pairs among them, φ = ${top.phi}, ρ_rc = ${top.rho_rc}`
      + (top.closed_club ? " — a closed club (more than chance)." : " — no closed club.");
}

function overview() {
  document.getElementById("overview").hidden = false;
  document.title = "Rapport — live";
  followAlerts(document.getElementById("alerts"));
  const refresh = () => Promise.all([
    settle("by-tier-card", responsiveness()).then(() => document.getElementById("by-requester-card").dataset.state = "ready"),
    settle("mixing-card", mixing()),
    settle("rich-club-card", richClub()),
  ]);
  document.getElementById("window").addEventListener("change", refresh);
  refresh();
  setInterval(refresh, REFRESH_MS);
}

// --- one account ---

function tile(label, value) {
  return el("div", { class: "tile" }, el("span", { class: "value" }, value), el("span", { class: "label" }, label));
}

async function accountReport(name) {
  const report = await api("/api/reports/account", { account: name, window: windowParam() });
  const s = report.summary;
  document.getElementById("account-tier").textContent = `tier ${s.tier}${s.followers !== null && s.followers !== undefined ? ` · ${fmtNum(s.followers)} followers` : ""}`;
  document.getElementById("account-tiles").replaceChildren(
    tile("inbound", fmtNum(s.inbound)), tile("answered", fmtNum(s.answered)),
    tile("response rate", fmtPct(s.rate)), tile("answered ≤1 h", fmtPct(s.rate_1h)),
    tile("latency p50", fmtSeconds(s.p50_s)), tile("latency p90", fmtSeconds(s.p90_s)),
    tile("reciprocity", s.reciprocity === null || s.reciprocity === undefined ? "–" : fmtPct(s.reciprocity)),
    tile("given / taken", `${fmtNum(s.given)} / ${fmtNum(s.taken)}`),
    tile("give/take ratio", s.give_take === null || s.give_take === undefined ? "–" : String(s.give_take)));
  const days = report.days.map((d) => [d.day_start_ms, d]);  // one row per day, in order
  draw("account-days", {
    data: {
      labels: days.map(([start]) => fmtTime(start).slice(0, 10)),
      datasets: [
        { type: "line", label: "response rate", data: days.map(([, d]) => (d.inbound ? pct(d.answered / d.inbound) : null)), borderColor: PALETTE[0], backgroundColor: PALETTE[0], yAxisID: "rate" },
        { type: "bar", label: "inbound", data: days.map(([, d]) => d.inbound), backgroundColor: "#cbd5e1", yAxisID: "n" },
      ],
    },
    options: { scales: { rate: { ...percentAxis, position: "left" }, n: { position: "right", min: 0, grid: { drawOnChartArea: false } } } },
  });
  const cells = [...report.by_requester_tier].sort((a, b) => tierSort(a.requester_tier, b.requester_tier));
  draw("account-requester", {
    type: "bar",
    data: {
      labels: cells.map((c) => c.requester_tier),
      datasets: [{ label: "response rate", data: cells.map((c) => pct(c.rate)), backgroundColor: PALETTE[1] }],
    },
    options: { scales: { y: percentAxis, x: { title: { display: true, text: "requester tier" } } } },
  });
}

async function accountLatency(name) {
  const hist = await api("/api/latency", { account: name });
  draw("account-latency", {
    type: "bar",
    data: {
      labels: hist.bins.map((b) => b.label),
      datasets: [{ label: "answered messages", data: hist.bins.map((b) => b.answered), backgroundColor: PALETTE[5] }],
    },
    options: { plugins: { legend: { display: false } }, scales: { y: { min: 0, ticks: { precision: 0 } } } },
  });
}

function account(name) {
  document.getElementById("account").hidden = false;
  document.title = `Rapport — ${name}`;
  document.getElementById("account-name").textContent = name;
  document.getElementById("search-input").value = name;
  // its alerts: the stored ones, then new ones as they come (the stream filtered by actor)
  followAlerts(document.getElementById("account-alerts"), { account: name });
  const load = () => Promise.all([
    settle("account-days-card", accountReport(name))
      .then(() => document.getElementById("account-requester-card").dataset.state = "ready"),
    settle("account-latency-card", accountLatency(name)),
  ]);
  document.getElementById("window").addEventListener("change", load);
  load();
}

// --- search ---

function search() {
  const input = document.getElementById("search-input");
  const hits = document.getElementById("search-hits");
  let timer = null;
  input.addEventListener("input", () => {
    clearTimeout(timer);
    const text = input.value.trim();
    if (!text) return;
    timer = setTimeout(async () => {
      const found = await api("/api/accounts", { q: text }).catch(() => ({ accounts: [] }));
      hits.replaceChildren(...found.accounts.map((a) => el("option", { value: a.account }, `${fmtNum(a.interactions)} interactions`)));
    }, 250);
  });
  document.getElementById("search").addEventListener("submit", (e) => {
    e.preventDefault();
    const name = input.value.trim();
    if (name) window.location.assign(`/accounts/${encodeURIComponent(name)}`);
  });
}

search();
const match = window.location.pathname.match(/^\/accounts\/(.+)$/);
if (match) account(decodeURIComponent(match[1]));
else overview();
