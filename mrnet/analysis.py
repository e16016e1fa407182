"""Exam + weights -> per task: per-plane probability, logit, bias, slice contributions, top slice,
the fused probability, and CAM volumes kept so that a UI can render any slice without rerunning."""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import torch

from .config import TASKS
from .exam import Exam
from .errors import MRNetError
from .explain import classic_cam, exact_attribution, overlay, upsample
from .model import bf16_supported, to_input
from .weights import Weights

METHODS = ("exact", "classic")
DISCLAIMER = ("Research demo, not for diagnosis. The bundled weights were trained on synthetic knee "
              "phantoms, not on patients.")


def sigmoid(x: float) -> float:
    return 1.0 / (1.0 + math.exp(-x)) if x >= 0 else math.exp(x) / (1.0 + math.exp(x))


@dataclass
class PlaneResult:
    logit: float
    bias: float
    contributions: np.ndarray   # (S,) exact slice contributions; sum + bias == logit
    exact_maps: np.ndarray      # (S, h, w) signed, in logit units
    classic_maps: np.ndarray    # (S, h, w) in [0, 1], min-max per slice

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
    exact_scale: float          # exam-wide: the largest positive value of any exact map of this task
    decisive_plane: str         # the plane whose term in the fused logit is largest


@dataclass
class Analysis:
    exam: Exam
    weights: dict               # Weights.describe()
    tasks: dict[str, TaskResult]
    precision: str
    _cams: dict = field(default_factory=dict, repr=False)

    def cam_volume(self, task: str, plane: str, method: str = "exact") -> np.ndarray:
        """uint8 (S, 256, 256), cached: exact maps are scaled exam-wide (so slices and planes compare)
        and show positive evidence; classic maps are min-max per slice, as in the blog."""
        key = (task, plane, method)
        if key not in self._cams:
            if method not in METHODS:
                raise MRNetError(f"Unknown CAM method {method!r}; use exact or classic.")
            result = self.tasks[task]
            plane_result = result.planes[plane]
            maps = (plane_result.exact_maps / result.exact_scale if method == "exact" else plane_result.classic_maps)
            self._cams[key] = upsample(maps)
        return self._cams[key]

    def overlay(self, task: str, plane: str, index: int, method: str = "exact", opacity: float = 0.4) -> np.ndarray:
        return overlay(self.exam.volumes[plane][index], self.cam_volume(task, plane, method)[index], opacity)

    def overlay_volume(self, task: str, plane: str, method: str = "exact", opacity: float = 0.4) -> np.ndarray:
        """RGB uint8 (S, 256, 256, 3): every slice's overlay in one batched call."""
        return overlay(self.exam.volumes[plane], self.cam_volume(task, plane, method), opacity)

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
            "precision": self.precision,
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


def resolve_precision(precision: str) -> bool:
    if precision == "auto":
        return bf16_supported()
    if precision not in ("fp32", "bf16"):
        raise MRNetError(f"Unknown precision {precision!r}; use auto, fp32 or bf16.")
    return precision == "bf16"


@torch.inference_mode()
def analyze(exam: Exam, weights: Weights, precision: str = "auto") -> Analysis:
    use_bf16 = resolve_precision(precision)
    planes = [p for p in exam.planes if weights.for_plane(p)]
    if not planes:
        raise MRNetError(f"The exam has the {', '.join(exam.planes)} plane(s) but the weights only cover "
                         f"{', '.join(weights.planes)}.")
    norm = weights.config.normalization
    per_task: dict[str, dict[str, PlaneResult]] = {t: {} for t in weights.config.tasks}
    for plane in planes:
        x = to_input(exam.volumes[plane], norm.mean, norm.std)
        for entry, model in weights.for_plane(plane):
            out = model.forward_features(x, bf16=use_bf16)
            for i, task in enumerate(entry.tasks):
                w, b = model.classifier.weight[i], model.classifier.bias[i]
                maps, contributions = exact_attribution(out.features, out.pooled, w)
                per_task[task][plane] = PlaneResult(
                    logit=float(out.logits[i]), bias=float(b), contributions=contributions.numpy(),
                    exact_maps=maps.numpy(), classic_maps=classic_cam(out.features, w).numpy())
    tasks = {}
    for task in sorted(per_task, key=lambda t: TASKS.index(t) if t in TASKS else 99):
        plane_results = per_task[task]
        if not plane_results:
            continue
        probability, how, terms = fuse(task, {p: r.logit for p, r in plane_results.items()}, weights.config.fusion)
        scale = max(float(r.exact_maps.max()) for r in plane_results.values())
        tasks[task] = TaskResult(probability=probability, fusion=how, planes=plane_results,
                                 exact_scale=scale if scale > 0 else 1.0, decisive_plane=max(terms, key=terms.get))
    return Analysis(exam=exam, weights=weights.describe(), tasks=tasks, precision="bf16" if use_bf16 else "fp32")
