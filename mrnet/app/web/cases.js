// The Cases view (gr.HTML js_on_load: `element`, `props`, `watch`, `trigger` come from Gradio): a labelled set's
// table, drawn in the browser. Task, threshold, the confusion-matrix filter and sorting never call the server;
// opening a case does (trigger "open" with the case, the task, the next case of the list to prepare
// ahead, and whether compare mode is on: the viewer then gets both weights' maps). props.data is the table
// (mrnet.browse.table_payload), with each task's calibration and, where second weights are configured, their
// probabilities (compare mode: agreement matrix, |p A - p B| sort, both ROCs, as the server computed them);
// props.value {dataset, case, task, compare} is the case on screen, set here on open and by the server when a
// link opens one.
const root = element.querySelector(".mrc");
const body = root.querySelector(".mrc-table tbody");
let table = null;                 // props.data
let state = { task: null, threshold: 0.5, filter: "", agree: "", sort: "case", current: null, compare: false };
let list = [];                    // the case ids shown, in order

function esc(text) { return String(text).replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`); }

function outcome(row, task, threshold) {
  const label = row.labels[task], p = row.p[task];
  if (label === undefined || p === undefined) return "";
  return (p >= threshold ? (label ? "TP" : "FP") : (label ? "FN" : "TN"));
}

// In compare mode: whether A and B are each right at the threshold ("both", "a": only A, "b": only B, "neither").
function agreement(row, task, threshold) {
  const label = row.labels[task], a = row.p[task], b = row.pB ? row.pB[task] : undefined;
  if (label === undefined || a === undefined || b === undefined) return "";
  const rightA = (a >= threshold) === (label === 1), rightB = (b >= threshold) === (label === 1);
  return rightA ? (rightB ? "both" : "a") : (rightB ? "b" : "neither");
}

function comparing() { return Boolean(state.compare && table.compare); }

// The ROC curve of a task, as the server computed it (browse.rocs); none yet: the chance corner alone.
function roc(task, part = table) {
  return (part.roc || {})[task] || { points: [[0, 0]], auc: null, pos: 0, neg: 0 };
}

function drawRoc() {
  const svg = root.querySelector(".mrc-roc"), out = root.querySelector(".mrc-auc");
  svg.style.display = table.scored ? "" : "none";  // no probabilities: no curve, and no empty frame either
  if (!table.scored) { svg.innerHTML = ""; out.textContent = ""; return; }
  const task = state.task, curve = roc(task), curveB = comparing() && table.compare.scored ? roc(task, table.compare) : null;
  let tp = 0, fp = 0;
  for (const r of table.rows) {
    const o = outcome(r, task, state.threshold);
    if (o === "TP") tp++; else if (o === "FP") fp++;
  }
  const x = (f) => (f * 100).toFixed(2), y = (t) => (100 - t * 100).toFixed(2);
  const here = [fp / Math.max(curve.neg, 1), tp / Math.max(curve.pos, 1)];
  svg.innerHTML = `<rect class="frame" x="0" y="0" width="100" height="100"/>
    <line class="chance" x1="0" y1="100" x2="100" y2="0"/>
    <polyline class="curve" points="${curve.points.map(([f, t]) => `${x(f)},${y(t)}`).join(" ")}"><title>${esc(names().a)}</title></polyline>
    ${curveB ? `<polyline class="curve-b" points="${curveB.points.map(([f, t]) => `${x(f)},${y(t)}`).join(" ")}"><title>${esc(names().b)}</title></polyline>` : ""}
    <circle class="point" cx="${x(here[0])}" cy="${y(here[1])}" r="2.2"><title>threshold ${state.threshold.toFixed(2)}</title></circle>
    <text x="50" y="111" text-anchor="middle">false positive rate</text>
    <text x="-50" y="-5" transform="rotate(-90)" text-anchor="middle">true positive rate</text>`;
  out.textContent = curve.auc === null ? "AUC: needs positive and negative cases."
    : `AUC ${curve.auc.toFixed(3)} (${curve.pos} positive, ${curve.neg} negative). At ${state.threshold.toFixed(2)}: ` +
      `sensitivity ${(here[1] * 100).toFixed(0)} %, specificity ${((1 - here[0]) * 100).toFixed(0)} %.`;
  if (curveB && curveB.auc !== null) out.textContent += ` ${names().b} (dashed): AUC ${curveB.auc.toFixed(3)}.`;
  root.dataset.auc = curve.auc === null ? "" : curve.auc.toFixed(6);
  root.dataset.aucB = curveB && curveB.auc !== null ? curveB.auc.toFixed(6) : "";
}

function names() { return table.compare ? { a: table.compare.a, b: table.compare.b } : { a: "A", b: "B" }; }

// Calibration of the task shown (computed by the server from the score table, browse.calibration): the
// reliability diagram (10 quantile bins, the count in each), ECE and Brier, and threshold presets that set the
// slider.
function drawCalibration() {
  const svg = root.querySelector(".mrc-reliability"), text = root.querySelector(".mrc-calibration");
  const presets = root.querySelector(".mrc-presets"), c = (table.calibration || {})[state.task];
  svg.style.display = c ? "" : "none";
  root.dataset.reliabilityBins = c ? String(c.bins.length) : "0";
  if (!c) { svg.innerHTML = ""; text.textContent = ""; presets.replaceChildren(); return; }
  const x = (f) => (f * 100).toFixed(2), y = (t) => (100 - t * 100).toFixed(2);
  const dots = c.bins.map((b) => `<circle class="bin" cx="${x(b.predicted)}" cy="${y(b.observed)}" r="1.8">` +
    `<title>${b.count} cases, predicted ${b.predicted.toFixed(2)}, observed ${b.observed.toFixed(2)}</title></circle>` +
    `<text class="count" x="${x(b.predicted)}" y="${(Number(y(b.observed)) - 3).toFixed(2)}" text-anchor="middle">${b.count}</text>`);
  svg.innerHTML = `<rect class="frame" x="0" y="0" width="100" height="100"/>
    <line class="chance" x1="0" y1="100" x2="100" y2="0"/>
    <polyline points="${c.bins.map((b) => `${x(b.predicted)},${y(b.observed)}`).join(" ")}"/>${dots.join("")}
    <text x="50" y="111" text-anchor="middle">predicted probability (bin mean)</text>
    <text x="-50" y="-5" transform="rotate(-90)" text-anchor="middle">observed positives</text>`;
  const cb = comparing() && table.compare.calibration[state.task];
  text.textContent = `Calibration${cb ? " of " + names().a : ""}: ECE ${c.ece.toFixed(3)}, Brier ${c.brier.toFixed(3)} ` +
    "(10 bins of equal count; on the diagonal = the probabilities mean what they say)." +
    (cb ? ` ${names().b}: ECE ${cb.ece.toFixed(3)}, Brier ${cb.brier.toFixed(3)}.` : "");
  presets.replaceChildren(...c.presets.map((point) => {
    const button = document.createElement("button");
    button.type = "button";
    button.className = "mrc-preset";
    button.textContent = `${point.name}: ${point.threshold.toFixed(2)}`;
    button.title = `sensitivity ${(point.sensitivity * 100).toFixed(0)} %, specificity ${(point.specificity * 100).toFixed(0)} %`;
    button.addEventListener("click", () => setThreshold(point.threshold));
    return button;
  }));
}

// The case on screen with its probabilities for the task (A's and B's in compare mode).
function describeCurrent() {
  const out = root.querySelector(".mrc-current"), row = table.rows.find((r) => r.case === state.current);
  if (!row) { out.textContent = ""; return; }
  const title = (table.tasks.find(([t]) => t === state.task) || [state.task, state.task])[1];
  const percent = (v) => (v === undefined ? "not scored" : (v * 100).toFixed(1) + " %");
  out.textContent = `Case ${row.case}, ${title}: ` + (comparing()
    ? `${names().a} ${percent(row.p[state.task])}, ${names().b} ${percent(row.pB ? row.pB[state.task] : undefined)}`
    : `p ${percent(row.p[state.task])}`);
}

function setCompare(on) {
  state.compare = Boolean(on && table && table.compare);
  root.querySelector(".mrc-compare").checked = state.compare;
  root.querySelector(".mrc-sort option[value=diff]").disabled = !state.compare;
  if (!state.compare && state.sort === "diff") { state.sort = "case"; root.querySelector(".mrc-sort").value = "case"; }
  if (!state.compare) state.agree = "";
  root.dataset.compare = state.compare ? "1" : "0";
  // the page's link says whether the comparison is on (the viewer writes the rest of the view)
  const url = new URL(window.location.href);
  if (state.compare) url.searchParams.set("compare", "1"); else url.searchParams.delete("compare");
  if (url.href !== window.location.href) window.history.replaceState(window.history.state, "", url.href);
  head();
  render();
}

function setThreshold(value) {
  state.threshold = value;
  root.querySelector(".mrc-threshold").value = String(value);
  root.querySelector(".mrc-threshold-out").textContent = value.toFixed(2);
  render();
}

function render() {
  if (!table) return;
  const started = performance.now();
  const task = state.task, th = state.threshold, counts = { TP: 0, FN: 0, FP: 0, TN: 0 };
  const agreeCounts = { both: 0, a: 0, b: 0, neither: 0 }, compare = comparing();
  const rows = [];
  for (const r of table.rows) {
    const o = outcome(r, task, th), g = compare ? agreement(r, task, th) : "";
    if (o) counts[o]++;
    if (g) agreeCounts[g]++;
    if ((!state.filter || o === state.filter) && (!compare || !state.agree || g === state.agree)) rows.push([r, o]);
  }
  const p = (r) => (r.p[task] === undefined ? -1 : r.p[task]);
  const error = (r) => (r.labels[task] === undefined || r.p[task] === undefined ? -1 : Math.abs(r.labels[task] - r.p[task]));
  const gap = (r) => (r.p[task] === undefined || !r.pB || r.pB[task] === undefined ? -1 : Math.abs(r.p[task] - r.pB[task]));
  if (state.sort === "prob") rows.sort((a, b) => p(b[0]) - p(a[0]));
  else if (state.sort === "error") rows.sort((a, b) => error(b[0]) - error(a[0]));
  else if (state.sort === "diff" && compare) rows.sort((a, b) => gap(b[0]) - gap(a[0]));
  list = rows.map(([r]) => r.case);
  const sign = (label) => (label === undefined ? "—" : label ? "+" : "−");
  const html = [];
  for (const [r, o] of rows) {
    const percent = (v) => (v === undefined ? "—" : (v * 100).toFixed(1) + " %");
    const cells = table.tasks.map(([t]) => `<td>${sign(r.labels[t])}</td><td>${percent(r.p[t])}</td>` +
      (compare ? `<td>${percent(r.pB ? r.pB[t] : undefined)}</td>` : ""));
    html.push(`<tr data-case="${esc(r.case)}" tabindex="-1"${r.case === state.current ? ' class="current"' : ""}>` +
      `<td>${esc(r.case)}</td>${cells.join("")}<td class="${o}">${o || "—"}</td></tr>`);
  }
  body.innerHTML = html.join("");
  for (const button of root.querySelectorAll(".mrc-matrix button")) {
    const o = button.dataset.outcome;
    button.textContent = `${o} ${counts[o]}`;
    button.classList.toggle("active", state.filter === o);
  }
  root.querySelector(".mrc-agreement").hidden = !compare;
  for (const button of root.querySelectorAll(".mrc-agreement button")) {
    const g = button.dataset.agree, label = { both: "both", a: "only A", b: "only B", neither: "neither" }[g];
    button.textContent = `${label} ${agreeCounts[g]}`;
    button.classList.toggle("active", state.agree === g);
  }
  root.dataset.agreement = compare ? JSON.stringify(agreeCounts) : "";
  root.querySelector(".mrc-all button").classList.toggle("active", !state.filter && !(compare && state.agree));
  root.querySelector(".mrc-all button").textContent = `All cases (${table.rows.length})`;
  root.querySelector(".mrc-count").textContent = `${list.length} case${list.length === 1 ? "" : "s"} listed`;
  drawRoc();
  drawCalibration();
  describeCurrent();
  root.dataset.renderMs = (performance.now() - started).toFixed(1);  // for the benchmark
  root.dataset.listed = String(list.length);
  root.dataset.threshold = String(state.threshold);
}

function head() {
  const compare = comparing(), n = names();
  const cols = table.tasks.map(([, title]) => `<th>${esc(title)}: truth</th><th>${esc(title)}: p${compare ? " " + esc(n.a) : ""}</th>` +
    (compare ? `<th>${esc(title)}: p ${esc(n.b)}</th>` : ""));
  root.querySelector(".mrc-table thead").innerHTML = `<tr><th>Case</th>${cols.join("")}<th>Outcome</th></tr>`;
}

function taskChoices() {
  const box = root.querySelector(".mrc-task");
  box.querySelectorAll("label").forEach((l) => l.remove());
  for (const [value, title] of table.tasks) {
    const label = document.createElement("label"), input = document.createElement("input");
    input.type = "radio"; input.name = "mrc-task"; input.value = value; input.checked = value === state.task;
    input.addEventListener("change", () => { state.task = value; render(); });
    label.append(input, " " + title);
    box.appendChild(label);
  }
}

function open(caseId) {
  if (!caseId) return;
  state.current = caseId;
  body.querySelectorAll("tr.current").forEach((tr) => tr.classList.remove("current"));
  const tr = body.querySelector(`tr[data-case="${CSS.escape(caseId)}"]`);
  if (tr) { tr.classList.add("current"); tr.scrollIntoView({ block: "nearest" }); }
  describeCurrent();
  const at = list.indexOf(caseId), next = at >= 0 && at + 1 < list.length ? list[at + 1] : null;
  props.value = { dataset: table.dataset, case: caseId, task: state.task, compare: state.compare };
  trigger("open", { dataset: table.dataset, case: caseId, task: state.task, next, compare: comparing() });
}

function step(by) {
  if (!list.length) return;
  const at = list.indexOf(state.current);
  open(list[at < 0 ? 0 : Math.max(0, Math.min(list.length - 1, at + by))]);
}

function load() {
  table = props.data && props.data.rows ? props.data : null;
  root.dataset.ready = "0";
  if (!table) return;
  const tasks = table.tasks.map(([t]) => t);
  state = { ...state, task: tasks.includes(state.task) ? state.task : tasks[0], filter: "" };
  root.querySelector(".mrc-title").textContent = `${table.title} — ${table.split} split, ${table.rows.length} cases`;
  const toggle = root.querySelector(".mrc-compare-toggle");
  toggle.hidden = !table.compare;
  if (table.compare) {
    root.querySelector(".mrc-name-a").textContent = table.compare.a;
    root.querySelector(".mrc-name-b").textContent = table.compare.b;
  }
  const notes = [table.notice, ...table.problems, table.compare && table.compare.notice].filter(Boolean);
  root.querySelector(".mrc-notes").innerHTML = notes.map((n) => `<p>${esc(n)}</p>`).join("");
  taskChoices();
  applyValue();
  setCompare(state.compare);  // draws the head and the table
  root.dataset.ready = "1";
}

// The server opened a case (a link): show it as the current row, with its task.
function applyValue() {
  const v = props.value;
  if (!table || !v || typeof v !== "object" || v.dataset !== table.dataset) return;
  if (v.task && table.tasks.some(([t]) => t === v.task) && v.task !== state.task) {
    state.task = v.task;
    root.querySelectorAll("input[name=mrc-task]").forEach((i) => { i.checked = i.value === v.task; });
  }
  state.current = v.case || null;
  if (typeof v.compare === "boolean" && v.compare !== state.compare) {
    state.compare = v.compare;
    if (root.dataset.ready === "1") setCompare(v.compare);
  }
}

body.addEventListener("click", (e) => { const tr = e.target.closest("tr[data-case]"); if (tr) open(tr.dataset.case); });
root.querySelector(".mrc-matrix").addEventListener("click", (e) => {
  const o = e.target.dataset && e.target.dataset.outcome;
  if (o !== undefined) { state.filter = state.filter === o ? "" : o; render(); }
});
root.querySelector(".mrc-all").addEventListener("click", () => { state.filter = ""; state.agree = ""; render(); });
root.querySelector(".mrc-agreement").addEventListener("click", (e) => {
  const g = e.target.dataset && e.target.dataset.agree;
  if (g !== undefined) { state.agree = state.agree === g ? "" : g; render(); }
});
root.querySelector(".mrc-compare").addEventListener("change", (e) => setCompare(e.target.checked));
root.querySelector(".mrc-threshold").addEventListener("input", (e) => setThreshold(Number(e.target.value)));
root.querySelector(".mrc-sort").addEventListener("change", (e) => { state.sort = e.target.value; render(); });
root.querySelector(".mrc-prev").addEventListener("click", () => step(-1));
root.querySelector(".mrc-next").addEventListener("click", () => step(1));
// n / p anywhere on the page but in a text field: next / previous case of the list
document.addEventListener("keydown", (e) => {
  if (!table || e.ctrlKey || e.metaKey || e.altKey || e.target.closest("input[type=text], textarea, select, [contenteditable]")) return;
  if (e.key === "n") step(1);
  else if (e.key === "p") step(-1);
});

watch("data", load);
watch("value", () => { applyValue(); render(); });
load();
