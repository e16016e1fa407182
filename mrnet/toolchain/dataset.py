"""MRNet's folder layout, read the same way for the real dataset and for our phantoms:
DIR/{train,valid}/{axial,coronal,sagittal}/NNNN.npy and DIR/{split}-{abnormal,acl,meniscus}.csv
(`id,label` rows, no header). Phantom folders also have DIR/masks/{split}/{plane}/NNNN.npy: uint8 bit
fields aligned with the slices (MASK_BITS: 1 ACL tear, 2 meniscal tear, 4 other abnormality).

The fusion fit comes from scikit-learn, the non-negative fit from scipy (training dependencies, never the
runtime's); the ROC AUC is mrnet.sets.metrics.auc."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
from scipy.optimize import minimize
from sklearn.linear_model import LogisticRegression

from mrnet.core.config import PLANES, TASKS
from mrnet.core.errors import MRNetError
from mrnet.sets.labels import bad_lines_sentence, parse_labels


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
        rows, bad = parse_labels(csv.read_text(encoding="utf-8", errors="replace"))
        if bad:  # the Cases browser skips such lines with the same sentence; training refuses to guess
            raise MRNetError(f"{bad_lines_sentence(csv, bad)}; fix them to train.")
        task_ids = [case for case, _ in rows]
        labels[task] = np.array([label for _, label in rows], dtype=np.int64)
        if ids is not None and task_ids != ids:
            raise MRNetError(f"{csv.name} lists other exams than the other tasks' CSVs.")
        ids = task_ids
    if not ids:
        raise MRNetError(f"{root}: the {split} split is empty.")
    return Split(root=root, split=split, ids=ids, labels=labels)


def fit_logistic(x: np.ndarray, y: np.ndarray, l2: float = 1e-2, nonnegative: bool = False) -> tuple[float, np.ndarray]:
    """Logistic regression with an L2 penalty of l2/2 * |coef|^2 on the coefficients (not the intercept)
    -> (intercept, coef). scikit-learn minimises C * sum(log loss) + |coef|^2 / 2, so C = 1 / l2.
    nonnegative: the same objective with every coefficient >= 0, by scipy's L-BFGS-B (scikit-learn has no bounds).
    With one class only (a tiny split) there is nothing to fit: zero coefficients and the smoothed log-odds
    of that class as the intercept."""
    y = np.asarray(y)
    if len(np.unique(y)) < 2:
        positives = float(y.sum())
        return float(np.log((positives + 0.5) / (len(y) - positives + 0.5))), np.zeros(np.asarray(x).shape[1])
    if nonnegative:
        return fit_nonnegative_logistic(np.asarray(x, dtype=np.float64), y.astype(np.float64), l2)
    model = LogisticRegression(C=1.0 / l2, tol=1e-10, max_iter=1000)
    model.fit(np.asarray(x, dtype=np.float64), y)
    return float(model.intercept_[0]), model.coef_[0].astype(np.float64)


def fit_nonnegative_logistic(x: np.ndarray, y: np.ndarray, l2: float) -> tuple[float, np.ndarray]:
    """sum(log(1 + e^s) - y s) + l2/2 * |coef|^2 with s = x coef + intercept, minimised over coef >= 0."""
    def objective(p: np.ndarray) -> tuple[float, np.ndarray]:
        s = x @ p[:-1] + p[-1]
        residual = 0.5 * (1 + np.tanh(0.5 * s)) - y  # sigmoid(s) - y, without overflow
        loss = float(np.sum(np.logaddexp(0, s) - y * s) + 0.5 * l2 * p[:-1] @ p[:-1])
        return loss, np.append(x.T @ residual + l2 * p[:-1], residual.sum())
    bounds = [(0.0, None)] * x.shape[1] + [(None, None)]
    p = minimize(objective, np.zeros(x.shape[1] + 1), jac=True, method="L-BFGS-B", bounds=bounds,
                 options={"maxiter": 10000, "ftol": 1e-15, "gtol": 1e-10}).x
    return float(p[-1]), p[:-1]
