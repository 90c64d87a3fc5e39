// Zeb web page: draws the state the server sends and posts the human's moves. Every rule lives on the server.
"use strict";

const SEATS = ["You", "Left", "Partner", "Right"];
const DECLS = ["blanks", "ones", "twos", "threes", "fours", "fives", "sixes", "doubles-trump", "doubles-suit", "no-trump"];
const PIECES = [];
for (let h = 0; h <= 6; h++) for (let l = 0; l <= h; l++) PIECES.push([h, l]);
const COUNT = { 20: 10, 25: 10, 15: 5, 11: 5, 8: 5 };
const name = (d) => `${PIECES[d][0]}-${PIECES[d][1]}`;
const $ = (sel) => document.querySelector(sel);

let game = null; // a hand (mode "hand", /v1/games) or a whole game to N marks (mode "full", /v1/full-games)
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
// A server started with --token wants it on every API call: open the page once as /#token=TOKEN (or ?token=TOKEN);
// this tab keeps it (sessionStorage) and it leaves the address bar.
const TOKEN_KEY = "zeb-token";
(function takeToken() {
  const hash = new URLSearchParams(location.hash.slice(1));
  const query = new URLSearchParams(location.search);
  const given = hash.get("token") || query.get("token");
  if (!given) return;
  sessionStorage.setItem(TOKEN_KEY, given);
  hash.delete("token");
  query.delete("token");
  const q = query.toString(), h = hash.toString();
  history.replaceState(null, "", location.pathname + (q ? `?${q}` : "") + (h ? `#${h}` : ""));
})();

async function api(method, path, body) {
  const headers = body ? { "Content-Type": "application/json" } : {}; // the server refuses other bodies (415)
  const token = sessionStorage.getItem(TOKEN_KEY);
  if (token) headers.Authorization = `Bearer ${token}`;
  const res = await fetch(path, { method, headers, body: body ? JSON.stringify(body) : undefined });
  const data = await res.json().catch(() => ({ error: `the server answered ${res.status}` }));
  if (!res.ok) throw new Error(data.error || `the server answered ${res.status}`);
  return data;
}

async function loadPlayers() {
  // The server lists the models its operator offers (by name: policy:model=NAME); a page opened as
  // /?bidder=SPEC offers that bidder too; ?mode=game starts in the full-game mode.
  const params = new URLSearchParams(location.search);
  const query = ["bidder"].flatMap((k) => params.getAll(k).map((p) => `${k}=${encodeURIComponent(p)}`)).join("&");
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
  const bsel = document.getElementById("bidder");
  bsel.innerHTML = "";
  for (const b of data.bidders || []) {
    const opt = new Option(b.label + (b.available ? "" : " — unavailable"), b.spec, false, b.spec === data.default_bidder);
    opt.disabled = !b.available;
    opt.title = b.available ? (b.description || b.spec) : (b.reason || "not available");
    bsel.add(opt);
  }
  if (params.get("mode") === "game") $("#mode").value = "game";
  onMode();
  document.getElementById("setup").title = data.note;
}

const fullMode = () => $("#mode").value === "game";
const full = () => game && game.mode === "full";

function onMode() {
  document.body.classList.toggle("mode-game", fullMode());
  $("#deal-label").textContent = fullMode() ? "New game" : "Deal";
}

async function deal() {
  if (busy) return;
  const seedText = $("#seed").value.trim();
  const body = { partner: $("#partner").value || undefined, opponents: $("#opponents").value || undefined };
  if (seedText !== "") body.seed = Number(seedText);
  if (fullMode()) {
    const bidder = $("#bidder").value;
    if (bidder) for (const k of ["partner", "opponents"]) if (body[k]) body[k] = `${bidder}+${body[k]}`;
    const target = $("#target").value.trim();
    if (target !== "") body.target = Number(target);
    body.forced_bid = $("#forced-bid").checked;
    await call(() => api("POST", "/v1/full-games", body), true);
    return;
  }
  await call(() => api("POST", "/v1/games", body), true);
}

async function play(d) {
  if (busy || !game || !game.your_turn || !game.legal.includes(d)) return;
  const base = full() ? "/v1/full-games" : "/v1/games";
  await call(() => api("POST", `${base}/${game.id}/play`, { domino: d }));
}

async function bid(value) {
  if (busy || !full() || !game.your_bid) return;
  await call(() => api("POST", `/v1/full-games/${game.id}/bid`, { bid: value }));
}

async function declare(decl) {
  if (busy || !full() || !game.your_declaration) return;
  await call(() => api("POST", `/v1/full-games/${game.id}/declare`, { decl }));
}

async function nextHand() {
  if (busy || !full() || game.phase !== "hand_over") return;
  await call(() => api("POST", `/v1/full-games/${game.id}/next`));
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

const FULL_STATES = { bid: "your-bid", declare: "your-decl", play: "your-turn" };
function stateName() {
  if (game.done) return "done";
  if (full()) return game.phase === "hand_over" ? "hand-over" : game.your_turn ? FULL_STATES[game.phase] : "waiting";
  return game.your_turn ? "your-turn" : "waiting";
}

// ---------------------------------------------------------------- rendering
function setStatus(text, error = false) {
  const s = $("#status");
  s.textContent = text;
  s.classList.toggle("error", error);
}

function render() {
  const g = game;
  document.body.classList.toggle("full-game", full());
  for (const id of ["marks-board", "auction"]) $(`#${id}`).hidden = !full();
  $("#bidbox").hidden = true;
  if (full()) return renderFull(g);
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
  const model = spec.match(/model=([^,+]+)/);
  if (model) return spec.split(":")[0].split("+").pop() + " " + model[1];
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

// ---------------------------------------------------------------- the full game
const TEAM_NAMES = ["Us", "Them"];

function renderFull(g) {
  const table = $("#table");
  table.dataset.gameId = g.id;
  table.dataset.seed = String(g.seed);
  table.dataset.nPlays = String(g.n_plays);
  table.dataset.nActions = String(g.n_actions);
  table.dataset.phase = g.phase;
  // The play-phase pieces draw from a hand-shaped view: playable only in the play phase.
  const h = { ...g, your_turn: g.your_turn && g.phase === "play", contract: g.contract || { decl: 9 } };
  renderSeatsFull(g);
  renderTrick(h);
  renderHand(h);
  renderMarks(g);
  renderAuction(g);
  renderContractFull(g);
  renderScore(h);
  renderLog(h);
  renderBidbox(g);
  renderFullResult(g);
  $("#replay").hidden = true;
  setStatus(fullStatus(g));
}

function fullStatus(g) {
  if (g.done) return g.result.summary;
  if (g.phase === "hand_over") return g.hand_result.summary;
  const high = g.auction.high ? `the high bid is ${g.auction.high_name} (${SEATS[g.auction.high_bidder]})` : "no bid yet";
  if (g.your_bid) return `Your bid — ${high}.` + (g.legal_bids.some((b) => b.bid === 0) ? "" : " You must bid (forced bid).");
  if (g.your_declaration) return `You won the auction with ${g.auction.high_name}: name trumps.`;
  if (g.phase === "play" && g.your_turn) return g.trick.length ? `Your turn — follow ${ledText(g)}.` : "Your lead — play any domino.";
  return `Waiting for ${SEATS[g.to_act]}…`;
}

function renderSeatsFull(g) {
  const bids = {};
  for (const b of g.auction.bids) bids[b.seat] = b;
  for (let s = 0; s < 4; s++) {
    const el = document.getElementById(`seat-${s}`);
    el.innerHTML = "";
    el.classList.toggle("to-move", g.to_act === s);
    el.classList.toggle("bidder", !!g.contract && g.contract.bidder === s);
    const label = document.createElement("div");
    label.className = "seat-label";
    const who = s === 0 ? "You" : `${SEATS[s]} <span class="bot">${escapeHtml(shortSpec(g.bots[String(s)]))}</span>`;
    let badge = "";
    if (g.contract && g.contract.bidder === s) badge = ` <span class="badge">bid ${escapeHtml(g.contract.bid_name)}</span>`;
    else if (!g.contract && bids[s]) badge = ` <span class="badge">${escapeHtml(bids[s].name)}</span>`;
    const dealer = g.dealer === s ? ' <span class="dealer" title="dealer">D</span>' : "";
    label.innerHTML = `<span class="team-dot team${s % 2}"></span>${who}${dealer}${badge}`;
    el.appendChild(label);
    if (s !== 0) el.appendChild(backsEl(g.hand_counts[s]));
  }
}

function renderMarks(g) {
  $("#marks-0").textContent = g.marks[0];
  $("#marks-1").textContent = g.marks[1];
  $("#marks-target").textContent = `· to ${g.target}${g.forced_bid ? " · forced bid" : ""}`;
  $("#hand-number").textContent = g.hand_number;
  $("#dealer-name").textContent = SEATS[g.dealer];
  const list = $("#hand-history");
  list.innerHTML = "";
  for (const h of g.history) {
    const li = document.createElement("li");
    li.dataset.hand = String(h.hand);
    li.textContent = `Hand ${h.hand}: ${h.summary} (${h.marks[0]}–${h.marks[1]})`;
    list.appendChild(li);
  }
  list.scrollTop = list.scrollHeight;
}

function renderAuction(g) {
  const log = $("#auction-log");
  log.innerHTML = "";
  for (const b of g.auction.bids) {
    const li = document.createElement("li");
    li.dataset.seat = String(b.seat);
    const said = b.bid === 0 ? "passes" : `bids <span class="bid-name">${escapeHtml(b.name)}</span>`;
    const line = b.seat === 0 ? "" : b.explanation || `${SEATS[b.seat]} ${b.bid === 0 ? "passes" : "bids " + b.name}.`;
    li.innerHTML = `<span class="who team${b.seat % 2}">${SEATS[b.seat]}</span> ${said}` +
      (line ? `<span class="explain">${escapeHtml(line)}</span>` : "");
    log.appendChild(li);
  }
  if (!g.auction.bids.length) log.innerHTML = `<li class="muted">${SEATS[(g.dealer + 1) % 4]} speaks first.</li>`;
}

function renderContractFull(g) {
  const box = $("#contract");
  const c = g.contract;
  if (!c) {
    box.innerHTML = `<h2>Contract</h2><p class="muted">Bidding… · seed <code>${g.seed}</code></p>`;
    box.dataset.decl = "";
    return;
  }
  const team = c.bidder_team === 0 ? "us" : "them";
  const why = c.bidder === 0 ? "" : c.explanation || `${SEATS[c.bidder]} names ${c.decl_name}.`;
  box.innerHTML = `<h2>Contract</h2>
    <div class="contract-line"><span class="big">${escapeHtml(c.bid_name)}</span><span class="decl">${escapeHtml(c.decl_name)}</span></div>
    <p class="muted"><strong>${SEATS[c.bidder]}</strong> (${team}) needs ${c.points_needed} points for
    ${c.marks_at_stake} mark${c.marks_at_stake > 1 ? "s" : ""} and leads</p>` +
    (why ? `<p class="muted explain" id="decl-explanation">${escapeHtml(why)}</p>` : "");
  box.dataset.decl = String(c.decl);
}

function button(text, cls, data, onClick) {
  const b = document.createElement("button");
  b.type = "button";
  b.className = cls;
  b.textContent = text;
  for (const [k, v] of Object.entries(data)) b.dataset[k] = String(v);
  b.addEventListener("click", onClick);
  return b;
}

function renderBidbox(g) {
  const box = $("#bidbox");
  box.innerHTML = "";
  if (g.your_bid) {
    for (const b of g.legal_bids) {
      const cls = b.bid === 0 ? "pass" : b.bid >= 42 ? "mark" : "points";
      box.appendChild(button(b.bid === 0 ? "Pass" : b.name, `bid-btn ${cls}`, { bid: b.bid }, () => bid(b.bid)));
    }
  } else if (g.your_declaration) {
    for (const d of g.declarations) box.appendChild(button(d.name, "decl-btn", { decl: d.decl }, () => declare(d.decl)));
  } else if (g.phase === "hand_over") {
    box.appendChild(button("Next hand", "next", { next: 1 }, nextHand));
  }
  box.hidden = !box.children.length;
  const first = box.querySelector("button.next, button.decl-btn, button.points, button.pass");
  if (first) first.focus({ preventScroll: true });
}

function renderFullResult(g) {
  const res = $("#result");
  res.hidden = !g.done && !g.hand_result;
  if (res.hidden) return;
  if (g.done) {
    const r = g.result;
    res.className = `card result ${r.you_won ? "won" : "lost"}`;
    res.innerHTML = `<h2>Game over</h2><div class="outcome">${r.you_won ? "You won the game!" : "You lost the game"}</div>
      <p><span id="result-marks">${r.marks[0]}–${r.marks[1]}</span> marks in ${r.hands_played} hands</p>
      <p class="muted">${escapeHtml(r.summary)}</p>
      <button type="button" class="primary" id="again">New game <kbd>N</kbd></button>`;
    res.dataset.marks0 = String(r.marks[0]);
    res.dataset.marks1 = String(r.marks[1]);
    $("#again").addEventListener("click", deal);
    return;
  }
  const h = g.hand_result;
  const ours = h.marks_gained[0] > 0;
  res.className = `card result ${ours ? "won" : "lost"}`;
  res.innerHTML = `<h2>Hand ${h.hand}</h2><div class="outcome">${TEAM_NAMES[ours ? 0 : 1]} +${Math.max(...h.marks_gained)}</div>
    <p><span id="result-points">${h.team_points[0]}–${h.team_points[1]}</span> · bid
    <strong id="result-contract">${h.made ? "made" : "set"}</strong></p>
    <p class="muted">${escapeHtml(h.summary)}</p>`;
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
$("#mode").addEventListener("change", onMode);
document.getElementById("show-thinking").addEventListener("change", (e) => document.body.classList.toggle("thinking-on", e.target.checked));
$("#replay-prev").addEventListener("click", () => stepReplay(-1));
$("#replay-next").addEventListener("click", () => stepReplay(1));
document.addEventListener("keydown", onKey);
loadPlayers().then(deal).catch((err) => setStatus(err.message, true));
