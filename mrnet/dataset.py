"""MRNet's folder layout, read the same way for the real dataset and for our phantoms:
DIR/{train,valid}/{axial,coronal,sagittal}/NNNN.npy and DIR/{split}-{abnormal,acl,meniscus}.csv
(`id,label` rows, no header). Phantom folders also have DIR/masks/{split}/{plane}/NNNN.npy."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .config import PLANES, TASKS
from .errors import MRNetError


@dataclass
class Split:
    root: Path
    split: str
    ids: list[str]
    labels: dict[str, np.ndarray]   # task -> (n,) 0/1, aligned with ids

    def volume(self, plane: str, i: int) -> np.ndarray:
        return np.load(self.root / self.split / plane / f"{self.ids[i]}.npy", allow_pickle=False)

    def mask(self, plane: str, i: int) -> np.ndarray | None:
        path = self.root / "masks" / self.split / plane / f"{self.ids[i]}.npy"
        return np.load(path, allow_pickle=False) if path.is_file() else None

    @property
    def planes(self) -> list[str]:
        return [p for p in PLANES if (self.root / self.split / p).is_dir()]


def read_split(root: Path, split: str, tasks=TASKS) -> Split:
    root = Path(root)
    labels, ids = {}, None
    for task in tasks:
        csv = root / f"{split}-{task}.csv"
        if not csv.is_file():
            raise MRNetError(f"{root} is not in MRNet's layout: {csv.name} is missing.")
        rows = [line.split(",") for line in csv.read_text().split() if line.strip()]
        try:
            task_ids = [f"{int(r[0]):04d}" for r in rows]
            labels[task] = np.array([int(float(r[1])) for r in rows], dtype=np.int64)
        except (ValueError, IndexError):
            raise MRNetError(f"{csv.name} must hold `id,label` rows.") from None
        if ids is not None and task_ids != ids:
            raise MRNetError(f"{csv.name} lists other exams than the other tasks' CSVs.")
        ids = task_ids
    if not ids:
        raise MRNetError(f"{root}: the {split} split is empty.")
    return Split(root=root, split=split, ids=ids, labels=labels)


def auc(labels: np.ndarray, scores: np.ndarray) -> float:
    """ROC AUC by the rank-sum formula, ties counted half."""
    labels, scores = np.asarray(labels), np.asarray(scores, dtype=np.float64)
    pos, neg = scores[labels == 1], scores[labels == 0]
    if len(pos) == 0 or len(neg) == 0:
        return None  # undefined with one class only (JSON null)
    greater = (pos[:, None] > neg[None, :]).sum() + 0.5 * (pos[:, None] == neg[None, :]).sum()
    return float(greater / (len(pos) * len(neg)))


def fit_logistic(x: np.ndarray, y: np.ndarray, l2: float = 1e-2, steps: int = 50) -> tuple[float, np.ndarray]:
    """Logistic regression by Newton's method with a small L2 penalty on the coefficients -> (intercept, coef)."""
    X = np.hstack([np.ones((len(x), 1)), np.asarray(x, dtype=np.float64)])
    w = np.zeros(X.shape[1])
    penalty = np.diag([0.0] + [l2] * (X.shape[1] - 1))
    for _ in range(steps):
        p = 1 / (1 + np.exp(-np.clip(X @ w, -30, 30)))
        grad = X.T @ (p - y) + penalty @ w
        hess = X.T @ (X * (p * (1 - p))[:, None]) + penalty + 1e-9 * np.eye(len(w))
        step = np.linalg.solve(hess, grad)
        w -= step
        if np.abs(step).max() < 1e-8:
            break
    return float(w[0]), w[1:]
