"""ROC curve and AUC for the toolchain (training, evaluation, `score`), numpy only: the same numbers as
scikit-learn's roc_curve and roc_auc_score (tests/test_cases.py). The app's Cases view draws its ROC in the
browser from the score table."""
from __future__ import annotations

import numpy as np


def roc_curve(labels, scores) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(false positive rate, true positive rate, threshold) at each distinct score, highest first; the
    curve starts at (0, 0). Ties share one point."""
    labels, scores = np.asarray(labels, dtype=np.int64), np.asarray(scores, dtype=np.float64)
    order = np.argsort(-scores, kind="stable")
    labels, scores = labels[order], scores[order]
    last = np.r_[np.flatnonzero(np.diff(scores)), len(scores) - 1]   # the last index of each distinct score
    tp, fp = np.cumsum(labels)[last], np.cumsum(1 - labels)[last]
    pos, neg = max(int(labels.sum()), 1), max(int((1 - labels).sum()), 1)
    return np.r_[0.0, fp / neg], np.r_[0.0, tp / pos], np.r_[np.inf, scores[last]]


def auc(labels, scores) -> float | None:
    """Area under the ROC curve (ties count one half); None when only one class is present."""
    labels = np.asarray(labels, dtype=np.int64)
    if labels.size == 0 or labels.min() == labels.max():
        return None
    fpr, tpr, _ = roc_curve(labels, scores)
    return float(np.trapezoid(tpr, fpr))
