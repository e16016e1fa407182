// The viewer's pixel maths, pure (no DOM, no state): the window/level table, cv2's bilinear taps and upsampling,
// the lesion outline, the ranges of slices a message names. Bundled before viewer.js (components.py); node's
// test runner tests it (tests/js/).
function identityTable() { const t = new Uint8Array(256); for (let i = 0; i < 256; i++) t[i] = i; return t; }

function windowTable(center, width) {
  const t = new Uint8Array(256), lo = center - width / 2;
  for (let i = 0; i < 256; i++) t[i] = Math.max(0, Math.min(255, Math.round((i - lo) / width * 255)));
  return t;
}

// "3, 12–15 and 31" for the message about slices that could not be loaded.
function ranges(indices) {
  const sorted = [...indices].sort((a, b) => a - b), parts = [];
  for (let i = 0; i < sorted.length; i++) {
    let j = i;
    while (j + 1 < sorted.length && sorted[j + 1] === sorted[j] + 1) j++;
    parts.push(i === j ? `${sorted[i]}` : `${sorted[i]}–${sorted[j]}`);
    i = j;
  }
  return parts.length > 1 ? `${parts.slice(0, -1).join(", ")} and ${parts[parts.length - 1]}` : parts[0];
}

// cv2.resize INTER_LINEAR on float input: source coordinate (d + 0.5) * scale - 0.5, clamped at the edges.
function linearTaps(src, dst) {
  const i0 = new Int32Array(dst), i1 = new Int32Array(dst), w1 = new Float32Array(dst), scale = src / dst;
  for (let d = 0; d < dst; d++) {
    let f = (d + 0.5) * scale - 0.5, s = Math.floor(f);
    f -= s;
    if (s < 0) { s = 0; f = 0; }
    if (s >= src - 1) { s = src - 1; f = 0; }
    i0[d] = s; i1[d] = Math.min(s + 1, src - 1); w1[d] = f;
  }
  return { i0, i1, w1 };
}

// A low-resolution map (h x w cells from `offset`) upsampled into `out` (SIZE x SIZE) with the taps of linearTaps
// (xs: columns, ys: rows); `rows` is scratch of h x SIZE.
function upsampleInto(cells, offset, h, w, out, xs, ys, rows) {
  for (let r = 0; r < h; r++) {
    const base = offset + r * w;
    for (let x = 0; x < SIZE; x++) {
      const f = xs.w1[x];
      rows[r * SIZE + x] = cells[base + xs.i0[x]] * (1 - f) + cells[base + xs.i1[x]] * f;
    }
  }
  for (let y = 0; y < SIZE; y++) {
    const f = ys.w1[y], a = ys.i0[y] * SIZE, b = ys.i1[y] * SIZE, o = y * SIZE;
    for (let x = 0; x < SIZE; x++) out[o + x] = rows[a + x] * (1 - f) + rows[b + x] * f;  // Uint8ClampedArray rounds
  }
}

// The border of the task's true lesion (mask pixels with a 4-neighbour outside it), in green.
function drawOutline(masks, index, bits, px) {
  const m = masks.subarray(index * SIZE * SIZE, (index + 1) * SIZE * SIZE);
  const inside = (x, y) => x >= 0 && y >= 0 && x < SIZE && y < SIZE && (m[y * SIZE + x] & bits) !== 0;
  for (let y = 0; y < SIZE; y++) {
    for (let x = 0; x < SIZE; x++) {
      if (!inside(x, y) || (inside(x - 1, y) && inside(x + 1, y) && inside(x, y - 1) && inside(x, y + 1))) continue;
      const j = (y * SIZE + x) * 4;
      px[j] = 0; px[j + 1] = 255; px[j + 2] = 0;
    }
  }
}

// Where a canvas is drawn at `zoom` (1: the slice fills it) and panned by `pan` (canvas pixels): canvas pixels per
// slice pixel, and the offset that centres the slice. A canvas point c shows slice pixel (c - off - pan) / scale.
function placementAt(canvasWidth, zoom) {
  const scale = zoom * canvasWidth / SIZE;
  return { scale, off: (canvasWidth - SIZE * scale) / 2 };
}

// The slice pixel [x, y] under a point in CSS pixels from the canvas's corner (drawn `cssWidth` wide), kept inside
// the slice: what a click or tap marks, at any zoom and pan.
function slicePixelAt(point, cssWidth, canvasWidth, zoom, pan) {
  const { scale, off } = placementAt(canvasWidth, zoom), k = canvasWidth / cssWidth;
  return point.map((c, i) => Math.max(0, Math.min(SIZE - 1, Math.floor((c * k - off - pan[i]) / scale))));
}
