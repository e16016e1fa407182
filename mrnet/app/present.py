"""What the app shows, computed from an Analysis: the predictions table, the payload of the slice viewer
drawn in the browser (mrnet/app/web/), the zip. Kept out of app.py so that it is importable and testable
without a browser."""
from __future__ import annotations

import base64
import html
import json
import os
import uuid
import zipfile
import zlib
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import cv2
import numpy as np

from mrnet.app.pixels import PixelStore
from mrnet.core.analysis import Analysis
from mrnet.core.config import DEFAULT_OPACITY, DISCLAIMER, PLANES, TASK_BITS, TASK_TITLES
from mrnet.core.explain import DEFAULT_METHOD, LEVEL_FRACTION, METHODS, display_levels
from mrnet.core.export import overlays, png_bytes
from mrnet.core.render import Renderer
from mrnet.core.weights import Weights
from mrnet.sets.flags import agreement_sentence

HTML_SPECIAL = {"&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;"}


def markdown_text(text, limit: int = 500) -> str:
    """Text a visitor controls (a link's parameters, file and series names, DICOM text, a message that quotes
    them) as Markdown that shows exactly that text: no tag, link, image or autolink can come out of it. Every
    ASCII punctuation character is escaped (CommonMark allows a backslash before any of them; the HTML ones
    become entities), so only letters, digits, spaces and non-ASCII text pass as they are. Cut to `limit`
    characters and kept on one line."""
    return "".join(HTML_SPECIAL.get(c) or ("\\" + c if c.isascii() and not c.isalnum() and c != " " else c)
                   for c in one_line(text, limit))


def html_text(text, limit: int = 500) -> str:
    """Visitor-controlled text inside HTML (gr.Error's modal renders its message as HTML)."""
    return html.escape(one_line(text, limit))


def one_line(text, limit: int) -> str:
    text = " ".join(str(text).split())
    return text[:limit] + ("…" if len(text) > limit else "")


def weights_markdown(weights: Weights, notice: str = "") -> str:
    """Where the weights came from, what they were trained on, and what they are for."""
    src, prov = weights.source, weights.config.provenance
    if src.get("kind") == "hub":
        where = (f"Hub repo {markdown_text(src['repo'])} at {markdown_text(src['revision'])} "
                 f"(commit {markdown_text(src['commit'][:12])})")
    else:
        where = f"{'bundled' if src.get('kind') == 'bundled' else 'local'} folder {markdown_text(src.get('folder'))}"
    # a Hub repo's config.json is someone else's text too
    lines = [f"**Weights:** {where}. **Trained on:** {markdown_text(str(prov.get('trained_on', 'not stated')).rstrip('.'))}.",
             f"**Intended use:** {markdown_text(prov.get('intended_use', 'not stated'))}"]
    if notice:
        lines.append(f"**Notice:** {markdown_text(notice)}")
    return "\n\n".join(lines)


def percent(p: float) -> str:
    return f"{100 * p:.1f} %"


def predictions_markdown(analysis: Analysis, truth: dict | None = None) -> str:
    """One row per task: fused probability, then each plane's. Independent probabilities, not a softmax."""
    planes = analysed_planes(analysis)
    head = (["Task", "Probability (fused)"] + [p.capitalize() for p in planes] + ["Decisive plane"]
            + (["Ground truth"] if truth else []))
    rows = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for task, result in analysis.tasks.items():
        cells = [TASK_TITLES.get(task, task), f"**{percent(result.probability)}**"
                 + (" ¹" if result.fusion == "mean-logit" else "")]
        cells += [percent(result.planes[p].probability) if p in result.planes else "—" for p in planes]
        cells.append(result.decisive_plane)
        if truth:
            cells.append({1: "positive", 0: "negative"}.get(truth.get(task, -1), "—"))
        rows.append("| " + " | ".join(cells) + " |")
    sources = sorted({src.split("[")[0] for src in analysis.exam.sources.values()})
    notes = [f"Exam: {markdown_text(', '.join(sources))}.", "Each task is an independent probability (they do not add up to 100 %). "
             "The fused probability is a logistic regression over the plane logits, with the weights' own "
             "coefficients; it can be far from each plane's probability. The decisive plane adds the most to "
             "the fused logit."]
    if any(r.fusion == "mean-logit" for r in analysis.tasks.values()):
        notes.append("¹ Planes are missing or the weights carry no fusion coefficients: fused as the mean of the "
                     "plane logits.")
    missing = analysis.exam.describe()["missing_planes"]
    if missing:
        notes.append(f"Missing plane(s): {', '.join(missing)} — predictions use the planes present.")
    notes += [f"Input: {markdown_text(n)}" for n in analysis.exam.notes]
    warnings = "".join(f"> ⚠️ **{markdown_text(text)}**\n\n" for text in analysis.warnings)
    return warnings + "\n".join(rows) + "\n\n" + "\n\n".join(notes) + f"\n\n*{DISCLAIMER}*"


def flags_summary_markdown(rows: list[dict], names: dict[str, str]) -> str:
    """What reviewers said (flags.FlagStore.summary) as a table: per weights (named where known), task and
    method, the share judged on the lesion and how often the verdicts agree with the pointing game."""
    if not rows:
        return ""
    lines = ["**What reviewers said** (Wilson 95 % intervals; the pointing game is known on sets with lesion "
             "masks: an *on* verdict agrees when the map's maximum lies within 15 px of the lesion, an *off* "
             "verdict when it does not)", "",
             "| weights | task | method | flags | on / off / unsure | judged on the lesion | agrees with the pointing game |",
             "|---|---|---|---|---|---|---|"]
    for r in rows:
        agree = (f"{r['agree']} of {r['pointing_n']}: {percent(r['agreement'])} "
                 f"[{percent(r['agreement_low'])}, {percent(r['agreement_high'])}]" if r["pointing_n"] else "—")
        lines.append(f"| {markdown_text(names.get(r['weights'], r['weights']))} | {markdown_text(r['task'])} | "
                     f"{markdown_text(r['method'])} | {r['n']} | {r['on']} / {r['off']} / {r['unsure']} | "
                     f"{percent(r['share_on'])} [{percent(r['share_on_low'])}, {percent(r['share_on_high'])}] | {agree} |")
    return "\n".join(lines)


def agreement_markdown(rows: list[dict], names: dict[str, str]) -> str:
    """How far reviewers agree (flags.FlagStore.agreement), where more than one reviewer flagged: each one's
    counts, Cohen's kappa per pair and Fleiss' kappa, with 95 % bootstrap intervals and the shared views."""
    lines = []
    for r in rows:
        if len(r["reviewers"]) < 2:
            continue
        counts = "; ".join(f"{markdown_text(name)}: {c['on']} / {c['off']} / {c['unsure']}"
                           for name, c in r["reviewers"].items())
        pairs = "; ".join(f"{markdown_text(p['a'])} & {markdown_text(p['b'])}: {agreement_sentence(p)}"
                          for p in r["pairs"])
        lines.append(f"| {markdown_text(names.get(r['weights'], r['weights']))} | {markdown_text(r['task'])} | "
                     f"{markdown_text(r['method'])} | {counts} | {pairs} | {agreement_sentence(r['fleiss'])} |")
    if not lines:
        return ""
    return ("\n\n**How far reviewers agree** (on / off / unsure per reviewer; Cohen's kappa per pair on the views "
            "both judged, Fleiss' kappa on the views all judged; 95 % bootstrap intervals)\n\n"
            "| weights | task | method | reviewers | Cohen's kappa | Fleiss' kappa |\n|---|---|---|---|---|---|\n"
            + "\n".join(lines))


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


def jet_table() -> np.ndarray:
    """OpenCV's JET colormap as 256 RGB rows: the browser colours CAMs with the server's own table."""
    return cv2.applyColorMap(np.arange(256, dtype=np.uint8)[None, :], cv2.COLORMAP_JET)[0, :, ::-1]


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
        **explanation(analysis),
        "jet": b64(jet_table()),
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


def write_report_zip(path: Path, analysis: Analysis, method: str, opacity: float) -> None:
    """Every overlay as TASK/PLANE/NNN.png plus report.json, as `mrnet predict --out` writes them, written to
    `path` (0600) as they are drawn: one plane's overlays in memory at a time, and a renderer of the call's own."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as fh, zipfile.ZipFile(fh, "w", compression=zipfile.ZIP_STORED) as zf:  # PNGs are compressed
        for name, rgb in overlays(Renderer(analysis, cache=False), method, opacity):
            zf.writestr(name, png_bytes(rgb))
        zf.writestr("report.json", json.dumps(analysis.report(method), indent=2) + "\n")


