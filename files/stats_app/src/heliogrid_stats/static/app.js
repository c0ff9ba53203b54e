// HelioGrid stats page: renders the summary JSON and refreshes it by polling /api/v1/summary.
// No framework and nothing fetched from outside this server.
"use strict";

const SVG = "http://www.w3.org/2000/svg";

function text(id, value) {
  const el = document.getElementById(id);
  if (el) el.textContent = value === null || value === undefined ? "–" : String(value);
}

function ago(seconds) {
  if (!seconds) return "never";
  const d = Math.max(0, Math.round(Date.now() / 1000 - seconds));
  if (d < 90) return d + " s ago";
  if (d < 5400) return Math.round(d / 60) + " min ago";
  if (d < 172800) return Math.round(d / 3600) + " h ago";
  return new Date(seconds * 1000).toISOString().slice(0, 16).replace("T", " ");
}

// Token base units (18 decimals, a decimal string) as whole tokens, exactly.
function tokens(base) {
  const v = BigInt(base), unit = 10n ** 18n;
  const frac = (v % unit).toString().padStart(18, "0").replace(/0+$/, "");
  return (v / unit).toString() + (frac ? "." + frac : "");
}

// A price in whole tokens to 4 decimals, rounded half up: an average price can have all 18.
function price(base) {
  const step = 10n ** 14n;
  return tokens(((BigInt(base) + step / 2n) / step * step).toString());
}

function short(address) { return address ? address.slice(0, 10) + "…" : ""; }

function cell(row, value, cls) {
  const td = document.createElement("td");
  if (cls) td.className = cls;
  td.textContent = value === null || value === undefined ? "–" : String(value);
  row.appendChild(td);
  return td;
}

function fillTable(id, items, render) {
  const body = document.querySelector("#" + id + " tbody");
  if (!body) return;
  const rows = items.map((item) => { const tr = document.createElement("tr"); render(tr, item); return tr; });
  body.replaceChildren(...rows);
}

function barChart(id, points, value, label, cls, tick) {
  const box = document.getElementById(id);
  if (!box) return;
  if (!points.length) { box.innerHTML = '<p class="empty">No data yet</p>'; return; }
  const w = 600, h = 160, pad = 16, head = 14;
  const max = Math.max(...points.map(value), 1e-9);
  const bw = (w - 2) / points.length;
  const svg = document.createElementNS(SVG, "svg");
  svg.setAttribute("viewBox", `0 0 ${w} ${h}`);
  svg.setAttribute("preserveAspectRatio", "none");
  points.forEach((p, i) => {
    const v = value(p), bh = (h - pad - head) * v / max;
    const r = document.createElementNS(SVG, "rect");
    r.setAttribute("class", "bar " + (cls || ""));
    r.setAttribute("x", (1 + i * bw + bw * 0.1).toFixed(1));
    r.setAttribute("width", (bw * 0.8).toFixed(1));
    r.setAttribute("y", (h - pad - bh).toFixed(1));
    r.setAttribute("height", bh.toFixed(1));
    const t = document.createElementNS(SVG, "title");
    t.textContent = label(p) + ": " + v;
    r.appendChild(t);
    svg.appendChild(r);
    if (tick && points.length <= 48 && i % Math.ceil(points.length / 12) === 0) {
      const t2 = document.createElementNS(SVG, "text");
      t2.setAttribute("x", (1 + i * bw + bw * 0.1).toFixed(1)); t2.setAttribute("y", String(h - 3));
      t2.textContent = tick(p, i);
      svg.appendChild(t2);
    }
  });
  const top = document.createElementNS(SVG, "text");
  top.setAttribute("x", "2"); top.setAttribute("y", "10");
  top.textContent = "max " + Math.round(max * 1000) / 1000;
  svg.appendChild(top);
  box.replaceChildren(svg);
}

function utcDay(seconds) { return new Date(seconds * 1000).toISOString().slice(5, 10); }
function utcHour(seconds) { return new Date(seconds * 1000).toISOString().slice(11, 16); }

function renderMarket(m) {
  text("open-offers", m.open_offers);
  text("open-kwh", m.open_kwh);
  text("best-price", m.best_price === null ? null : tokens(m.best_price));
  text("average-price", m.average_price === null ? null : price(m.average_price));
  text("cancelled-kwh", m.cancelled_kwh);
  text("offers-cancelled", m.offers_cancelled);
  fillTable("depth", m.depth, (tr, d) => {
    tr.dataset.price = d.price;
    cell(tr, d.price_display, "num"); cell(tr, d.open_kwh, "num"); cell(tr, d.offers, "num");
  });
  // Hours and days without trades have no bucket: each bar is labelled with its own time.
  // A tick names the day when it changes, so hours of two days cannot be confused.
  barChart("price-chart", m.hourly, (p) => Number(p.average_price_display),
    (p) => utcDay(p.start) + " " + utcHour(p.start) + " UTC, " + p.kwh + " kWh", "",
    (p, i) => (i === 0 || utcDay(p.start) !== utcDay(m.hourly[i - 1].start) ? utcDay(p.start) + " " : "") + utcHour(p.start));
  barChart("volume-chart", m.daily, (p) => p.kwh,
    (p) => utcDay(p.start) + " UTC, average " + p.average_price_display, "alt", (p) => utcDay(p.start));
}

function render(s) {
  const n = s.network, e = s.energy;
  text("produced-kwh", e.produced_kwh.toFixed(3));
  text("sold-kwh", e.sold_kwh);
  text("tokens-minted", e.tokens_minted_display);
  text("bought-kwh", e.bought_kwh);
  text("head", n.head);
  text("indexed", n.indexed);
  text("block-time", n.average_block_time === null ? null : n.average_block_time.toFixed(2));
  text("pending", n.pending_transactions);
  text("meter-count", e.meters);
  text("active-meters", e.active_meters);
  text("inturn", n.inturn_percent === null ? null : n.inturn_percent.toFixed(1));
  text("updated", n.updated ? ago(n.updated) : "never");
  fillTable("sales", s.recent_sales, (tr, x) => {
    cell(tr, ago(x.timestamp)).dataset.time = x.timestamp; cell(tr, x.offer_id);
    cell(tr, short(x.buyer)).title = x.buyer; cell(tr, short(x.seller)).title = x.seller;
    cell(tr, x.kwh, "num"); cell(tr, tokens(x.price), "num"); cell(tr, tokens(x.cost), "num");
  });
  renderMarket(s.market);
  fillTable("top", s.top_producers, (tr, m) => {
    cell(tr, short(m.address)).title = m.address; cell(tr, short(m.owner)); cell(tr, m.produced_kwh.toFixed(3), "num");
  });
  fillTable("meters", s.meters, (tr, m) => {
    tr.dataset.meter = m.address;
    cell(tr, short(m.address)).title = m.address; cell(tr, m.capacity_watts, "num");
    const total = cell(tr, m.produced_kwh.toFixed(3), "num");
    total.dataset.col = "total-wh"; total.dataset.value = String(m.total_wh);
    cell(tr, m.credited_kwh, "num");
    const bought = cell(tr, m.bought_kwh, "num");
    bought.dataset.col = "bought-kwh"; bought.dataset.value = String(m.bought_kwh);
    cell(tr, ago(m.last_report_at)).dataset.time = m.last_report_at || "";
    cell(tr, m.active ? "yes" : "no");
  });
  fillTable("signers", n.signers, (tr, g) => {
    cell(tr, short(g.address)).title = g.address; cell(tr, g.authorised === null ? null : (g.authorised ? "yes" : "no"));
    cell(tr, g.last_block, "num"); cell(tr, g.recent_blocks, "num");
  });
  text("node-count", s.nodes.filter((x) => x.online).length + " of " + s.nodes.length + " online");
  fillTable("nodes", s.nodes, (tr, x) => {
    tr.dataset.node = x.id;
    cell(tr, x.id); cell(tr, x.online ? "online" : "offline " + ago(x.last_seen)); cell(tr, x.head, "num");
    cell(tr, x.peers, "num"); cell(tr, x.latency_ms, "num"); cell(tr, x.client);
  });
  barChart("hourly-chart", s.hourly, (p) => p.produced_wh / 1000,
    (p) => new Date(p.hour * 1000).toISOString().slice(11, 16) + " UTC", "",
    (p) => new Date(p.hour * 1000).toISOString().slice(11, 16));
  barChart("gas-chart", n.recent_blocks.slice().reverse(), (b) => b.gas_used, (b) => "block " + b.number, "alt");
  document.body.dataset.rendered = String(Date.now());
}

async function refresh() {
  try {
    const r = await fetch("/api/v1/summary", { cache: "no-store" });
    if (r.ok) render(await r.json());
  } catch (err) {
    text("updated", "offline, retrying");
  }
}

document.addEventListener("DOMContentLoaded", () => {
  const initial = document.getElementById("initial");
  if (initial) render(JSON.parse(initial.textContent));
  const every = 1000 * (parseFloat(document.body.dataset.refresh) || 5);
  setInterval(refresh, every);
});
