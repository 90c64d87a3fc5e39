// Zeb web page: draws the state the server sends and posts the human's moves. Every rule lives on the server.
"use strict";

const SEATS = ["You", "Left", "Partner", "Right"];
const DECLS = ["blanks", "ones", "twos", "threes", "fours", "fives", "sixes", "doubles-trump", "doubles-suit", "no-trump"];
const PIECES = [];
for (let h = 0; h <= 6; h++) for (let l = 0; l <= h; l++) PIECES.push([h, l]);
const COUNT = { 20: 10, 25: 10, 15: 5, 11: 5, 8: 5 };
const name = (d) => `${PIECES[d][0]}-${PIECES[d][1]}`;
const $ = (sel) => document.querySelector(sel);

let game = null;
let busy = false;
let replayIndex = 0;

// ---------------------------------------------------------------- drawing dominoes
const PIPS = {
  0: [], 1: [[.5, .5]], 2: [[.27, .27], [.73, .73]], 3: [[.27, .27], [.5, .5], [.73, .73]],
  4: [[.27, .27], [.73, .27], [.27, .73], [.73, .73]],
  5: [[.27, .27], [.73, .27], [.5, .5], [.27, .73], [.73, .73]],
  6: [[.27, .22], [.73, .22], [.27, .5], [.73, .5], [.27, .78], [.73, .78]],
};

function svgEl(tag, attrs) {
  const el = document.createElementNS("http://www.w3.org/2000/svg", tag);
  for (const [k, v] of Object.entries(attrs)) el.setAttribute(k, v);
  return el;
}

/** An SVG domino, high half on top (or left when `horizontal`). */
function dominoSVG(d, horizontal = false) {
  const [hi, lo] = PIECES[d];
  const w = 50, h = 100;
  const svg = svgEl("svg", { viewBox: horizontal ? `0 0 ${h} ${w}` : `0 0 ${w} ${h}`, class: "domino-svg", "aria-hidden": "true" });
  const g = svgEl("g", horizontal ? { transform: `rotate(-90 ${w / 2} ${w / 2})` } : {});
  // rotate(-90) about (25,25) maps the vertical piece onto [0,100]x[0,50] with the high half on the left
  g.appendChild(svgEl("rect", { x: 1.5, y: 1.5, width: w - 3, height: h - 3, rx: 7, class: "face" }));
  g.appendChild(svgEl("line", { x1: 8, y1: h / 2, x2: w - 8, y2: h / 2, class: "divider" }));
  g.appendChild(svgEl("circle", { cx: w / 2, cy: h / 2, r: 2.2, class: "spinner" }));
  [[hi, 0], [lo, h / 2]].forEach(([pips, y0]) => {
    for (const [px, py] of PIPS[pips]) {
      g.appendChild(svgEl("circle", { cx: 4 + px * (w - 8), cy: y0 + 4 + py * (h / 2 - 8), r: 5, class: `pip pip-${pips}` }));
    }
  });
  svg.appendChild(g);
  return svg;
}

function dominoEl(d, { tag = "div", horizontal = false, cls = "" } = {}) {
  const el = document.createElement(tag);
  el.className = `domino ${cls}`.trim();
  el.dataset.domino = String(d);
  el.title = name(d) + (COUNT[d] ? ` (${COUNT[d]} count)` : "");
  el.setAttribute("aria-label", `domino ${name(d)}`);
  el.appendChild(dominoSVG(d, horizontal));
  return el;
}

function backsEl(n) {
  const wrap = document.createElement("div");
  wrap.className = "backs";
  for (let i = 0; i < n; i++) wrap.appendChild(Object.assign(document.createElement("span"), { className: "back" }));
  return wrap;
}

// ---------------------------------------------------------------- server calls
async function api(method, path, body) {
  const res = await fetch(path, {
    method, headers: body ? { "Content-Type": "application/json" } : {}, body: body ? JSON.stringify(body) : undefined,
  });
  const data = await res.json().catch(() => ({ error: `the server answered ${res.status}` }));
  if (!res.ok) throw new Error(data.error || `the server answered ${res.status}`);
  return data;
}

async function loadPlayers() {
  // A page opened as /?path=runs/x/model also offers that checkpoint (the server checks it).
  const paths = new URLSearchParams(location.search).getAll("path");
  const query = paths.map((p) => `path=${encodeURIComponent(p)}`).join("&");
  const data = await api("GET", "/v1/players" + (query ? `?${query}` : ""));
  for (const id of ["partner", "opponents"]) {
    const sel = document.getElementById(id);
    sel.innerHTML = "";
    for (const p of data.players) {
      const opt = new Option(p.label + (p.available ? "" : " — unavailable"), p.spec, false, p.spec === data.default);
      opt.disabled = !p.available;
      opt.title = p.available ? (p.description || p.spec) : (p.reason || "not available");
      sel.add(opt);
    }
  }
  document.getElementById("setup").title = data.note;
}

async function deal() {
  if (busy) return;
  const seedText = $("#seed").value.trim();
  const body = { partner: $("#partner").value || undefined, opponents: $("#opponents").value || undefined };
  if (seedText !== "") body.seed = Number(seedText);
  await call(() => api("POST", "/v1/games", body), true);
}

async function play(d) {
  if (busy || !game || !game.your_turn || !game.legal.includes(d)) return;
  await call(() => api("POST", `/v1/games/${game.id}/play`, { domino: d }));
}

async function call(fn, fresh = false) {
  busy = true;
  document.body.dataset.state = "busy";
  try {
    game = await fn();
    if (fresh) replayIndex = 0;
    render();
  } catch (err) {
    setStatus(err.message, true);
    document.body.dataset.state = game ? stateName() : "idle";
  } finally {
    busy = false;
    if (game) document.body.dataset.state = stateName();
  }
}

const stateName = () => (game.done ? "done" : game.your_turn ? "your-turn" : "waiting");

// ---------------------------------------------------------------- rendering
function setStatus(text, error = false) {
  const s = $("#status");
  s.textContent = text;
  s.classList.toggle("error", error);
}

function render() {
  const g = game;
  const table = $("#table");
  table.dataset.gameId = g.id;
  table.dataset.seed = String(g.seed);
  table.dataset.nPlays = String(g.n_plays);
  renderSeats(g);
  renderTrick(g);
  renderHand(g);
  renderContract(g);
  renderScore(g);
  renderLog(g);
  renderResult(g);
  if (g.done) setStatus(g.result.summary);
  else if (g.your_turn) setStatus(g.trick.length ? `Your turn — follow ${ledText(g)}.` : "Your lead — play any domino.");
  else setStatus(`Waiting for ${SEATS[g.to_move]}…`);
}

function ledText(g) {
  const lead = g.trick[0][1];
  const decl = g.contract.decl;
  const [hi, lo] = PIECES[lead];
  const called = decl <= 6 ? hi === decl || lo === decl : decl <= 8 ? hi === lo : false;
  if (called) return decl <= 6 ? `trumps (${DECLS[decl]})` : "doubles";
  return `${hi}s`;
}

function renderSeats(g) {
  for (let s = 0; s < 4; s++) {
    const el = document.getElementById(`seat-${s}`);
    el.innerHTML = "";
    el.classList.toggle("to-move", !g.done && g.to_move === s);
    el.classList.toggle("bidder", g.contract.bidder === s);
    const label = document.createElement("div");
    label.className = "seat-label";
    const who = s === 0 ? "You" : `${SEATS[s]} <span class="bot">${escapeHtml(shortSpec(g.bots[String(s)]))}</span>`;
    label.innerHTML = `<span class="team-dot team${s % 2}"></span>${who}` + (g.contract.bidder === s ? ` <span class="badge">bid ${g.contract.bid}</span>` : "");
    el.appendChild(label);
    if (s !== 0) el.appendChild(backsEl(g.hand_counts[s]));
  }
}

function shortSpec(spec) {
  if (!spec) return "";
  if (spec.startsWith("store:")) return "store " + ((spec.match(/which=(\w+)/) || [])[1] || "latest");
  if (spec.startsWith("policy:")) return "policy " + (spec.match(/path=([^,]+)/) || [, ""])[1].split("/").filter(Boolean).pop();
  return spec;
}

function escapeHtml(s) {
  return String(s).replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" })[c]);
}

function renderTrick(g, plays = null, caption = null) {
  const showing = plays || g.trick;
  const useLast = !plays && showing.length === 0 && g.last_trick;
  const list = useLast ? g.last_trick.plays : showing;
  for (const slot of document.querySelectorAll("#trick .slot")) slot.innerHTML = "";
  for (const [seat, d] of list) {
    const slot = document.querySelector(`#trick .slot-${seat}`);
    slot.appendChild(dominoEl(d, { horizontal: seat % 2 === 1, cls: useLast ? "faded" : "" }));
  }
  const cap = $("#trick-caption");
  if (caption) cap.textContent = caption;
  else if (useLast) cap.textContent = `${SEATS[g.last_trick.winner]} took the last trick (+${g.last_trick.points})`;
  else if (!list.length) cap.textContent = "";
  else cap.textContent = `Trick ${g.tricks.length + 1} of 7`;
  if (useLast) {
    const w = document.querySelector(`#trick .slot-${g.last_trick.winner} .domino`);
    if (w) w.classList.add("winner");
  }
}

function renderHand(g) {
  const hand = $("#hand");
  const focused = document.activeElement && document.activeElement.dataset ? document.activeElement.dataset.domino : null;
  hand.innerHTML = "";
  g.hand.forEach((d, i) => {
    const legal = g.your_turn && g.legal.includes(d);
    const btn = dominoEl(d, { tag: "button", cls: legal ? "legal" : "illegal" });
    btn.type = "button";
    btn.dataset.legal = legal ? "true" : "false";
    btn.dataset.index = String(i + 1);
    btn.disabled = !legal;
    btn.setAttribute("aria-label", `${i + 1}: domino ${name(d)}${legal ? "" : " (not playable now)"}`);
    const key = document.createElement("span");
    key.className = "key";
    key.textContent = String(i + 1);
    btn.appendChild(key);
    btn.addEventListener("click", () => play(d));
    hand.appendChild(btn);
  });
  const again = focused && hand.querySelector(`[data-domino="${focused}"][data-legal="true"]`);
  const first = again || hand.querySelector('[data-legal="true"]');
  if (first && g.your_turn) first.focus({ preventScroll: true });
}

function renderContract(g) {
  const c = g.contract;
  const team = c.bidder_team === 0 ? "us" : "them";
  $("#contract").innerHTML = `<h2>Contract</h2>
    <div class="contract-line"><span class="big">${c.bid}</span><span class="decl">${escapeHtml(c.decl_name)}</span></div>
    <p class="muted"><strong>${SEATS[c.bidder]}</strong> bid (${team}) and led first${g.seed !== null ? ` · seed <code>${g.seed}</code>` : ""}</p>`;
  $("#contract").dataset.decl = String(c.decl);
}

function renderScore(g) {
  const [a, b] = g.team_points;
  $("#team0-points").textContent = a;
  $("#team1-points").textContent = b;
  $("#team0-tricks").textContent = g.team_tricks[0];
  $("#team1-tricks").textContent = g.team_tricks[1];
  $("#bar0").style.width = `${(a / 42) * 100}%`;
  $("#bar1").style.width = `${(b / 42) * 100}%`;
  const last = $("#last-trick");
  last.innerHTML = "";
  if (g.last_trick) {
    const t = g.last_trick;
    last.innerHTML = `<span class="muted">Last trick: <strong>${SEATS[t.winner]}</strong> +${t.points}</span>`;
    const row = document.createElement("div");
    row.className = "mini-row";
    for (const [seat, d] of t.plays) row.appendChild(dominoEl(d, { cls: "mini" + (seat === t.winner ? " winner" : "") }));
    last.appendChild(row);
  }
}

function policyText(p) {
  if (!p.policy) return "";
  const entries = Object.entries(p.policy).sort((x, y) => y[1] - x[1]).slice(0, 4);
  const bars = entries.map(([d, q]) => `<span class="pol"><span class="pol-bar" style="width:${Math.round(q * 100)}%"></span>${name(+d)} ${Math.round(q * 100)}%</span>`).join("");
  const v = p.value !== undefined ? `<span class="val ${p.value >= 0 ? "pos" : "neg"}">value ${p.value >= 0 ? "+" : ""}${p.value.toFixed(2)}</span>` : "";
  return `<div class="thinking">${v}${bars}</div>`;
}

function renderLog(g) {
  const log = $("#log");
  log.innerHTML = "";
  g.plays.forEach((p, i) => {
    const li = document.createElement("li");
    if (i % 4 === 0) li.classList.add("trick-start");
    li.innerHTML = `<span class="who team${p.seat % 2}">${SEATS[p.seat]}</span> <span class="nm">${p.name}</span>` + (p.seat !== 0 ? policyText(p) : "");
    log.appendChild(li);
  });
  log.scrollTop = log.scrollHeight;
}

function renderResult(g) {
  const res = $("#result");
  const rep = $("#replay");
  res.hidden = rep.hidden = !g.done;
  if (!g.done) return;
  const r = g.result;
  const outcome = r.tie ? "Tie" : r.you_won ? "You won!" : "You lost";
  res.className = `card result ${r.tie ? "tie" : r.you_won ? "won" : "lost"}`;
  res.innerHTML = `<h2>Result</h2><div class="outcome">${outcome}</div>
    <p><span id="result-points">${r.team_points[0]}–${r.team_points[1]}</span> ·
    contract <strong id="result-contract">${r.contract_made ? "made" : "set"}</strong></p>
    <p class="muted">${escapeHtml(r.summary)}</p>
    <button type="button" class="primary" id="again">Deal again <kbd>N</kbd></button>`;
  res.dataset.team0 = String(r.team_points[0]);
  res.dataset.team1 = String(r.team_points[1]);
  $("#again").addEventListener("click", deal);
  renderReplay();
}

function renderReplay() {
  const g = game;
  const n = g.tricks.length;
  replayIndex = Math.max(0, Math.min(replayIndex, n - 1));
  const t = g.tricks[replayIndex];
  $("#replay-label").textContent = `Trick ${replayIndex + 1} of ${n}`;
  $("#replay-prev").disabled = replayIndex === 0;
  $("#replay-next").disabled = replayIndex === n - 1;
  let run = [0, 0];
  for (let k = 0; k <= replayIndex; k++) run[g.tricks[k].winner % 2] += g.tricks[k].points;
  const box = $("#replay-trick");
  box.innerHTML = "";
  for (const [seat, d] of t.plays) {
    const cell = document.createElement("div");
    cell.className = "replay-cell" + (seat === t.winner ? " win" : "");
    cell.appendChild(dominoEl(d, { cls: "mini" }));
    cell.appendChild(Object.assign(document.createElement("span"), { textContent: SEATS[seat] }));
    box.appendChild(cell);
  }
  box.appendChild(Object.assign(document.createElement("p"), {
    className: "muted", textContent: `${SEATS[t.winner]} ${t.winner === 0 ? "win" : "wins"} +${t.points} · running score ${run[0]}–${run[1]}`,
  }));
  const hands = $("#replay-hands");
  hands.innerHTML = "<h3>Dealt hands</h3>";
  g.result.hands.forEach((h, s) => {
    const row = document.createElement("div");
    row.className = "hand-row";
    row.appendChild(Object.assign(document.createElement("span"), { className: `who team${s % 2}`, textContent: SEATS[s] }));
    for (const d of h) {
      const played = g.tricks.slice(0, replayIndex + 1).some((tr) => tr.plays.some(([, x]) => x === d));
      row.appendChild(dominoEl(d, { cls: "mini" + (played ? " gone" : "") }));
    }
    hands.appendChild(row);
  });
  renderTrick(g, t.plays, `Replay: trick ${replayIndex + 1} — ${SEATS[t.winner]} +${t.points}`);
  const w = document.querySelector(`#trick .slot-${t.winner} .domino`);
  if (w) w.classList.add("winner");
}

function stepReplay(delta) {
  if (!game || !game.done) return;
  replayIndex += delta;
  renderReplay();
}

// ---------------------------------------------------------------- keyboard
function onKey(e) {
  if (e.target.matches("input, select, textarea") || e.ctrlKey || e.metaKey || e.altKey) return;
  const buttons = [...document.querySelectorAll('#hand [data-legal="true"]')];
  if (/^[1-7]$/.test(e.key)) {
    const btn = document.querySelector(`#hand [data-index="${e.key}"]`);
    if (btn && btn.dataset.legal === "true") btn.focus();
    e.preventDefault();
  } else if ((e.key === "ArrowRight" || e.key === "ArrowLeft") && game && game.done) {
    stepReplay(e.key === "ArrowRight" ? 1 : -1);
    e.preventDefault();
  } else if ((e.key === "ArrowRight" || e.key === "ArrowLeft") && buttons.length) {
    const i = buttons.indexOf(document.activeElement);
    const next = i < 0 ? 0 : (i + (e.key === "ArrowRight" ? 1 : buttons.length - 1)) % buttons.length;
    buttons[next].focus();
    e.preventDefault();
  } else if (e.key === "n" || e.key === "N") {
    deal();
    e.preventDefault();
  }
}

// ---------------------------------------------------------------- start
document.getElementById("setup").addEventListener("submit", (e) => { e.preventDefault(); deal(); });
document.getElementById("show-thinking").addEventListener("change", (e) => document.body.classList.toggle("thinking-on", e.target.checked));
$("#replay-prev").addEventListener("click", () => stepReplay(-1));
$("#replay-next").addEventListener("click", () => stepReplay(1));
document.addEventListener("keydown", onKey);
loadPlayers().then(deal).catch((err) => setStatus(err.message, true));
