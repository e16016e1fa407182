"""How often the out-of-distribution check warns on held-out phantoms as stored and flipped each way
(mrnet.core.ood: the distance, and the orientation classifier where the distance does not already warn), and on
the real knee. The rate as stored is the false-alarm rate (target <= 2 %); a flipped plane should warn.

    .venv/bin/python bench/orientation_bench.py --data data/phantoms-test --split valid [--weights weights]
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import torch

from mrnet.core.compute import compute_for
from mrnet.core.hub import resolve
from mrnet.core.ood import ORIENTATIONS, distance, exam_vector, flipped_probability
from mrnet.toolchain.dataset import read_split

REAL_KNEE = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "real_knee_sagittal.npy"


def warns(model, stats: dict, volume: np.ndarray, norm, compute) -> tuple[bool, bool]:
    """(unusual by distance, looks flipped) as mrnet.core.analysis decides them."""
    with torch.inference_mode():
        stem = model.forward_stem(compute.slices(np.ascontiguousarray(volume), norm))
    unusual = distance(stats, exam_vector(stem)) > stats["threshold"]
    return unusual, (not unusual) and flipped_probability(stats["orientation"], volume) > 0.5


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", default="data/phantoms-test")
    parser.add_argument("--split", default="valid")
    parser.add_argument("--weights", default="")
    args = parser.parse_args()
    weights = resolve(args.weights).weights
    compute, norm = compute_for("cpu", "fp32"), weights.config.normalization
    split = read_split(Path(args.data), args.split)
    report: dict = {}
    stored_warned = np.zeros(len(split.ids), dtype=bool)  # exams with any warning on any plane, as stored
    for plane, flips in ORIENTATIONS.items():
        (_, model), = weights.for_plane(plane)
        stats = weights.config.ood[plane]
        rows = {"as stored": [], **{f"flipped {axes}": [] for axes in flips["wrong"]}}
        for i in range(len(split.ids)):
            volume = split.volume(plane, i)
            rows["as stored"].append(warns(model, stats, volume, norm, compute))
            for axes in flips["wrong"]:
                rows[f"flipped {axes}"].append(warns(model, stats, np.flip(volume, axis=axes), norm, compute))
        stored_warned |= np.array([a or b for a, b in rows["as stored"]])
        report[plane] = {name: {"warned": round(float(np.mean([a or b for a, b in r])), 4),
                                "by_orientation": round(float(np.mean([b for _, b in r])), 4), "n": len(r)}
                         for name, r in rows.items()}
    report["exams as stored with any warning"] = round(float(stored_warned.mean()), 4)
    if REAL_KNEE.is_file():
        knee = np.load(REAL_KNEE, allow_pickle=False)
        (_, model), = weights.for_plane("sagittal")
        stats = weights.config.ood["sagittal"]
        report["real knee (sagittal)"] = {
            str(axes or "as stored"): dict(zip(("unusual", "looks_flipped"),
                                               warns(model, stats, np.flip(knee, axis=axes) if axes else knee, norm,
                                                     compute)))
            for axes in [()] + ORIENTATIONS["sagittal"]["wrong"]}
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
