// The slice viewer, drawn in the browser (gr.HTML js_on_load: `element`, `props`, `watch` come from Gradio).
// The server sends each plane's slices once (PNG's Average filter, deflated) and every task's and method's low-resolution
// CAM maps (16-bit display levels, deflated); this code upsamples them bilinearly as cv2.resize does,
// colours them with the server's table of the palette chosen (jet or viridis) and blends them as cv2.addWeighted does. Scrolling, task,
// method, opacity, window/level, zoom and swipe never call the server. The view (task, method, opacity,
// mode, slice per plane, and `plane`: the one last used) is written back to props.value, which server events
// read; a server event that sets props.value moves the viewer. A case of a labelled set comes with its link
// (set and case id): the page's URL then names the view, so that it can be shared; anything else clears it.
// In compare mode the payload also carries a second weights' maps of the same exam (`compare`, which may
// arrive later, as a second payload with the same id and only that part): `view.maps` draws A's, B's, or
// A | B across the swipe.
const root = element.querySelector(".mrv");
const planesBox = root.querySelector(".mrv-planes");
const strip = root.querySelector(".mrv-strip");
let data = null;          // the payload, decoded
let view = null;          // {task, method, opacity, mode, slices: {plane: index}}
const panes = {};         // plane -> {canvas, ctx, slider, caption, bars, zoom, pan, ...}
let wl = { center: 127.5, width: 255 };
let wlTable = identityTable();
let swipeX = 128;
let outline = false;      // outline the true lesion (cases of sets with masks)
const LINK_KEYS = ["sample", "share", "dataset", "case", "task", "method", "plane", "slice", "maps", "mark", "palette"];
const MAPS = ["a", "b", "ab"];
let syncTimer = null;
let touchMode = "slices"; // what one finger does on the image: "slices" or "wl" (window/level)
let marking = false;      // "Mark lesion" on: a click, a tap or a one-pointer drag marks the lesion
const MARK_TOLERANCE = 15; // slice pixels: the pointing game's, drawn around a point mark

// One pass of a plane's slices: base64 inside the payload, or a file the server left for us (the app), fetched
// with one retry; `signal` stops it when a newer analysis arrives.
async function passPixels(pass, signal) {
  if (!pass.url) return unfilterAverage(await inflate(pass.pixels));
  for (let attempt = 0; ; attempt++) {
    try {
      const response = await fetch(new URL(pass.url, document.baseURI), { signal });
      if (!response.ok) throw new Error(`HTTP ${response.status}`);
      return unfilterAverage(new Uint8Array(await new Response(response.body.pipeThrough(new DecompressionStream("deflate"))).arrayBuffer()));
    } catch (err) {
      if (signal.aborted || attempt >= 1) throw err;
    }
  }
}

// Slices that have not arrived yet are drawn from the nearest one that has (the caption says so).
function nearestLoaded(p, index) {
  for (let d = 0; d < p.slices; d++) {
    if (index - d >= 0 && p.have[index - d]) return index - d;
    if (index + d < p.slices && p.have[index + d]) return index + d;
  }
  return -1;
}

// The explanation of the weights `which` ("a", or "b" in compare mode once B's maps are here), else null.
function explanationOf(which) {
  if (which !== "b") return data;
  return data.compare && data.compare.maps ? data.compare.maps : null;
}

// One weights' map of a slice upsampled into `out` (0..255), or null where those weights have none.
function camInto(which, task, plane, method, index, out) {
  const source = explanationOf(which), perPlane = source && source.cams[task] && source.cams[task][plane];
  if (!perPlane || !perPlane[method]) return null;
  upsampleInto(perPlane[method], index * data.grid[0] * data.grid[1], data.grid[0], data.grid[1], out, data.tapsX,
               data.tapsY, data.rowScratch);
  return out;
}

// One slice composed at 256x256: grey through the window/level table, then the overlay; across the swipe
// position, the overlay and the bare slice (mode "swipe"), or A's and B's maps (maps "ab").
function compose(plane, wanted, image, mode, task, method, opacity, maps = "a") {
  const p = data.planes[plane], index = Math.max(0, nearestLoaded(p, wanted));
  const grey = p.pixels.subarray(index * SIZE * SIZE, (index + 1) * SIZE * SIZE);
  const px = image.data, colours = data.palettes[view.palette] || data.palettes.jet, table = wlTable;
  if (mode === "slice") {
    for (let i = 0, j = 0; i < grey.length; i++, j += 4) { const g = table[grey[i]]; px[j] = px[j + 1] = px[j + 2] = g; px[j + 3] = 255; }
    return;
  }
  const left = camInto(maps === "b" ? "b" : "a", task, plane, method, index, data.camScratch);
  const right = maps === "ab" ? camInto("b", task, plane, method, index, data.camScratchB) : null;
  const a = opacity, b = 1 - opacity, split = mode === "swipe" || maps === "ab" ? swipeX : SIZE;
  for (let i = 0, j = 0; i < grey.length; i++, j += 4) {
    const g = table[grey[i]], cam = (i & 255) < split ? left : right;
    if (cam) {
      const c = cam[i] * 3;
      px[j] = colours[c] * a + g * b; px[j + 1] = colours[c + 1] * a + g * b; px[j + 2] = colours[c + 2] * a + g * b;
    } else {
      px[j] = px[j + 1] = px[j + 2] = g;
    }
    px[j + 3] = 255;
  }
  if (outline && data.masks[plane]) drawOutline(data.masks[plane], index, data.taskBits[task], px);
}

// Where the slice sits on the canvas at the pane's zoom: canvas pixels per slice pixel, and the offset that
// centres it (the pan adds to it). A canvas point c shows slice pixel (c - off - pan) / scale.
function placement(pane) {
  return placementAt(pane.canvas.width, pane.zoom);
}

function setZoom(pane, zoom) {
  pane.zoom = Math.max(0.25, Math.min(16, zoom));
}

function draw(plane) {
  const pane = panes[plane];
  if (!pane) return;
  const index = view.slices[plane];
  compose(plane, index, pane.image, view.mode, view.task, view.method, view.opacity, view.maps);
  pane.native.getContext("2d").putImageData(pane.image, 0, 0);
  const ctx = pane.ctx, { scale, off } = placement(pane);
  ctx.setTransform(1, 0, 0, 1, 0, 0);
  ctx.fillStyle = "#000";
  ctx.fillRect(0, 0, pane.canvas.width, pane.canvas.height);
  ctx.imageSmoothingEnabled = false;
  ctx.setTransform(scale, 0, 0, scale, off + pane.pan[0], off + pane.pan[1]);
  ctx.drawImage(pane.native, 0, 0);
  drawMark(pane, plane, index, scale);
  pane.slider.value = String(index);
  const shown = nearestLoaded(data.planes[plane], index);
  pane.caption.textContent = caption(plane, index) + (shown !== index ? ` — still loading; showing slice ${shown}` : "");
  pane.stage.dataset.slice = String(index);
  pane.stage.dataset.shown = String(shown);
  pane.stage.dataset.zoom = pane.zoom.toFixed(3);
  pane.stage.classList.toggle("mrv-placeholder", shown !== index);
  if (pane.current) pane.current.classList.remove("current");
  pane.current = pane.barRects[index];
  if (pane.current) pane.current.classList.add("current");
}

// The reviewer's lesion mark, where it was made (plane and slice): a box, or a point with the pointing game's
// tolerance around it; dark under light, so that it shows on any overlay colour.
function drawMark(pane, plane, index, scale) {
  const m = view.mark;
  if (!m || m.plane !== plane || m.slice !== index) { delete pane.stage.dataset.mark; return; }
  const ctx = pane.ctx;
  for (const [colour, width] of [["#000", 3], ["#fff", 1.5]]) {
    ctx.strokeStyle = colour;
    ctx.lineWidth = width / scale;
    ctx.beginPath();
    if (m.w || m.h) ctx.rect(m.x, m.y, m.w + 1, m.h + 1);
    else {
      ctx.arc(m.x + 0.5, m.y + 0.5, MARK_TOLERANCE, 0, 2 * Math.PI);
      ctx.moveTo(m.x + 0.5 - 4, m.y + 0.5); ctx.lineTo(m.x + 0.5 + 4, m.y + 0.5);
      ctx.moveTo(m.x + 0.5, m.y + 0.5 - 4); ctx.lineTo(m.x + 0.5, m.y + 0.5 + 4);
    }
    ctx.stroke();
  }
  pane.stage.dataset.mark = `${m.x},${m.y},${m.w},${m.h}`;
}

function signed(x, digits) { return (x >= 0 ? "+" : "") + x.toFixed(digits); }

// The captions, bars and top slices follow the maps shown: B's in compare mode with B chosen, else A's.
function shownExplanation() { return (view.maps === "b" && explanationOf("b")) || data; }

function resultOf(plane) {
  const results = shownExplanation().results[view.task];
  return (results && results[plane]) || data.results[view.task][plane];
}

function caption(plane, index) {
  const r = resultOf(plane), whose = data.compare && data.compare.maps ? `${view.maps === "b" ? "B" : "A"}: ` : "";
  return `${view.maps === "ab" ? "left A, right B; " : ""}${whose}${plane} slice ${index} of ${r.contributions.length - 1} — ` +
    `contribution ${signed(r.contributions[index], 3)} (logit ${signed(r.logit, 2)}, bias ${signed(r.bias, 2)}); top slice: ${r.top_slice}`;
}

function drawBars(plane) {
  const pane = panes[plane], r = resultOf(plane), n = r.contributions.length;
  const peak = Math.max(1e-9, ...r.contributions.map(Math.abs));
  const svg = pane.bars, ns = "http://www.w3.org/2000/svg";
  svg.replaceChildren();
  svg.setAttribute("viewBox", `0 0 ${n} 100`);
  svg.setAttribute("preserveAspectRatio", "none");
  pane.barRects = [];
  r.contributions.forEach((c, i) => {
    const h = Math.abs(c) / peak * 48, bar = document.createElementNS(ns, "rect");
    bar.setAttribute("x", i + 0.1); bar.setAttribute("width", 0.8);
    bar.setAttribute("y", c >= 0 ? 50 - h : 50); bar.setAttribute("height", Math.max(h, 0.5));
    bar.setAttribute("class", c >= 0 ? "for" : "against");
    const hit = document.createElementNS(ns, "rect");  // the whole column is clickable
    hit.setAttribute("x", i); hit.setAttribute("width", 1); hit.setAttribute("y", 0); hit.setAttribute("height", 100);
    hit.setAttribute("class", "hit"); hit.dataset.slice = i;
    const title = document.createElementNS(ns, "title");
    title.textContent = `slice ${i}: ${signed(c, 3)}`;
    hit.appendChild(title);
    svg.append(bar, hit);
    pane.barRects.push(bar);
  });
  const axis = document.createElementNS(ns, "line");
  axis.setAttribute("x1", 0); axis.setAttribute("x2", n); axis.setAttribute("y1", 50); axis.setAttribute("y2", 50);
  svg.appendChild(axis);
  pane.decisive.style.left = n > 1 ? `${r.top_slice / (n - 1) * 100}%` : "0%";
  pane.decisive.title = `decisive slice ${r.top_slice}`;
  pane.current = null;
}

function drawStrip() {
  strip.replaceChildren();
  for (const [plane, index, share] of shownExplanation().top[view.task] || data.top[view.task]) {
    if (!panes[plane]) continue;
    const button = document.createElement("button"), canvas = document.createElement("canvas");
    canvas.width = canvas.height = SIZE;
    const image = new ImageData(SIZE, SIZE);
    compose(plane, index, image, view.mode === "slice" ? "overlay" : view.mode, view.task, view.method, view.opacity, view.maps);
    canvas.getContext("2d").putImageData(image, 0, 0);
    button.type = "button";
    button.dataset.plane = plane; button.dataset.slice = index;
    button.append(canvas, `${plane} · slice ${index} · ${Math.round(share * 100)} % of the logit`);
    button.addEventListener("click", () => { setSlice(plane, index); panes[plane].stage.focus(); });
    strip.appendChild(button);
  }
}

function redrawAll() {
  for (const plane of Object.keys(panes)) draw(plane);
  drawStrip();
  syncSoon();
}

// props.value carries the view to the server; written once the view rests (each write makes Gradio
// compare the component's props, which hold the whole payload).
function syncSoon() {
  clearTimeout(syncTimer);
  syncTimer = setTimeout(syncNow, 200);
}

// A mark is one event, not a stream: it reaches the server at once (a flag saved right after it carries it).
function syncNow() {
  clearTimeout(syncTimer);
  props.value = JSON.parse(JSON.stringify(view));
  syncLink();
}

// The URL names the view of a labelled set's case, a sample or a shared upload (an upload has no link until
// its visitor shares it).
function syncLink() {
  const url = new URL(window.location.href);
  for (const key of LINK_KEYS) url.searchParams.delete(key);
  const link = data && data.link;
  if (link) {
    if (link.sample) url.searchParams.set("sample", link.sample);
    if (link.share) url.searchParams.set("share", link.share);
    if (link.dataset) url.searchParams.set("dataset", link.dataset);
    if (link.case) url.searchParams.set("case", link.case);
    url.searchParams.set("task", view.task);
    url.searchParams.set("method", view.method);
    url.searchParams.set("plane", view.plane);
    url.searchParams.set("slice", String(view.slices[view.plane]));
    if (view.maps !== "a") url.searchParams.set("maps", view.maps);
    if (view.palette !== "jet") url.searchParams.set("palette", view.palette);
    const m = view.mark;
    if (m) url.searchParams.set("mark", [m.plane, m.slice, m.x, m.y, m.w, m.h].join(","));
  }
  if (url.href !== window.location.href) window.history.replaceState(window.history.state, "", url.href);
  root.querySelector(".mrv-link").value = link ? url.href : "";
  root.dataset.linked = link ? "1" : "0";
}

function setSlice(plane, index) {
  const n = data.planes[plane].slices;
  index = Math.max(0, Math.min(n - 1, index));
  view.plane = plane;
  if (index === view.slices[plane]) { syncSoon(); return; }
  view.slices[plane] = index;
  draw(plane);
  syncSoon();
}

function setChoice(key, value) {
  view[key] = value;
  if (key === "task" || key === "maps") for (const plane of Object.keys(panes)) drawBars(plane);
  root.dataset.mode = view.mode;
  root.dataset.maps = view.maps;
  if (key === "task" || key === "maps") comparedProbabilities();
  redrawAll();
}

// Compare mode: the second weights' part of the payload, its maps decoded (decodedComparison). A first payload
// may say it is on its way; the second, with the same id, brings it. Without it, only A's maps can be shown.
function setComparison(part, wanted) {
  data.compare = part ? { a: part.a, b: part.b, pending: Boolean(part.pending), problem: part.problem || "",
    maps: part.maps || null } : null;
  const ready = Boolean(data.compare && data.compare.maps);
  root.dataset.compare = !data.compare ? "" : ready ? "ready" : data.compare.pending ? "pending" : "failed";
  const box = root.querySelector(".mrv-maps");
  box.hidden = !data.compare;
  if (data.compare) {
    const b = `B: ${data.compare.b}` + (ready ? "" : data.compare.pending ? " (computing…)" : " (not available)");
    choices(box, "mrv-maps", [["a", `A: ${data.compare.a}`], ["b", b], ["ab", "A | B swipe"]], "a");
    box.querySelectorAll("input").forEach((input) => { input.disabled = input.value !== "a" && !ready; });
  }
  if (!view) return;  // a first load: applyView sets the view next
  view.maps = ready && MAPS.includes(wanted) ? wanted : "a";
  markChecked("maps", view.maps);
  root.dataset.maps = view.maps;
  comparedProbabilities();
}

// The radio buttons of control `name` (mrv-NAME) show `value` as the one chosen.
function markChecked(name, value) {
  root.querySelectorAll(`input[name=mrv-${name}]`).forEach((input) => { input.checked = input.value === value; });
}

function comparedProbabilities() {
  const line = root.querySelector(".mrv-compare-p"), c = data && data.compare;
  line.hidden = !c;
  if (!c) return;
  const title = (data.tasks.find(([t]) => t === view.task) || [view.task, view.task])[1];
  const pct = (e) => e && e.probability && Number.isFinite(e.probability[view.task]) ? `${(e.probability[view.task] * 100).toFixed(1)} %` : "—";
  line.textContent = `${title}: A (${c.a}) ${pct(data)} · B (${c.b}) ` +
    (c.maps ? pct(c.maps) : c.pending ? "— computing B's maps…" : `— ${c.problem || "B's maps are not available"}`);
}

function choices(box, name, options, current) {
  box.querySelectorAll("label").forEach((l) => l.remove());
  for (const [value, title] of options) {
    const label = document.createElement("label"), input = document.createElement("input");
    input.type = "radio"; input.name = name; input.value = value; input.checked = value === current;
    input.addEventListener("change", () => setChoice(name.slice(4), value));
    label.append(input, " " + title);
    box.appendChild(label);
  }
}

function buildPane(plane) {
  const p = data.planes[plane], section = document.createElement("section");
  section.className = "mrv-plane";
  section.dataset.plane = plane;
  section.innerHTML = `<div class="mrv-plane-head"><h2>${plane[0].toUpperCase() + plane.slice(1)}</h2><span class="mrv-zoom">
      <button type="button" data-zoom="fit">Fit</button><button type="button" data-zoom="one">1:1</button>
      <button type="button" data-zoom="in" aria-label="zoom in">+</button><button type="button" data-zoom="out" aria-label="zoom out">−</button></span></div>
    <div class="mrv-stage" tabindex="0" role="img" aria-describedby="caption-${plane}" aria-label="${plane} slices: wheel, arrow keys or a one-finger drag scroll; drag sets window/level; shift-drag or two fingers pan; pinch zooms">
      <canvas width="512" height="512"></canvas></div>
    <progress class="mrv-progress" max="${p.slices}" value="0" aria-label="${plane} slices loaded"></progress>
    <input type="range" class="mrv-slider" min="0" max="${p.slices - 1}" step="1" value="0" aria-label="${plane} slice">
    <div class="mrv-track"><span class="mrv-decisive"></span></div>
    <p class="mrv-caption" id="caption-${plane}"></p>
    <svg class="mrv-bars" role="img" aria-label="contribution of each ${plane} slice to the logit; click a bar to go there"></svg>`;
  const native = document.createElement("canvas");
  native.width = native.height = SIZE;
  const pane = {
    section, native, image: new ImageData(SIZE, SIZE), stage: section.querySelector(".mrv-stage"),
    canvas: section.querySelector("canvas"), slider: section.querySelector(".mrv-slider"),
    caption: section.querySelector(".mrv-caption"), bars: section.querySelector(".mrv-bars"),
    decisive: section.querySelector(".mrv-decisive"), progress: section.querySelector(".mrv-progress"),
    zoom: 1, pan: [0, 0], barRects: [],
  };
  pane.ctx = pane.canvas.getContext("2d");
  panes[plane] = pane;
  pane.slider.addEventListener("input", () => setSlice(plane, Number(pane.slider.value)));
  pane.bars.addEventListener("click", (e) => { const s = e.target.dataset && e.target.dataset.slice; if (s !== undefined) setSlice(plane, Number(s)); });
  pane.stage.addEventListener("wheel", (e) => {
    e.preventDefault();
    if (e.ctrlKey || e.metaKey) { zoomBy(plane, e.deltaY < 0 ? 1.25 : 0.8); return; }
    setSlice(plane, view.slices[plane] + (e.deltaY > 0 ? 1 : -1));
  }, { passive: false });
  pane.stage.addEventListener("keydown", (e) => {
    const steps = { ArrowUp: -1, ArrowLeft: -1, ArrowDown: 1, ArrowRight: 1, PageUp: -5, PageDown: 5 };
    if (e.key in steps) setSlice(plane, view.slices[plane] + steps[e.key]);
    else if (e.key === "b" && explanationOf("b")) {  // compare mode: A <-> B on the same slice
      setChoice("maps", view.maps === "b" ? "a" : "b");
      markChecked("maps", view.maps);
    }
    else if (e.key === "Home") setSlice(plane, 0);
    else if (e.key === "End") setSlice(plane, data.planes[plane].slices - 1);
    else if (e.key === "+" || e.key === "=") zoomBy(plane, 1.25);
    else if (e.key === "-") zoomBy(plane, 0.8);
    else return;
    e.preventDefault();
  });
  pane.stage.addEventListener("focus", () => { if (view.plane !== plane) { view.plane = plane; syncSoon(); } });
  markController(plane, pane);  // first: while marking, it keeps the pointer from the others
  mouseController(plane, pane);
  touchController(plane, pane);
  section.querySelector(".mrv-zoom").addEventListener("click", (e) => {
    const how = e.target.dataset && e.target.dataset.zoom;
    if (how === "fit") fit(plane);
    else if (how === "one") { pane.zoom = SIZE / pane.canvas.width; pane.pan = [0, 0]; draw(plane); }
    else if (how === "in") zoomBy(plane, 1.25);
    else if (how === "out") zoomBy(plane, 0.8);
  });
  planesBox.appendChild(section);
}

function fit(plane) {
  const pane = panes[plane];
  pane.zoom = 1; pane.pan = [0, 0];
  draw(plane);
}

// The slice pixel under a pointer (client coordinates), at the pane's zoom and pan (viewer-render.js).
function slicePixel(pane, clientX, clientY) {
  const rect = pane.canvas.getBoundingClientRect();
  return slicePixelAt([clientX - rect.left, clientY - rect.top], rect.width, pane.canvas.width, pane.zoom, pane.pan);
}

// "Mark lesion": mouse, pen or one finger. A click or tap marks a point, a drag a box, in slice pixels at any zoom.
const MARK_BOX_PX = 3;   // a drag shorter than this (slice pixels) is a point
function markController(plane, pane) {
  let from = null;
  const mark = (e) => {
    const to = slicePixel(pane, e.clientX, e.clientY);
    const box = Math.abs(to[0] - from[0]) >= MARK_BOX_PX || Math.abs(to[1] - from[1]) >= MARK_BOX_PX;
    const before = view.mark && view.mark.plane;  // one mark at a time: another plane's goes
    view.mark = box
      ? { plane, slice: view.slices[plane], x: Math.min(from[0], to[0]), y: Math.min(from[1], to[1]), w: Math.abs(to[0] - from[0]), h: Math.abs(to[1] - from[1]) }
      : { plane, slice: view.slices[plane], x: from[0], y: from[1], w: 0, h: 0 };
    view.plane = plane;
    markButtons();
    draw(plane);
    if (before && before !== plane) draw(before);
  };
  pane.stage.addEventListener("pointerdown", (e) => {
    if (!marking || !e.isPrimary) return;
    e.stopImmediatePropagation();
    e.preventDefault();
    from = slicePixel(pane, e.clientX, e.clientY);
    pane.stage.setPointerCapture(e.pointerId);
    mark(e);
  });
  pane.stage.addEventListener("pointermove", (e) => {
    if (!from) return;
    e.stopImmediatePropagation();
    mark(e);
  });
  const end = (e) => {
    if (!from) return;
    e.stopImmediatePropagation();
    mark(e);
    from = null;
    syncNow();
  };
  pane.stage.addEventListener("pointerup", end);
  pane.stage.addEventListener("pointercancel", end);
}

// The mark buttons: shown for what a flag is saved for (a labelled set's case, a sample, a shared exam: what has a
// link); "Remove mark" while there is one.
function markButtons() {
  const on = Boolean(data && data.link), toggle = root.querySelector(".mrv-mark-mode");
  toggle.hidden = !on;
  if (!on) marking = false;
  toggle.setAttribute("aria-pressed", String(marking));
  root.dataset.marking = marking ? "1" : "0";
  root.querySelector(".mrv-mark-clear").hidden = !(on && view && view.mark);
}

// Mouse and pen: drag sets window/level, shift- or middle-drag pans.
function mouseController(plane, pane) {
  let drag = null;
  pane.stage.addEventListener("pointerdown", (e) => {
    if (e.pointerType === "touch") return;
    root.dataset.input = "mouse";
    pane.stage.focus();
    drag = { x: e.clientX, y: e.clientY, pan: e.shiftKey || e.button === 1, wl: { ...wl }, start: [...pane.pan] };
    pane.stage.setPointerCapture(e.pointerId);
  });
  pane.stage.addEventListener("pointermove", (e) => {
    if (!drag) return;
    const dx = e.clientX - drag.x, dy = e.clientY - drag.y;
    if (drag.pan) {
      const k = pane.canvas.width / pane.canvas.getBoundingClientRect().width;
      pane.pan = [drag.start[0] + dx * k, drag.start[1] + dy * k];
      draw(plane);
    } else {  // left-right: window width; up-down: level (centre), as on a radiology workstation
      setWindow(drag.wl.center - dy, drag.wl.width + dx * 2);
    }
  });
  const end = () => { drag = null; };
  pane.stage.addEventListener("pointerup", end);
  pane.stage.addEventListener("pointercancel", end);
}

// Touch (after NiiVue's touch controller): one finger dragged up or down scrolls slices (or sets
// window/level in the W/L touch mode), two fingers pinch to zoom about them and pan, a double tap fits.
const TOUCH_STEP_PX = 14;   // finger travel per slice
const DOUBLE_TAP_MS = 300;
function touchController(plane, pane) {
  const fingers = new Map();   // pointerId -> [x, y] (client pixels)
  let gesture = null, lastTap = null;
  const toCanvas = ([x, y]) => {
    const rect = pane.canvas.getBoundingClientRect(), k = pane.canvas.width / rect.width;
    return [(x - rect.left) * k, (y - rect.top) * k];
  };
  const two = () => {
    const [a, b] = [...fingers.values()];
    return { mid: [(a[0] + b[0]) / 2, (a[1] + b[1]) / 2], dist: Math.hypot(a[0] - b[0], a[1] - b[1]) || 1 };
  };
  const start = () => {
    if (fingers.size === 1) {
      const [at] = [...fingers.values()];
      gesture = { kind: touchMode, at, slice: view.slices[plane], wl: { ...wl } };
    } else if (fingers.size === 2) {
      const { mid, dist } = two(), { scale, off } = placement(pane), m = toCanvas(mid);
      // the image point under the fingers' midpoint stays under it
      gesture = { kind: "pinch", dist, zoom: pane.zoom, image: [(m[0] - off - pane.pan[0]) / scale, (m[1] - off - pane.pan[1]) / scale] };
    } else {
      gesture = null;
    }
  };
  pane.stage.addEventListener("pointerdown", (e) => {
    if (e.pointerType !== "touch") return;
    e.preventDefault();
    root.dataset.input = "touch";
    fingers.set(e.pointerId, [e.clientX, e.clientY]);
    pane.stage.setPointerCapture(e.pointerId);
    if (fingers.size === 1) {
      const now = e.timeStamp;  // when the finger touched, not when a busy page got to it
      if (lastTap && now - lastTap.t < DOUBLE_TAP_MS && Math.hypot(e.clientX - lastTap.x, e.clientY - lastTap.y) < 30) {
        lastTap = null;
        gesture = null;
        fit(plane);
        return;
      }
      lastTap = { t: now, x: e.clientX, y: e.clientY };
    } else {
      lastTap = null;
    }
    start();
  });
  pane.stage.addEventListener("pointermove", (e) => {
    if (e.pointerType !== "touch" || !fingers.has(e.pointerId)) return;
    fingers.set(e.pointerId, [e.clientX, e.clientY]);
    if (!gesture) return;
    if (gesture.kind === "pinch" && fingers.size === 2) {
      const { mid, dist } = two(), m = toCanvas(mid);
      setZoom(pane, gesture.zoom * dist / gesture.dist);
      const { scale, off } = placement(pane);
      pane.pan = [m[0] - off - gesture.image[0] * scale, m[1] - off - gesture.image[1] * scale];
      draw(plane);
      return;
    }
    const [x, y] = fingers.get(e.pointerId), dx = x - gesture.at[0], dy = y - gesture.at[1];
    if (Math.hypot(dx, dy) > 10) lastTap = null;  // a drag, not a tap
    if (gesture.kind === "wl") setWindow(gesture.wl.center - dy, gesture.wl.width + dx * 2);
    else if (gesture.kind === "slices") setSlice(plane, gesture.slice + Math.round(dy / TOUCH_STEP_PX));
  });
  const lift = (e) => {
    if (e.pointerType !== "touch") return;
    fingers.delete(e.pointerId);
    start();  // what the remaining fingers do now starts from here (no jump)
  };
  pane.stage.addEventListener("pointerup", lift);
  pane.stage.addEventListener("pointercancel", lift);
}

function zoomBy(plane, factor) {
  const pane = panes[plane];
  setZoom(pane, pane.zoom * factor);
  draw(plane);
}

function setWindow(center, width) {
  wl = { center: Math.max(-255, Math.min(510, center)), width: Math.max(1, Math.min(1020, width)) };
  wlTable = windowTable(wl.center, wl.width);
  root.querySelector(".mrv-wl").textContent = `W ${Math.round(wl.width)} / L ${Math.round(wl.center)}`;
  for (const plane of Object.keys(panes)) draw(plane);
}

function resetWindow() {
  wl = { center: 127.5, width: 255 };
  wlTable = identityTable();
  root.querySelector(".mrv-wl").textContent = "";
  for (const plane of Object.keys(panes)) draw(plane);
}

function applyView(next) {
  if (!data || !next || typeof next !== "object") return;
  view = {
    task: next.task in data.results ? next.task : data.tasks[0][0],
    method: data.methods.some(([m]) => m === next.method) ? next.method : data.methods[0][0],
    opacity: Number.isFinite(next.opacity) ? Math.max(0, Math.min(1, next.opacity)) : data.defaultOpacity,
    mode: data.modes.includes(next.mode) ? next.mode : data.modes[0],
    maps: explanationOf("b") && MAPS.includes(next.maps) ? next.maps : "a",
    slices: {},
    mark: validMark(next.mark),
    palette: next.palette in data.palettes ? next.palette : "jet",
  };
  view.plane = next.plane in data.planes ? next.plane : Object.keys(data.planes)[0];
  for (const plane of Object.keys(data.planes)) {
    const wanted = next.slices && Number.isInteger(next.slices[plane]) ? next.slices[plane] : data.results[view.task][plane].top_slice;
    view.slices[plane] = Math.max(0, Math.min(data.planes[plane].slices - 1, wanted));
  }
  choices(root.querySelector(".mrv-task"), "mrv-task", data.tasks, view.task);
  choices(root.querySelector(".mrv-method"), "mrv-method", data.methods, view.method);
  choices(root.querySelector(".mrv-mode"), "mrv-mode", data.modes.map((m) => [m, m]), view.mode);
  markChecked("palette", view.palette);
  root.dataset.palette = view.palette;
  root.querySelector(".mrv-opacity").value = String(view.opacity);
  root.querySelector(".mrv-opacity-out").textContent = view.opacity.toFixed(2);
  markChecked("maps", view.maps);
  root.dataset.mode = view.mode;
  root.dataset.maps = view.maps;
  comparedProbabilities();
  markButtons();
  for (const plane of Object.keys(panes)) drawBars(plane);
  redrawAll();
}

// A mark the server or a link sent, if it lies inside a slice of this exam; else none.
function validMark(m) {
  if (!m || typeof m !== "object" || !(m.plane in data.planes)) return null;
  const whole = ["slice", "x", "y", "w", "h"].every((k) => Number.isInteger(m[k]) && m[k] >= 0);
  if (!whole || m.slice >= data.planes[m.plane].slices || m.x + m.w >= SIZE || m.y + m.h >= SIZE) return null;
  return { plane: m.plane, slice: m.slice, x: m.x, y: m.y, w: m.w, h: m.h };
}

// Every task's, plane's and method's maps, each deflated uint16 (payload.packed_levels), inflated at once.
async function decodeCams(encoded) {
  const cams = {}, jobs = [];
  for (const [task, perPlane] of Object.entries(encoded)) {
    cams[task] = {};
    for (const [plane, perMethod] of Object.entries(perPlane)) {
      cams[task][plane] = {};
      for (const [method, b64] of Object.entries(perMethod)) {
        jobs.push(inflate(b64).then((bytes) => { cams[task][plane][method] = levelsOf(bytes); }));
      }
    }
  }
  await Promise.all(jobs);
  return cams;
}

// Compare mode's part of a payload with B's maps decoded (a part without maps as it came).
async function decodedComparison(part) {
  return part && part.maps ? { ...part, maps: { ...part.maps, cams: await decodeCams(part.maps.cams) } } : part;
}

// The first view is drawn from the slices inside the payload (each plane's decisive slice for the task the
// viewer opens on); the rest arrive pass by pass (the other tasks' decisive slices with every 4th slice, then
// the gaps), each drawn as it lands. A newer analysis stops
// the older one's transfers; a pass that still fails after one retry is said in the viewer, and what arrived
// stays usable.
async function load(payload, generation, signal) {
  const started = performance.now(), current = () => generation === loads;
  root.dataset.ready = "0";
  root.dataset.complete = "0";
  showError("");
  planesBox.replaceChildren();
  strip.replaceChildren();
  for (const key of Object.keys(panes)) delete panes[key];
  data = null;
  if (!payload || !payload.planes) return;
  const names = Object.keys(payload.planes);
  const planes = Object.fromEntries(names.map((name) => {
    const n = payload.planes[name].slices;
    return [name, { slices: n, pixels: new Uint8Array(n * SIZE * SIZE), have: new Uint8Array(n), loaded: 0 }];
  }));
  // the later passes start now, while the first view is decoded and drawn: each plane fetches its own in order,
  // with no wait for the other planes between passes (a plane between two requests leaves the link to the others)
  const later = Object.fromEntries(names.map((name) => [name, inOrder(payload.planes[name].passes.slice(1), signal)]));
  const firsts = await Promise.all(names.map((name) => passPixels(payload.planes[name].passes[0], signal)));
  if (!current()) return;
  names.forEach((name, i) => place(planes[name], payload.planes[name].passes[0].indices, firsts[i]));
  const cams = await decodeCams(payload.cams);
  const masks = {};
  for (const [plane, b64] of Object.entries(payload.masks || {})) masks[plane] = await inflate(b64);
  if (!current()) return;
  // B's maps may come meanwhile, in a newer payload of the same analysis: the latest one's part is decoded
  const comparePart = () => (props.data && props.data.id === payload.id ? props.data : payload).compare;
  let part, decoded;
  do {
    part = comparePart();
    decoded = await decodedComparison(part);
    if (!current()) return;
  } while (part !== comparePart());
  const [h, w] = payload.grid;
  data = {
    planes, cams, grid: payload.grid, tasks: payload.tasks, methods: payload.methods, results: payload.results,
    modes: payload.modes, top: payload.top, probability: payload.probability || {}, palettes: Object.fromEntries(Object.entries(payload.palettes).map(([name, table]) => [name, bytesOf(table)])), tapsX: linearTaps(w, SIZE),
    tapsY: linearTaps(h, SIZE), rowScratch: new Float32Array(h * SIZE), camScratch: new Uint8ClampedArray(SIZE * SIZE),
    camScratchB: new Uint8ClampedArray(SIZE * SIZE), id: payload.id, masks, taskBits: payload.taskBits || {},
    link: payload.link || null, defaultOpacity: payload.defaultOpacity, compare: null,
  };
  root.dataset.masks = Object.keys(masks).length ? "1" : "0";
  for (const plane of Object.keys(planes)) buildPane(plane);
  const asked = props.value && typeof props.value === "object" ? props.value : {};  // no view asked: the defaults
  setComparison(decoded, asked.maps);
  applyView(asked);
  for (const plane of names) progress(plane);
  root.dataset.analysis = payload.id;
  root.dataset.loadMs = (performance.now() - started).toFixed(1);  // to the first overlays, for the benchmark
  root.dataset.ready = "1";
  const failed = Object.fromEntries(names.map((name) => [name, []]));
  await Promise.all(names.map(async (name) => {
    const passes = payload.planes[name].passes.slice(1);
    for (let k = 0; k < passes.length; k++) {
      try {
        const bytes = await later[name][k];
        if (!current()) return;
        place(planes[name], passes[k].indices, bytes);
        progress(name);
        if (panes[name].stage.dataset.shown !== String(view.slices[name])) draw(name);
        if (inStrip(name, passes[k].indices)) drawStrip();
      } catch (err) {
        if (current()) failed[name].push(...passes[k].indices);
      }
    }
  }));
  if (!current()) return;
  const lost = names.filter((name) => failed[name].length);
  if (lost.length) {
    showError(lost.map((name) => `Slices ${ranges(failed[name])} of the ${name} series could not be loaded; ` +
      "the nearest loaded slice is shown instead.").join(" "));
  }
  root.dataset.allMs = (performance.now() - started).toFixed(1);
  root.dataset.complete = "1";
}

// Each pass's transfer starts once the one before it has settled (arrived or failed); every promise is handled
// here, so a load dropped for a newer one leaves no unhandled rejection behind.
function inOrder(passes, signal) {
  let previous = Promise.resolve();
  return passes.map((pass) => {
    const pixels = previous.then(() => passPixels(pass, signal));
    previous = pixels.catch(() => {});
    return pixels;
  });
}

function inStrip(plane, indices) {
  return (shownExplanation().top[view.task] || data.top[view.task]).some(([p, i]) => p === plane && indices.includes(i));
}

function place(p, indices, bytes) {
  if (bytes.length !== indices.length * SIZE * SIZE) throw new Error(`viewer: a pass of ${indices.length} slices holds ${bytes.length} bytes`);
  indices.forEach((index, k) => {
    p.pixels.set(bytes.subarray(k * SIZE * SIZE, (k + 1) * SIZE * SIZE), index * SIZE * SIZE);
    if (!p.have[index]) { p.have[index] = 1; p.loaded++; }
  });
}

function progress(plane) {
  const p = data.planes[plane], bar = panes[plane].progress;
  bar.value = p.loaded;
  bar.hidden = p.loaded >= p.slices;
}

function showError(text) {
  const box = root.querySelector(".mrv-error");
  box.textContent = text;
  box.hidden = !text;
}

root.querySelectorAll("input[name=mrv-palette]").forEach((input) => input.addEventListener("change", () => {
  root.dataset.palette = input.value;
  setChoice("palette", input.value);
}));
root.querySelector(".mrv-opacity").addEventListener("input", (e) => {
  root.querySelector(".mrv-opacity-out").textContent = Number(e.target.value).toFixed(2);
  setChoice("opacity", Number(e.target.value));
});
root.querySelector(".mrv-swipe").addEventListener("input", (e) => { swipeX = Number(e.target.value); for (const plane of Object.keys(panes)) draw(plane); });
root.querySelector(".mrv-reset-wl").addEventListener("click", resetWindow);
root.querySelector(".mrv-touch-mode").addEventListener("click", (e) => {
  touchMode = touchMode === "slices" ? "wl" : "slices";
  e.target.setAttribute("aria-pressed", String(touchMode === "wl"));
  e.target.textContent = touchMode === "wl" ? "Touch: window/level" : "Touch: slices";
});
root.querySelector(".mrv-mark-mode").addEventListener("click", () => { marking = !marking; markButtons(); });
root.querySelector(".mrv-mark-clear").addEventListener("click", () => {
  view.mark = null;
  markButtons();
  redrawAll();
  syncNow();
});
root.dataset.input = window.matchMedia("(pointer: coarse)").matches ? "touch" : "mouse";
root.querySelector(".mrv-outline").addEventListener("change", (e) => { outline = e.target.checked; redrawAll(); });
root.querySelector(".mrv-copy").addEventListener("click", async () => {
  const field = root.querySelector(".mrv-link"), note = root.querySelector(".mrv-copied");
  try {
    await navigator.clipboard.writeText(field.value);
    note.textContent = "copied";
  } catch (err) {  // no clipboard (an insecure origin, or refused): the link is selected for Ctrl-C
    field.select();
    note.textContent = "press Ctrl-C to copy";
  }
});

// Each analysis starts at once and stops the one before it (its transfers are aborted, its results dropped);
// whatever happened to a previous load, the next one runs. A payload of the analysis already shown (compare
// mode's second weights arriving) only adds its maps, or the link of an exam just shared.
let loads = 0, transfers = null, loadingId = null;
const reload = () => {
  if (props.data && props.data.id && props.data.id === loadingId) {
    if (data && data.id === loadingId && props.data.link !== undefined) {  // the exam was shared: its link
      data.link = props.data.link;
      syncLink();
      markButtons();  // a shared exam can be flagged, and marked
    }
    if (data && data.id === loadingId && props.data.compare !== undefined) {
      const id = data.id;
      decodedComparison(props.data.compare).then((part) => {
        if (!data || data.id !== id) return;  // a newer analysis came meanwhile
        setComparison(part, view.maps);
        for (const plane of Object.keys(panes)) drawBars(plane);
        redrawAll();
      }).catch((err) => console.error("viewer: the second weights' maps could not be read:", err));
    }
    return;  // a load still under way reads props.data when it gets there
  }
  // B's maps, or a share's link, for an analysis no longer shown
  if (props.data && !props.data.planes && (props.data.compare || props.data.link)) return;
  loadingId = props.data && props.data.id;
  const generation = ++loads;
  if (transfers) transfers.abort();
  transfers = new AbortController();
  load(props.data, generation, transfers.signal).catch((err) => {
    if (generation !== loads) return;
    loadingId = null;  // the same analysis sent again loads again
    showError("This analysis could not be shown in the viewer: its data is damaged. Run it again.");
    console.error("viewer:", err);
  });
};
watch("data", reload);
watch("value", () => { if (data && JSON.stringify(props.value) !== JSON.stringify(view)) applyView(props.value); });
reload();
