"""Is an explanation faithful to the model? The deletion test (Petsiuk et al., RISE, BMVC 2018), adapted to
MRNet's slices: remove the slices an explanation ranks highest, one at a time, and watch the probability fall.
A faithful ranking makes it fall fastest: its deletion AUC (the mean probability over the curve) is lowest.

How a slice is removed: it is dropped from the exam. MRNet's max over slices then runs over the slices that are
left, so the model sees a shorter exam of real slices - no black or blurred filler slice that would itself be
unlike any training exam (the usual objection to deletion with a baseline image). One slice always remains.
Because the head only needs each slice's pooled features, every step is exact and costs no forward pass.

Rankings compared, per plane: exact attribution (each slice's share of the logit, `explain.exact_attribution`),
classic CAM's per-slice score (the mean of the slice's raw CAM, w . g_s, i.e. the logit that slice alone would
give, less the bias), and random orders (the mean of RANDOM_ORDERS of them, from a fixed seed).
"""
from __future__ import annotations

import numpy as np

RANDOM_ORDERS = 10


def sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


def deletion_curve(pooled: np.ndarray, weight: np.ndarray, bias: float, order: np.ndarray) -> np.ndarray:
    """pooled (S, C): each slice's pooled features; order: slice indices, most important first.
    -> (S,) probabilities after removing the first 0, 1, ..., S-1 slices of `order`."""
    n = len(order)
    return np.array([sigmoid(float(weight @ pooled[order[k:]].max(axis=0)) + bias) for k in range(n)])


def deletion_auc(curve: np.ndarray) -> float:
    """The mean of the curve (the area under it with the removed fraction on [0, 1))."""
    return float(np.mean(curve))


def rankings(pooled: np.ndarray, weight: np.ndarray, contributions: np.ndarray, seed: int = 0) -> dict:
    """Each method's order of slices, most important first (ties: the lower index first)."""
    rng = np.random.default_rng(seed)
    return {"exact": np.argsort(-contributions, kind="stable"),
            "classic": np.argsort(-(pooled @ weight), kind="stable"),
            "random": [rng.permutation(len(pooled)) for _ in range(RANDOM_ORDERS)]}


def deletion_scores(pooled: np.ndarray, weight: np.ndarray, bias: float, contributions: np.ndarray,
                    seed: int = 0) -> dict[str, float]:
    """Deletion AUC per ranking for one exam, plane and task (random: the mean over its orders)."""
    scores = {}
    for name, order in rankings(pooled, weight, contributions, seed).items():
        orders = order if isinstance(order, list) else [order]
        scores[name] = float(np.mean([deletion_auc(deletion_curve(pooled, weight, bias, o)) for o in orders]))
    return scores
