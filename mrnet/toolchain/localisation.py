"""How well one slice's map covers the whole lesion, beyond the pointing game's one pixel (Arun et al., Radiology:
AI 2021; Saporta et al., Nature Machine Intelligence 2022): the map's pixels, upsampled to the slice as shown, scored
against the lesion mask of that slice.

- AUPRC (average precision): rank the pixels by the map, most salient first; with precision P_k and recall R_k at
  each distinct value, AP = sum_k (R_k - R_{k-1}) P_k. A map that ignores the lesion scores about the lesion's share
  of the slice (its prevalence, the random baseline).
- IoU: the pixels above a threshold against the mask, |map >= t and mask| / |map >= t or mask|, at the threshold
  that maximises it (the best any threshold can do, so methods compare without choosing one).
"""
from __future__ import annotations

import cv2
import numpy as np


def upsampled(cam: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """A map (h, w) as the viewer shows it on a slice of `shape`: bilinear (cv2)."""
    return cv2.resize(np.float32(cam), (shape[1], shape[0]), interpolation=cv2.INTER_LINEAR)


def auprc_and_best_iou(scores: np.ndarray, mask: np.ndarray) -> tuple[float, float]:
    """scores, mask: the same shape; the mask holds at least one lesion pixel."""
    order = np.argsort(-scores.ravel(), kind="stable")
    ranked, truth = scores.ravel()[order], mask.ravel()[order].astype(np.float64)
    last = np.r_[np.flatnonzero(np.diff(ranked)), ranked.size - 1]  # the last pixel of each distinct value
    hits = np.cumsum(truth)[last]
    taken = last + 1.0
    positives = truth.sum()
    precision, recall = hits / taken, hits / positives
    ap = float(np.sum(np.diff(np.r_[0.0, recall]) * precision))
    iou = float(np.max(hits / (positives + taken - hits)))
    return ap, iou
