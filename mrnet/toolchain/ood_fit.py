"""`python -m mrnet ood-stats --data DIR --weights FOLDER`: fit the out-of-distribution statistics (mrnet.core.ood)
of each plane on a split's exams (the training split: what the weights saw) and write them into the weights
folder's config.json and card. `train` does the same at its end."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from mrnet.core.compute import Compute, compute_for
from mrnet.core.errors import MRNetError
from mrnet.core.ood import ORIENTATIONS, PERCENTILE, RANK, distance, exam_vector, orientation_image, rounded
from mrnet.toolchain.card import write_card
from mrnet.toolchain.dataset import read_split


def fit(features: np.ndarray, rank: int = RANK, folds: int = 5) -> dict:
    """features (N, C): one row per training exam -> JSON-ready statistics (6 significant digits, as stored)
    with the flagging threshold: the PERCENTILE of out-of-fold distances (each fold scored by statistics fitted
    without it), since an exam's distance to statistics fitted on itself is optimistic: measured on held-out
    phantoms, the in-sample 99th percentile flagged 3-5 % of planes instead of 1 %."""
    x = np.asarray(features, dtype=np.float64)
    stats = ppca(x, rank)
    order = np.random.default_rng(0).permutation(len(x))
    held_out = []
    for k in range(folds):
        test = order[k::folds]
        inner = ppca(np.delete(x, test, axis=0), rank)
        held_out += [distance(inner, x[i]) for i in test]
    stats["threshold"] = float(f"{np.percentile(held_out, PERCENTILE):.6g}")
    return stats


def ppca(x: np.ndarray, rank: int) -> dict:
    """Probabilistic PCA's pieces (Tipping and Bishop): the mean, the top `rank` components and their variances,
    and the mean variance of the rest, from scikit-learn's PCA (its full SVD; its variances divide by n - 1)."""
    from sklearn.decomposition import PCA
    pca = PCA(svd_solver="full").fit(x)
    rank = min(rank, len(x) - 1, x.shape[1] - 1)
    variances = pca.explained_variance_
    residual = float(variances[rank:].sum() / max(x.shape[1] - rank, 1)) or 1e-12
    return rounded({"mean": pca.mean_.tolist(), "components": pca.components_[:rank].tolist(),
                    "variances": variances[:rank].tolist(), "residual_variance": residual, "n": int(len(x)),
                    "percentile": PERCENTILE})


@torch.inference_mode()
def exam_vectors(models_by_plane: dict, split, norm, compute: Compute, progress: bool = False) -> dict:
    """plane -> (N, 2C): each exam's appearance vector (mrnet.core.ood.exam_vector)."""
    out = {}
    for plane, model in models_by_plane.items():
        rows = []
        for i in tqdm(range(len(split.ids)), desc=f"ood {plane}", disable=not progress, leave=False):
            with compute.autocast():
                stem = model.forward_stem(compute.slices(split.volume(plane, i), norm))
            rows.append(exam_vector(stem))
        out[plane] = np.stack(rows)
    return out


def fit_orientation(volumes, plane: str) -> dict:
    """The orientation classifier (mrnet.core.ood): L2-regularised logistic regression (C = 0.1) on the mean
    slices of the training exams as stored (and their normal mirror images) against their wrongly flipped
    copies."""
    from sklearn.linear_model import LogisticRegression
    flips = ORIENTATIONS[plane]
    x, y = [], []
    for volume in volumes:
        for label, kind in ((0, "normal"), (1, "wrong")):
            for axes in flips[kind]:
                x.append(orientation_image(np.flip(volume, axis=axes) if axes else volume))
                y.append(label)
    model = LogisticRegression(C=0.1, max_iter=5000).fit(np.array(x), np.array(y))
    return rounded({"coef": model.coef_[0].tolist(), "intercept": float(model.intercept_[0])})


def fit_statistics(models_by_plane: dict, data, split_name: str, norm, compute: Compute | None = None,
                   progress: bool = False) -> dict:
    split = read_split(data, split_name)
    planes = {p: m for p, m in models_by_plane.items() if p in split.planes}
    features = exam_vectors(planes, split, norm, compute or compute_for(), progress)
    stats = {}
    for plane, f in features.items():
        stats[plane] = fit(f)
        if plane in ORIENTATIONS:
            stats[plane]["orientation"] = fit_orientation((split.volume(plane, i) for i in range(len(split.ids))),
                                                          plane)
    return stats


def record_statistics(weights, data, split_name: str = "train", progress: bool = False) -> dict:
    """Fit on DIR's split with the folder's own models, and write config.json and the card."""
    from mrnet.core.hub import BUNDLED
    kind = weights.source.get("kind")
    folder = BUNDLED if kind == "bundled" else Path(weights.source.get("folder", ""))
    if kind not in ("local", "bundled"):
        raise MRNetError("ood-stats writes into a local weights folder; this one came from the Hub.")
    models = {entry.plane: model for entry, model in weights.models}
    stats = fit_statistics(models, data, split_name, weights.config.normalization, progress=progress)
    weights.config.ood = stats
    weights.config.provenance["ood_statistics"] = {"data": str(data), "split": split_name,
                                                   "exams": {p: s["n"] for p, s in stats.items()}}
    weights.config.save(folder)
    write_card(folder, weights.config)
    return {p: {"n": s["n"], "threshold": s["threshold"]} for p, s in stats.items()}
