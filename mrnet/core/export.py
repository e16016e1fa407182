"""Write every overlay as PNG (DIR/TASK/PLANE/NNN.png) and the JSON report - the blog's
"CAMs of every slice saved to disk", batched per volume and written by a small thread pool
(cv2 releases the GIL while it compresses)."""
from __future__ import annotations

import json
import os
import zipfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import cv2
from tqdm import tqdm

from mrnet.core.analysis import Analysis
from mrnet.core.config import DEFAULT_METHOD, DEFAULT_OPACITY, DEFAULT_PALETTE
from mrnet.core.render import Renderer

# Lossless. zlib level 1 with the SUB filter: measured here 1.7 ms and 86 KB per 256x256 overlay, against
# 2.7 ms / 84 KB for level 1 with adaptive filters and 1.4 ms / 125 KB for OpenCV's default.
PNG_FAST = [cv2.IMWRITE_PNG_COMPRESSION, 1, cv2.IMWRITE_PNG_FILTER, cv2.IMWRITE_PNG_FILTER_SUB]


def overlays(renderer: Renderer, method: str, opacity: float, palette: str = DEFAULT_PALETTE):
    """(TASK/PLANE/NNN.png, RGB overlay) for every slice; each volume's overlays are rendered in one call."""
    for task, result in renderer.analysis.tasks.items():
        for plane in result.planes:
            rgb = renderer.overlay_volume(task, plane, method, opacity, palette)
            for i in range(len(rgb)):
                yield f"{task}/{plane}/{i:03d}.png", rgb[i]


def png_bytes(rgb) -> bytes:
    ok, png = cv2.imencode(".png", rgb[:, :, ::-1], PNG_FAST)
    if not ok:
        raise OSError("could not encode a PNG")
    return png.tobytes()


def export(renderer: Renderer, out: Path, method: str = DEFAULT_METHOD, opacity: float = DEFAULT_OPACITY,
           progress: bool = True, palette: str = DEFAULT_PALETTE) -> int:
    """Returns the number of PNG files written."""
    out = Path(out)
    jobs = [(out / name, rgb) for name, rgb in overlays(renderer, method, opacity, palette)]
    for folder in {path.parent for path, _ in jobs}:
        folder.mkdir(parents=True, exist_ok=True)
    bar = tqdm(total=len(jobs), desc="overlays", unit="png", disable=not progress, leave=False)

    def write(job):
        path, image = job
        path.write_bytes(png_bytes(image))
        bar.update()

    with ThreadPoolExecutor(max_workers=min(4, os.cpu_count() or 1)) as pool:
        list(pool.map(write, jobs))
    bar.close()
    (out / "report.json").write_text(json.dumps(renderer.analysis.report(method), indent=2) + "\n")
    return len(jobs)


def write_report_zip(path: Path, analysis: Analysis, method: str, opacity: float,
                     palette: str = DEFAULT_PALETTE) -> None:
    """Every overlay as TASK/PLANE/NNN.png plus report.json, as `mrnet predict --out` writes them, written to
    `path` (0600) as they are drawn: one plane's overlays in memory at a time, and a renderer of the call's own."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as fh, zipfile.ZipFile(fh, "w", compression=zipfile.ZIP_STORED) as zf:  # PNGs are compressed
        for name, rgb in overlays(Renderer(analysis, cache=False), method, opacity, palette):
            zf.writestr(name, png_bytes(rgb))
        zf.writestr("report.json", json.dumps(analysis.report(method), indent=2) + "\n")
