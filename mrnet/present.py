"""What the app shows, computed from an Analysis: tables, plot data, gallery items, the zip.
Kept out of app.py so that it is importable and testable without a browser."""
from __future__ import annotations

import io
import json
import zipfile

import numpy as np
import pandas as pd

from .analysis import DISCLAIMER, Analysis
from .config import PLANES, TASK_TITLES
from .export import overlays, png_bytes
from .render import Renderer
from .weights import Weights


def weights_markdown(weights: Weights, notice: str = "") -> str:
    """Where the weights came from, what they were trained on, and what they are for."""
    src, prov = weights.source, weights.config.provenance
    if src.get("kind") == "hub":
        where = f"Hub repo `{src['repo']}` at `{src['revision']}` (commit `{src['commit'][:12]}`)"
    else:
        where = f"{'bundled' if src.get('kind') == 'bundled' else 'local'} folder `{src.get('folder')}`"
    lines = [f"**Weights:** {where}. **Trained on:** {str(prov.get('trained_on', 'not stated')).rstrip('.')}.",
             f"**Intended use:** {prov.get('intended_use', 'not stated')}"]
    if notice:
        lines.append(f"**Notice:** {notice}")
    return "\n\n".join(lines)


def percent(p: float) -> str:
    return f"{100 * p:.1f} %"


def predictions_markdown(analysis: Analysis, truth: dict | None = None) -> str:
    """One row per task: fused probability, then each plane's. Independent probabilities, not a softmax."""
    planes = [p for p in PLANES if any(p in t.planes for t in analysis.tasks.values())]
    head = (["Task", "Probability (fused)"] + [p.capitalize() for p in planes] + ["Decisive plane"]
            + (["Ground truth"] if truth else []))
    rows = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for task, result in analysis.tasks.items():
        cells = [TASK_TITLES.get(task, task), f"**{percent(result.probability)}**"
                 + (" ¹" if result.fusion == "mean-logit" else "")]
        cells += [percent(result.planes[p].probability) if p in result.planes else "—" for p in planes]
        cells.append(result.decisive_plane)
        if truth:
            cells.append({1: "positive", 0: "negative"}.get(truth.get(task), "—"))
        rows.append("| " + " | ".join(cells) + " |")
    sources = sorted({src.split("[")[0] for src in analysis.exam.sources.values()})
    notes = [f"Exam: {', '.join(sources)}.", "Each task is an independent probability (they do not add up to 100 %). "
             "The fused probability is a logistic regression over the plane logits, with the weights' own "
             "coefficients; it can be far from each plane's probability. The decisive plane adds the most to "
             "the fused logit."]
    if any(r.fusion == "mean-logit" for r in analysis.tasks.values()):
        notes.append("¹ Planes are missing or the weights carry no fusion coefficients: fused as the mean of the "
                     "plane logits.")
    missing = analysis.exam.describe()["missing_planes"]
    if missing:
        notes.append(f"Missing plane(s): {', '.join(missing)} — predictions use the planes present.")
    notes += [f"Input: {n}" for n in analysis.exam.notes]
    return "\n".join(rows) + "\n\n" + "\n\n".join(notes) + f"\n\n*{DISCLAIMER}*"


def contribution_frame(analysis: Analysis, task: str, plane: str) -> pd.DataFrame:
    r = analysis.tasks[task].planes[plane]
    return pd.DataFrame({"slice": np.arange(len(r.contributions)), "contribution": r.contributions.astype(float),
                         "sign": np.where(r.contributions >= 0, "for", "against")})


def slice_caption(analysis: Analysis, task: str, plane: str, index: int) -> str:
    r = analysis.tasks[task].planes[plane]
    return (f"{plane} slice {index} of {len(r.contributions) - 1} — contribution {r.contributions[index]:+.3f} "
            f"(logit {r.logit:+.2f}, bias {r.bias:+.2f}); top slice: {r.top_slice}")


def gallery_items(renderer: Renderer, task: str, method: str, opacity: float, k: int = 6):
    """[(RGB image, caption)], and [(plane, slice)] in the same order for click-through."""
    items, where = [], []
    for plane, index, share in renderer.analysis.top_slices(task, k):
        items.append((renderer.overlay(task, plane, index, method, opacity),
                      f"{plane} · slice {index} · {100 * share:.0f} % of the logit"))
        where.append((plane, index))
    return items, where


def report_zip(renderer: Renderer, method: str, opacity: float) -> bytes:
    """Every overlay as TASK/PLANE/NNN.png plus report.json, as `mrnet predict --out` writes them."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_STORED) as zf:  # PNGs are compressed already
        for name, rgb in overlays(renderer, method, opacity):
            zf.writestr(name, png_bytes(rgb))
        zf.writestr("report.json", json.dumps(renderer.analysis.report(method), indent=2) + "\n")
    return buf.getvalue()
