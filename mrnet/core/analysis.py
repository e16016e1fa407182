"""Exam + weights -> per task: per-plane probability, logit, bias, slice contributions, top slice, the
fused probability, and every registered CAM method's low-resolution maps, kept so that a UI can render any
slice without rerunning (mrnet.core.render draws them)."""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

from mrnet.core.compute import Compute, compute_for
from mrnet.core.config import DEFAULT_METHOD, DISCLAIMER, TASKS
from mrnet.core.errors import MRNetError
from mrnet.core.exam import Exam
from mrnet.core.explain import METHODS
from mrnet.core.explain import method as explain_method
from mrnet.core.ood import NO_STATISTICS, distance, exam_vector, flipped_probability, orientation_warning, warning
from mrnet.core.weights import Weights


def sigmoid(x: float) -> float:
    return 1.0 / (1.0 + math.exp(-x)) if x >= 0 else math.exp(x) / (1.0 + math.exp(x))


@dataclass
class PlaneResult:
    logit: float
    bias: float
    contributions: np.ndarray   # (S,) slice contributions of explain.DEFAULT_METHOD; sum + bias == logit
    maps: dict[str, np.ndarray] # CAM method -> (S, h, w) as the method computes it (explain.METHODS)
    pooled: np.ndarray | None = None  # (S, C) each slice's pooled features: the head's input (faithfulness tests)

    @property
    def probability(self) -> float:
        return sigmoid(self.logit)

    @property
    def top_slice(self) -> int:
        return int(np.argmax(self.contributions))


@dataclass
class TaskResult:
    probability: float
    fusion: str                 # "logistic" (config coefficients) or "mean-logit" (fallback)
    planes: dict[str, PlaneResult]
    decisive_plane: str         # the plane whose term in the fused logit is largest

    def display_maps(self, plane: str, method: str) -> np.ndarray:
        """(S, h, w) of one plane as the method shows them (its display scaling), before upsampling."""
        display = explain_method(method).display
        return display(self.planes[plane].maps[method], [r.maps[method] for r in self.planes.values()])


@dataclass
class Analysis:
    exam: Exam
    weights: dict               # Weights.describe()
    tasks: dict[str, TaskResult]
    precision: str
    ood: dict | None = None     # plane -> {"distance", "threshold", "percentile", "unusual"[, "flipped",
                                # "looks_flipped"]}; None: no statistics
    device: str = "cpu"         # where the model ran (with `precision`: what the report says ran)

    @property
    def warnings(self) -> list[str]:
        """What the user must read before the numbers: planes unlike the training data, or no way to tell."""
        if self.ood is None:
            return [NO_STATISTICS]
        return [warning(plane, r) if r["unusual"] else orientation_warning(plane, r)
                for plane, r in self.ood.items() if r["unusual"] or r.get("looks_flipped")]

    def top_slices(self, task: str, k: int = 6) -> list[tuple[str, int, float]]:
        """(plane, slice, share of the plane's logit minus bias) of the k largest contributions, all planes."""
        ranked = []
        for plane, r in self.tasks[task].planes.items():
            total = float(np.abs(r.contributions).sum()) or 1.0
            ranked += [(plane, int(i), float(r.contributions[i]) / total) for i in range(len(r.contributions))]
        return sorted(ranked, key=lambda t: -t[2])[:k]

    def report(self, method: str | None = None) -> dict:
        """The JSON report; `method` (the overlays' CAM method) is added when overlays go with it."""
        return {
            **({"method": method} if method else {}),
            "disclaimer": DISCLAIMER,
            "weights": self.weights,
            "exam": self.exam.describe(),
            "device": self.device,
            "precision": self.precision,
            "ood": ({"checked": True, "planes": self.ood} if self.ood is not None else {"checked": False}),
            "warnings": self.warnings,
            "attribution": DEFAULT_METHOD,  # which method's slice contributions and top slices these are
            "tasks": {
                task: {
                    "probability": round(t.probability, 6),
                    "fusion": t.fusion,
                    "decisive_plane": t.decisive_plane,
                    "planes": {
                        plane: {
                            "probability": round(r.probability, 6),
                            "logit": round(r.logit, 6),
                            "bias": round(r.bias, 6),
                            "slice_contributions": [round(float(c), 6) for c in r.contributions],
                            "top_slice": r.top_slice,
                        } for plane, r in t.planes.items()
                    },
                } for task, t in self.tasks.items()
            },
        }


def fuse(task: str, logits: dict[str, float], fusion: dict) -> tuple[float, str, dict[str, float]]:
    """Logistic regression over the plane logits with the config's coefficients when every plane it
    needs is there; otherwise (planes missing, or no coefficients) the sigmoid of the mean plane logit.
    Also returns each plane's term in the fused logit (the largest one is the decisive plane)."""
    spec = fusion.get(task)
    if spec and set(spec.get("coef", {})) <= set(logits) and spec.get("coef"):
        terms = {p: float(spec["coef"].get(p, 0.0)) * logits[p] for p in logits}
        return sigmoid(float(spec.get("intercept", 0.0)) + sum(terms.values())), "logistic", terms
    terms = {p: logit / len(logits) for p, logit in logits.items()}
    return sigmoid(sum(terms.values())), "mean-logit", terms


# Slices through the convolutions at a time. A convolution does not mix slices, so this bounds memory: a
# 128-slice plane's input and first activations (~250 MB) are held in halves. The phantoms' series (20-40 slices)
# and typical knee series still go in one batch, bit for bit as before.
SLICES_AT_ONCE = 64


@torch.inference_mode()
def analyze(exam: Exam, weights: Weights, compute: Compute | None = None) -> Analysis:
    """The model runs where `compute` says (default: this machine's auto choice); the weights' models must
    already be on that device (Weights.to)."""
    compute = compute or compute_for()
    planes = [p for p in exam.planes if weights.for_plane(p)]
    if not planes:
        raise MRNetError(f"The exam has the {', '.join(exam.planes)} plane(s) but the weights only cover "
                         f"{', '.join(weights.planes)}.")
    norm = weights.config.normalization
    per_task: dict[str, dict[str, PlaneResult]] = {t: {} for t in weights.config.tasks}
    ood = {} if weights.config.ood else None
    for plane in planes:
        volume = exam.volumes[plane]
        for entry, model in weights.for_plane(plane):
            with compute.autocast():  # a long series in parts: its activations are never all held at once
                parts = [model.forward_features(compute.slices(volume[start:start + SLICES_AT_ONCE], norm),
                                                with_stem=True) for start in range(0, len(volume), SLICES_AT_ONCE)]
            maps, stem = (torch.cat([part[k] for part in parts]) for k in (0, 1)) if len(parts) > 1 else parts[0]
            features = maps.float()
            pooled, logits = model.forward_head(features)
            stats = weights.config.ood.get(plane)
            if stats and plane not in ood:
                d = distance(stats, exam_vector(stem))
                ood[plane] = {"distance": round(d, 3), "threshold": stats["threshold"],
                              "percentile": stats.get("percentile", 99.0), "unusual": bool(d > stats["threshold"])}
                if "orientation" in stats:  # meaningful only where the plane is like the training data
                    flipped = flipped_probability(stats["orientation"], exam.volumes[plane])
                    ood[plane] |= {"flipped": round(flipped, 3),
                                   "looks_flipped": bool(flipped > 0.5 and not ood[plane]["unusual"])}
            # each task's maps on the device, then one copy to the host per method (few syncs on a GPU)
            cams = {name: torch.stack([method.maps(features, pooled, w) for w in model.classifier.weight])
                    for name, method in METHODS.items()}
            contributions = cams[DEFAULT_METHOD].mean(dim=(-2, -1)).cpu().numpy()  # with the bias, the logit
            cams = {name: m.cpu().numpy() for name, m in cams.items()}
            logits, biases = logits.cpu().numpy(), model.classifier.bias.detach().cpu().numpy()
            pooled_host = pooled.float().cpu().numpy()
            for i, task in enumerate(entry.tasks):
                per_task[task][plane] = PlaneResult(
                    logit=float(logits[i]), bias=float(biases[i]), contributions=contributions[i],
                    maps={name: m[i] for name, m in cams.items()}, pooled=pooled_host)
    tasks = {}
    for task in sorted(per_task, key=lambda t: TASKS.index(t) if t in TASKS else 99):
        plane_results = per_task[task]
        if not plane_results:
            continue
        probability, how, terms = fuse(task, {p: r.logit for p, r in plane_results.items()}, weights.config.fusion)
        tasks[task] = TaskResult(probability=probability, fusion=how, planes=plane_results,
                                 decisive_plane=max(terms, key=terms.get))
    return Analysis(exam=exam, weights=weights.describe(), tasks=tasks, precision=compute.precision, ood=ood,
                    device=str(compute.device))
