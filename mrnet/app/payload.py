"""The server half of the slice viewer (mrnet/app/web/viewer.js): what one analysis sends to the browser, from
which it draws any slice, task and method (slices as PNG-filtered deflated files, maps as 16-bit display levels,
the palettes' tables, the numbers for captions and bars), and compare mode's second maps."""
from __future__ import annotations

import base64
import uuid
import zlib
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from mrnet.app.pixels import PixelStore
from mrnet.app.view import MODES
from mrnet.core.analysis import Analysis
from mrnet.core.config import DEFAULT_METHOD, DEFAULT_OPACITY, PALETTES, PLANES, TASK_BITS, TASK_TITLES
from mrnet.core.explain import LEVEL_FRACTION, METHODS, display_levels, palette_table


def packed_levels(levels: np.ndarray) -> str:
    """`explain.display_levels` for the viewer: in 1/256ths of a grey level as little-endian uint16 (exact: the
    levels are rounded to that step), deflated and in base64. Gradio's event stream is not compressed; the 7x7
    maps of every task, method and slice of the 3 x 32 phantom were 162 kB of the first event as deflated
    float32, whose low mantissa bytes are noise to deflate. The browser inflates them with its native
    DecompressionStream."""
    fixed = np.round(np.asarray(levels, dtype=np.float32) * LEVEL_FRACTION).astype("<u2")
    return base64.b64encode(zlib.compress(np.ascontiguousarray(fixed).tobytes(), 6)).decode("ascii")


def b64(array: np.ndarray) -> str:
    return base64.b64encode(np.ascontiguousarray(array).tobytes()).decode("ascii")


def analysed_planes(analysis: Analysis) -> list[str]:
    return [p for p in PLANES if any(p in t.planes for t in analysis.tasks.values())]


def viewer_payload(analysis: Analysis, masks: dict[str, np.ndarray] | None = None, link: dict | None = None,
                   store: PixelStore | None = None, task: str | None = None) -> dict:
    """Everything the browser needs to draw any slice, task and method: each plane's uint8 slices once
    (`packed_slices`), and every task's and method's low-resolution maps as the method displays them
    (`explain.display_levels`: the values `explain.upsample` resizes), plus the numbers for
    captions and bars. The browser upsamples and colours them; nothing more comes from the server.
    Slices come in passes (`slice_passes`): the first view's slices (the decisive slice of each plane for
    `task`, the one the viewer opens on) inside this JSON, so that the first overlays are drawn as soon as it
    arrives; then the other tasks' decisive slices with every 4th slice, then the gaps, as files the browser
    fetches (`url`, with a `store`) or base64 here (without).
    A case of a labelled set also carries its lesion masks (bit fields, cases.TASK_BITS; the browser
    outlines them) and its link ({"dataset", "case"}: what the page's URL may name)."""
    planes = analysed_planes(analysis)
    masks = {p: m for p, m in (masks or {}).items()
             if p in planes and m.shape == analysis.exam.volumes[p].shape and m.dtype == np.uint8}
    grid = next(iter(next(iter(analysis.tasks.values())).planes.values())).maps[DEFAULT_METHOD].shape[-2:]
    task = task if task in analysis.tasks else next(iter(analysis.tasks))  # the task the viewer opens on

    def decisive(p: str, tasks) -> set[int]:
        return {analysis.tasks[t].planes[p].top_slice for t in tasks if p in analysis.tasks[t].planes}
    passes = {p: slice_passes(len(analysis.exam.volumes[p]), decisive(p, [task]), decisive(p, analysis.tasks))
              for p in planes}
    jobs = [(p, k) for p in planes for k in range(len(passes[p]))]
    with ThreadPoolExecutor(max_workers=3) as pool:  # zlib releases the GIL: passes compress in parallel
        packed = dict(zip(jobs, pool.map(lambda job: packed_slices(analysis.exam.volumes[job[0]][passes[job[0]][job[1]]]),
                                         jobs)))

    def shipped(p: str, k: int) -> dict:
        if k == 0 or store is None:
            return {"indices": passes[p][k], "pixels": base64.b64encode(packed[p, k]).decode("ascii")}
        return {"indices": passes[p][k], "url": store(packed[p, k])}
    return {
        "id": uuid.uuid4().hex,
        "grid": [int(grid[0]), int(grid[1])],
        "planes": {p: {"slices": int(len(analysis.exam.volumes[p])),
                       "passes": [shipped(p, k) for k in range(len(passes[p]))]} for p in planes},
        "tasks": [[t, TASK_TITLES.get(t, t)] for t in analysis.tasks],
        "methods": [[name, m.title] for name, m in METHODS.items()],
        "modes": list(MODES),  # what the viewer shows: written once, in mrnet.app.view
        **explanation(analysis),
        "palettes": {name: b64(palette_table(name)) for name in PALETTES},  # the browser colours with these tables
        "masks": {p: base64.b64encode(zlib_bytes(m)).decode("ascii") for p, m in masks.items()},
        "taskBits": TASK_BITS,
        "defaultOpacity": DEFAULT_OPACITY,
        "link": link,
    }


def explanation(analysis: Analysis) -> dict:
    """What one set of weights says about the exam, as the viewer draws it: every task's and method's display
    maps (`cams`), each plane's slice contributions (`results`), the top slices and the fused probabilities."""
    return {
        "cams": {t: {p: {m: packed_levels(display_levels(result.display_maps(p, m)))
                         for m in METHODS} for p in result.planes} for t, result in analysis.tasks.items()},
        "results": {t: {p: {"contributions": [round(float(c), 6) for c in r.contributions], "logit": r.logit,
                            "bias": r.bias, "top_slice": r.top_slice} for p, r in result.planes.items()}
                    for t, result in analysis.tasks.items()},
        "top": {t: [[p, i, share] for p, i, share in analysis.top_slices(t, 6)] for t in analysis.tasks},
        "probability": {t: result.probability for t, result in analysis.tasks.items()},
    }


def with_comparison(payload: dict, name_a: str, name_b: str, maps: dict | None = None, problem: str = "") -> dict:
    """The viewer's data in compare mode: a copy of `payload` (A's) that also carries the second weights'
    explanation of the same exam (`maps`, `explanation` of their analysis, made once per case), or says it is on
    its way (neither `maps` nor `problem`) or why it is not there (`problem`). The slices are A's: the maps of
    both weights are drawn over the same pixels."""
    part: dict = {"a": name_a, "b": name_b}
    if maps is not None:
        part["maps"] = maps
    elif problem:
        part["problem"] = problem
    else:
        part["pending"] = True
    return {**payload, "compare": part}


def slice_passes(n: int, first: set[int], soon: frozenset[int] | set[int] = frozenset()) -> list[list[int]]:
    """The order a plane's slices travel in: `first` (the first view's), then `soon` with every 4th slice, then
    every 2nd, then the rest, so that the slider finds a slice near anywhere early (Cornerstone3D's
    interleaved loading)."""
    rest = [i for i in range(n) if i not in first]
    later = [[i for i in rest if i % 4 == 0 or i in soon], [i for i in rest if i % 4 == 2 and i not in soon],
             [i for i in rest if i % 2 == 1 and i not in soon]]
    return [sorted(int(i) for i in first)] + [p for p in later if p]


def average_filtered(slices: np.ndarray) -> np.ndarray:
    """(S, H, W) uint8 -> PNG's Average filter of every row of every slice: each pixel minus the floor of the mean
    of its left and upper neighbours (0 outside the slice), mod 256. Lossless; the browser undoes it."""
    v = slices.astype(np.int16)
    neighbours = np.zeros_like(v)
    neighbours[:, :, 1:] += v[:, :, :-1]
    neighbours[:, 1:, :] += v[:, :-1, :]
    return (v - (neighbours >> 1)).astype(np.uint8)  # int16 -> uint8 wraps mod 256


def packed_slices(slices: np.ndarray) -> bytes:
    """How slices travel to the viewer: PNG's Average filter, then deflate with zlib's run-length strategy
    (Z_RLE: matches at distance 1 only, each residual Huffman-coded), which the browser inflates with its
    native DecompressionStream. Measured by bench/network_bench.py: after the filter, long-distance matches
    buy almost nothing, so Z_RLE is both smaller and faster than level 1's match search (docs/speed.md)."""
    packer = zlib.compressobj(zlib.Z_DEFAULT_COMPRESSION, zlib.DEFLATED, 15, 8, zlib.Z_RLE)
    filtered = average_filtered(np.ascontiguousarray(slices, dtype=np.uint8))
    return packer.compress(filtered.tobytes()) + packer.flush()


def zlib_bytes(volume: np.ndarray) -> bytes:
    return zlib.compress(np.ascontiguousarray(volume, dtype=np.uint8).tobytes(), 1)  # level 1: most of the gain, a fraction of the time
