# ruff: noqa: E501 - an embedded HTML page, not Python
"""The single HTML page of the local UI (no external assets: the Pi's LAN may have no internet)."""

PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1">
<title>HelioGrid meter</title>
<style>
body{font-family:system-ui,sans-serif;margin:1rem auto;max-width:52rem;padding:0 1rem;color:#222}
h1{font-size:1.4rem}.cards{display:grid;grid-template-columns:repeat(auto-fit,minmax(11rem,1fr));gap:.6rem}
.card{border:1px solid #ccc;border-radius:.4rem;padding:.6rem}.card b{display:block;font-size:1.5rem}
table{border-collapse:collapse;width:100%;font-size:.85rem}td,th{border-bottom:1px solid #ddd;padding:.25rem;text-align:left}
.problem{background:#fee;border:1px solid #c00;padding:.5rem;margin:.5rem 0}.mono{font-family:monospace}
button{padding:.3rem .8rem}#msg{min-height:1.2rem}.warn{background:#ffd;border:1px solid #cc0;padding:.5rem;margin:.5rem 0}
#confirm{border:2px solid #c60;padding:.6rem;margin:.5rem 0}
</style></head><body>
<h1>HelioGrid meter <span id="address" class="mono"></span></h1>
<div id="problem" class="problem" hidden></div>
<div id="gaswarn" class="warn" hidden></div>
<form id="login" hidden>Owner's code (on the Pi: <span id="codefile" class="mono"></span>):
 <input id="code" autocomplete="off" size="26"> <button>log in</button></form>
<p id="account" hidden>Logged in. <button id="logout">log out</button> Most you pay per kWh: <b id="cap">-</b></p>
<div class="cards">
 <div class="card">Power now<b id="power">-</b></div>
 <div class="card">Excess today<b id="today">-</b></div>
 <div class="card">Sold (on chain)<b id="sold">-</b></div>
 <div class="card">Token balance<b id="balance">-</b></div>
 <div class="card">Node<b id="node">-</b></div>
 <div class="card">Gas (ether)<b id="gas">-</b></div>
 <div class="card">Selling<b id="selling">-</b><button id="toggle">pause</button></div>
</div>
<h2>Selling price</h2>
<div class="cards">
 <div class="card">Ask price (on chain)<b id="ask">-</b></div>
 <div class="card">Wanted<b id="askwanted">-</b></div>
 <div class="card">New ask price (tokens / kWh; 0 = do not offer)<form id="askform"><input id="askinput" size="8">
  <button id="askset">set</button></form></div>
</div>
<p id="asknote"></p>
<h2>Automatic buying</h2>
<div class="cards" id="autobuy">
 <div class="card">Imported<b id="imported">-</b></div>
 <div class="card">Bought<b id="bought">-</b></div>
 <div class="card">Tokens spent<b id="spent">-</b></div>
 <div class="card">Uncovered<b id="uncovered">-</b></div>
 <div class="card">Spent today<b id="today_spent">-</b></div>
 <div class="card">Auto-buy<b id="auto">-</b><button id="autotoggle">turn off</button></div>
</div>
<p id="autowait"></p>
<h2>Recent transactions</h2>
<table><thead><tr><th>kind</th><th>status</th><th>total Wh / detail</th><th>nonce</th><th>hash</th></tr></thead>
<tbody id="txs"></tbody></table>
<h2>Buy energy</h2>
<table><thead><tr><th>offer</th><th>seller</th><th>kWh left</th><th>price / kWh</th><th>buy kWh</th></tr></thead>
<tbody id="offers"></tbody></table>
<div id="confirm" hidden><p id="quote"></p><button id="yes">confirm purchase</button> <button id="no">cancel</button></div>
<p id="msg"></p>
<script>
const $ = id => document.getElementById(id);
const tokens = v => v === undefined || v === null ? "-" : (Number(BigInt(v) / 10n**14n) / 1e4).toFixed(4);
let paused = false, csrf = null, quote = null, auto = null, askApplies = false;
const detailText = d => d && d.kwh === undefined && d.price_per_kwh !== undefined ? "ask " + tokens(d.price_per_kwh) + " / kWh" : d && d.kwh !== undefined ? (d.auto ? "auto: " : "") + d.kwh + " kWh, offer " + d.offer_id +
  ", " + tokens(String(d.cost)) + " tokens" : JSON.stringify(d);
function cell(row, text, cls) { const td = row.insertCell(); td.textContent = text; if (cls) td.className = cls; }
async function post(path, body) {
  const headers = {"Content-Type": "application/json"}; if (csrf) headers["X-CSRF-Token"] = csrf;
  const r = await fetch(path, {method: "POST", headers, body: JSON.stringify(body), credentials: "same-origin"});
  const data = await r.json(); $("msg").textContent = r.ok ? "" : data.error;
  if (r.status === 401) session(); refresh(); return r.ok ? data : null;
}
async function session() {
  const s = await (await fetch("/api/session", {credentials: "same-origin"})).json();
  csrf = s.logged_in ? s.csrf : null; $("login").hidden = s.logged_in; $("account").hidden = !s.logged_in;
  $("codefile").textContent = "sudo cat " + (s.code_file || ""); $("toggle").disabled = !s.logged_in;
  $("autotoggle").disabled = !s.logged_in || !(auto && auto.available); $("askset").disabled = !s.logged_in || !askApplies;
  $("cap").textContent = s.max_price_per_kwh === "0" ? "buying is off (buy.max_price_per_kwh)" : tokens(s.max_price_per_kwh) + " / kWh";
}
$("login").onsubmit = async e => { e.preventDefault(); const d = await post("/api/login", {code: $("code").value});
  $("code").value = ""; if (d) session(); };
$("logout").onclick = async () => { await post("/api/logout", {}); session(); };
async function ask(offer, kwh) {
  const q = await post("/api/buy/quote", {offer_id: offer, kwh}); if (!q) return; quote = q.quote;
  $("quote").textContent = "Buy " + q.kwh + " kWh from offer " + q.offer_id + " at " + tokens(q.price_per_kwh) +
    " tokens per kWh: " + tokens(q.total) + " tokens in all. Valid " + q.expires_in + " s."; $("confirm").hidden = false;
}
$("yes").onclick = async () => { $("confirm").hidden = true; const d = await post("/api/buy", {quote});
  quote = null; if (d) $("msg").textContent = "sent: " + d.transactions.join(", "); };
$("no").onclick = () => { quote = null; $("confirm").hidden = true; };
async function refresh() {
  const s = await (await fetch("/api/status")).json();
  $("address").textContent = s.address || "";
  $("power").textContent = s.power_watts.toFixed(0) + " W";
  $("today").textContent = s.today_kwh.toFixed(3) + " kWh";
  $("sold").textContent = s.sold_kwh === null || s.sold_kwh === undefined ? "-" : s.sold_kwh + " kWh";
  const b = s.balances || {}; $("balance").textContent = tokens(b.owner ?? b.meter);
  const n = s.node || {}; $("node").textContent = !n.up ? "unreachable" : (n.syncing ? "syncing" : "in sync") +
      " #" + n.block + (n.peers === null ? "" : " / " + n.peers + " peers");
  paused = s.selling_paused; $("selling").textContent = paused ? "paused" : "on";
  $("toggle").textContent = paused ? "resume" : "pause";
  $("problem").hidden = !s.problem; $("problem").textContent = s.problem || "";
  const g = s.gas || {}; $("gas").textContent = g.ether_wei ? tokens(g.ether_wei) : "-";
  $("gaswarn").hidden = !g.low; $("gaswarn").textContent = "Low on gas: the meter's ether pays " + g.transactions_left + " more transactions.";
  const k = s.ask_price || {}; askApplies = !!k.applies; $("askset").disabled = !csrf || !askApplies;
  $("ask").textContent = k.on_chain ? (k.on_chain === "0" ? "not offering" : tokens(k.on_chain) + " / kWh") : "-";
  $("askwanted").textContent = k.wanted ? tokens(k.wanted) + " (" + k.source + (k.in_flight ? ", sending" : "") + ")" : "-";
  $("asknote").textContent = k.note || "";
  auto = s.auto_buy || null; const a = auto || {};
  $("imported").textContent = a.imported_kwh === null || a.imported_kwh === undefined ? "-" : a.imported_kwh.toFixed(3) + " kWh";
  $("bought").textContent = auto ? a.bought_kwh + " kWh" : "-"; $("spent").textContent = auto ? tokens(a.tokens_spent) : "-";
  $("uncovered").textContent = a.uncovered_kwh === null || a.uncovered_kwh === undefined ? "-" : a.uncovered_kwh + " kWh";
  $("today_spent").textContent = auto ? tokens(a.spent_today) + " of " + tokens(a.daily_budget) : "-";
  $("auto").textContent = !auto ? "-" : !a.available ? "off (buy.auto)" : a.enabled ? "on" : "off";
  $("autotoggle").textContent = a.enabled ? "turn off" : "turn on"; $("autotoggle").disabled = !csrf || !a.available;
  $("autowait").textContent = a.waiting ? "Not buying now: " + a.waiting : "";
  const txs = $("txs"); txs.replaceChildren();
  for (const t of s.transactions) { const r = txs.insertRow(); cell(r, t.kind); cell(r, t.status + (t.error ? " (" + t.error + ")" : ""));
    cell(r, t.total_wh ?? detailText(t.detail)); cell(r, t.nonce); cell(r, t.hash.slice(0, 18) + "…", "mono"); }
}
async function offers() {
  const r = await fetch("/api/offers"); if (!r.ok) return; const list = await r.json(); const body = $("offers"); body.replaceChildren();
  for (const o of list) { const r = body.insertRow(); cell(r, o.id); cell(r, o.seller.slice(0, 10) + "…", "mono");
    cell(r, o.remaining_kwh); cell(r, tokens(o.price_per_kwh));
    const td = r.insertCell(); const input = document.createElement("input"); input.type = "number"; input.min = 1;
    input.max = o.remaining_kwh; input.value = 1; input.style.width = "4rem"; const btn = document.createElement("button");
    btn.textContent = "buy…"; btn.disabled = !o.within_cap; btn.title = o.within_cap ? "" : "above the owner's cap";
    btn.onclick = () => ask(o.id, parseInt(input.value, 10));
    td.append(input, btn); }
}
$("toggle").onclick = () => post("/api/selling", {paused: !paused});
$("askform").onsubmit = async e => { e.preventDefault(); if (await post("/api/ask-price", {price_per_kwh: $("askinput").value.trim()})) $("askinput").value = ""; };
$("autotoggle").onclick = () => post("/api/auto-buy", {on: !(auto && auto.enabled)});
session(); refresh(); offers(); setInterval(refresh, 5000); setInterval(offers, 30000);
</script></body></html>
"""
