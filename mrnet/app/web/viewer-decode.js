// The viewer's decoding, pure (no DOM, no state): base64 and deflate (the browser's DecompressionStream), PNG's
// Average filter undone, 16-bit display levels. Bundled before viewer.js (components.py); node's test runner
// tests it (tests/js/).
const SIZE = 256;

function bytesOf(b64) {
  if (Uint8Array.fromBase64) return Uint8Array.fromBase64(b64);  // native where the browser has it
  const bin = atob(b64), out = new Uint8Array(bin.length);
  for (let i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
  return out;
}

async function inflate(b64) {
  const stream = new Blob([bytesOf(b64)]).stream().pipeThrough(new DecompressionStream("deflate"));
  return new Uint8Array(await new Response(stream).arrayBuffer());
}

// Slices travel as PNG's Average filter (payload.average_filtered: each pixel minus the mean of its left and
// upper neighbours, mod 256), which deflate packs smaller; this undoes it in place, row by row.
function unfilterAverage(bytes) {
  for (let start = 0; start < bytes.length; start += SIZE) {
    const firstRow = start % (SIZE * SIZE) === 0;
    for (let x = 0; x < SIZE; x++) {
      const left = x ? bytes[start + x - 1] : 0, up = firstRow ? 0 : bytes[start + x - SIZE];
      bytes[start + x] += (left + up) >> 1;  // a Uint8Array wraps mod 256
    }
  }
  return bytes;
}

// uint16 in 1/256ths of a grey level -> the float levels the server draws from (the division is exact)
function levelsOf(bytes) {
  const fixed = new Uint16Array(bytes.buffer, bytes.byteOffset, bytes.length >> 1), levels = new Float32Array(fixed.length);
  for (let i = 0; i < fixed.length; i++) levels[i] = fixed[i] / 256;
  return levels;
}
