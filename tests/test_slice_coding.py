"""How slices and maps travel to the viewer. Slices (present.packed_slices): PNG's Average filter, then deflate. A PNG decoder,
not our own inverse, checks that the filter is PNG's; the browser's inverse is checked by the canvas tests in
test_browser.py (raw slices of every pass equal the server's pixels). Maps (present.packed_levels): the display
levels in 1/256ths of a grey level, exactly, as 16 bits."""
import base64
import struct
import zlib
from pathlib import Path

import cv2
import numpy as np

from mrnet.app.payload import average_filtered, packed_levels, packed_slices
from mrnet.sets.samples import BY_KEY, sample_file


def png_of_filtered_rows(filtered: np.ndarray) -> bytes:
    """A greyscale PNG whose every row says 'filter type 3 (Average)' over the given filtered bytes."""
    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))
    h, w = filtered.shape
    rows = b"".join(b"\x03" + filtered[y].tobytes() for y in range(h))
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 0, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b""))


def test_the_filter_is_pngs_average_filter_on_the_real_knee_and_a_phantom():
    knee = np.load(sample_file(BY_KEY["real-knee"]))["sagittal"]
    phantom = np.load(sample_file(BY_KEY["phantom-acl"]))["coronal"]
    noise = np.random.default_rng(0).integers(0, 256, (2, 256, 256), dtype=np.uint8)  # every wrap-around mod 256
    for slices in (knee[[0, len(knee) // 2]], phantom[[3, 17]], noise):
        filtered = average_filtered(slices)
        for original, rows in zip(slices, filtered):
            decoded = cv2.imdecode(np.frombuffer(png_of_filtered_rows(rows), np.uint8), cv2.IMREAD_UNCHANGED)
            np.testing.assert_array_equal(decoded, original)


def test_packed_slices_inflate_to_the_filtered_bytes_and_are_smaller_than_plain_zlib():
    for slices in (np.load(sample_file(BY_KEY["real-knee"]))["sagittal"],
                   np.load(sample_file(BY_KEY["phantom-acl"]))["coronal"]):
        packed = packed_slices(slices)
        assert zlib.decompress(packed) == average_filtered(slices).tobytes()  # a plain zlib stream
        assert len(packed) < 0.95 * len(zlib.compress(slices.tobytes(), 1))
        assert len(packed) < len(zlib.compress(average_filtered(slices).tobytes(), 1))  # Z_RLE beats level 1 here


def test_packed_levels_are_the_display_levels_exactly_and_smaller_than_float32():
    from mrnet.core.explain import display_levels
    rng = np.random.default_rng(1)
    maps = np.concatenate([rng.uniform(-0.2, 1.2, (40, 7, 7)), [[[0.0, 1.0, 0.5, 1 / 3, 2 / 3, 1e-7, 1 - 1e-7]] * 7]])
    levels = display_levels(maps.astype(np.float32))
    assert levels.dtype == np.float32 and levels.min() == 0 and levels.max() == 255
    packed = base64.b64decode(packed_levels(levels))
    received = np.frombuffer(zlib.decompress(packed), "<u2").astype(np.float32) / 256  # as viewer.js's levelsOf
    np.testing.assert_array_equal(received.reshape(levels.shape), levels)
    np.testing.assert_allclose(levels, np.clip(maps, 0, 1) * 255, atol=1 / 512 + 1e-4)  # rounded to 1/256 only
    unrounded = (np.clip(maps, 0, 1).astype(np.float32) * np.float32(255)).tobytes()  # what went before
    assert len(packed) < 0.7 * len(zlib.compress(unrounded, 6))


def test_every_slice_travels_once_in_the_payloads_passes_and_each_pass_is_the_exams_slices(tmp_path):
    """The payload's passes: the first view's decisive slices inside the JSON, then files (a PixelStore's), every
    slice in exactly one pass, the every-4th slices before the others. Decoded, every pass is the exam's slices,
    through a PNG decoder."""
    from mrnet.app.payload import viewer_payload
    from mrnet.app.pixels import PixelStore
    from mrnet.core.analysis import analyze
    from mrnet.core.compute import compute_for
    from mrnet.core.hub import resolve
    from mrnet.inputs.load import load_exam
    exam = load_exam([sample_file(BY_KEY["phantom-acl"])])
    analysis = analyze(exam, resolve("").weights, compute_for("cpu", "fp32"))
    payload = viewer_payload(analysis, store=PixelStore(tmp_path))
    for plane, volume in exam.volumes.items():
        passes = payload["planes"][plane]["passes"]
        assert "pixels" in passes[0] and all("url" in p for p in passes[1:])
        indices = [i for p in passes for i in p["indices"]]
        assert sorted(indices) == list(range(len(volume)))
        assert {i for i in range(0, len(volume), 4)} <= set(passes[0]["indices"]) | set(passes[1]["indices"])
        for p in passes:
            packed = (Path(p["url"].split("file=", 1)[1]).read_bytes() if "url" in p
                      else base64.b64decode(p["pixels"]))
            filtered = np.frombuffer(zlib.decompress(packed), np.uint8).reshape(-1, *volume.shape[1:])
            assert len(filtered) == len(p["indices"])
            for index, rows in zip(p["indices"], filtered):
                decoded = cv2.imdecode(np.frombuffer(png_of_filtered_rows(rows), np.uint8), cv2.IMREAD_UNCHANGED)
                np.testing.assert_array_equal(decoded, volume[index])
