// The viewer's pure modules (mrnet/app/web/viewer-decode.js, viewer-render.js) under node's test runner, against
// independent computations written here: cv2's bilinear formula, PNG's Average filter, deflate round trips.
import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { deflateSync } from "node:zlib";

const web = new URL("../../mrnet/app/web/", import.meta.url);
const source = ["viewer-decode.js", "viewer-render.js"].map((f) => readFileSync(new URL(f, web), "utf8")).join("\n");
const V = new Function(`${source}; return { SIZE, bytesOf, inflate, unfilterAverage, levelsOf, identityTable,
  windowTable, ranges, linearTaps, upsampleInto, drawOutline, placementAt, slicePixelAt };`)();

test("PNG's Average filter is undone exactly, slice by slice", () => {
  const S = V.SIZE, slices = 2, pixels = new Uint8Array(slices * S * S);
  for (let i = 0; i < pixels.length; i++) pixels[i] = (i * 7919 + (i >> 9) * 31) % 256;
  const filtered = new Uint8Array(pixels.length);
  for (let i = 0; i < pixels.length; i++) {
    const x = i % S, y = Math.floor(i / S) % S;
    const left = x ? pixels[i - 1] : 0, up = y ? pixels[i - S] : 0;
    filtered[i] = (pixels[i] - ((left + up) >> 1) + 256) % 256;
  }
  assert.deepEqual(V.unfilterAverage(filtered), pixels);
});

test("base64 and deflate round trip, and 16-bit levels are 1/256ths of a grey level", async () => {
  const raw = new Uint16Array([0, 256, 511, 65535]);
  const b64 = deflateSync(Buffer.from(raw.buffer)).toString("base64");
  const bytes = await V.inflate(b64);
  assert.deepEqual(Array.from(V.levelsOf(bytes)), [0, 1, 511 / 256, 65535 / 256]);
  assert.deepEqual(Array.from(V.bytesOf(Buffer.from([1, 2, 250]).toString("base64"))), [1, 2, 250]);
});

test("window/level: the identity, and a window that clips both ends", () => {
  assert.deepEqual(Array.from(V.identityTable()), Array.from({ length: 256 }, (_, i) => i));
  const t = V.windowTable(100, 50);
  assert.equal(t[0], 0); assert.equal(t[75], 0); assert.equal(t[100], 128); assert.equal(t[125], 255); assert.equal(t[255], 255);
});

test("bilinear taps and upsampling follow cv2.resize INTER_LINEAR", () => {
  const src = 7, dst = V.SIZE, taps = V.linearTaps(src, dst);
  for (let d = 0; d < dst; d++) {  // cv2: source coordinate (d + 0.5) * src / dst - 0.5, clamped at the edges
    const f = Math.min(Math.max((d + 0.5) * src / dst - 0.5, 0), src - 1), s = Math.floor(f);
    const expected = s >= src - 1 ? [src - 1, src - 1, 0] : [s, s + 1, f - s];
    assert.equal(taps.i0[d], expected[0]); assert.equal(taps.i1[d], expected[1]);
    assert.ok(Math.abs(taps.w1[d] - expected[2]) < 1e-6);
  }
  const cells = new Float32Array(src * src).map((_, i) => (i * 37) % 255), out = new Uint8ClampedArray(dst * dst);
  V.upsampleInto(cells, 0, src, src, out, taps, taps, new Float32Array(src * dst));
  for (const [y, x] of [[0, 0], [100, 37], [255, 255], [128, 200]]) {
    const ys = taps, xs = taps, at = (r, c) => cells[r * src + c];
    const row = (r) => at(r, xs.i0[x]) * (1 - xs.w1[x]) + at(r, xs.i1[x]) * xs.w1[x];
    const value = row(ys.i0[y]) * (1 - ys.w1[y]) + row(ys.i1[y]) * ys.w1[y];
    assert.ok(Math.abs(out[y * dst + x] - value) <= 0.5 + 1e-4, `${y},${x}: ${out[y * dst + x]} vs ${value}`);
  }
});

test("the outline marks the border of the task's lesion and nothing inside it", () => {
  const S = V.SIZE, masks = new Uint8Array(S * S), px = new Uint8ClampedArray(S * S * 4);
  for (let y = 10; y < 20; y++) for (let x = 30; x < 40; x++) masks[y * S + x] = 2;
  V.drawOutline(masks, 0, 2, px);
  const green = (x, y) => px[(y * S + x) * 4 + 1] === 255;
  assert.ok(green(30, 10) && green(39, 19) && green(35, 10) && !green(35, 15) && !green(29, 10));
  V.drawOutline(masks, 0, 1, px.fill(0));  // another task's bit: nothing
  assert.ok(!px.some((v) => v));
});

test("ranges of slices read as a sentence", () => {
  assert.equal(V.ranges([3]), "3");
  assert.equal(V.ranges([31, 3, 12, 13, 14, 15]), "3, 12–15 and 31");
});

test("a click or tap names the slice pixel under it at any zoom and pan, kept inside the slice", () => {
  const S = V.SIZE;
  // a 512-pixel canvas drawn 300 CSS pixels wide: at zoom 1 the slice fills it, one slice pixel per 300/256 CSS px
  assert.deepEqual(V.slicePixelAt([0, 0], 300, 512, 1, [0, 0]), [0, 0]);
  assert.deepEqual(V.slicePixelAt([150, 150], 300, 512, 1, [0, 0]), [128, 128]);
  assert.deepEqual(V.slicePixelAt([299.9, 299.9], 300, 512, 1, [0, 0]), [S - 1, S - 1]);
  // zoom 2 about the centre: the centre still shows (128, 128); 30 CSS px right is 30 * 256 / (2 * 300) = 12.8 px
  assert.deepEqual(V.slicePixelAt([150 + 30, 150 - 24], 300, 512, 2, [0, 0]), [140, 117]);
  // a pan of 100 canvas pixels to the right moves the slice under the point 100 / (2 * 2) = 25 slice pixels left
  assert.deepEqual(V.slicePixelAt([150, 150], 300, 512, 2, [100, 0]), [103, 128]);
  // outside the slice (zoomed out, a click on the black border): the nearest edge pixel
  assert.deepEqual(V.slicePixelAt([1, 299], 300, 512, 0.5, [0, 0]), [0, S - 1]);
  assert.deepEqual(V.placementAt(512, 1), { scale: 2, off: 0 });
});
