"""Is an exam's plane like the data the weights were trained on? Summary statistics of one vector per exam
plane, fitted per plane on the training exams and stored in config.json; at analysis each plane gets a
distance, and a plane beyond the training exams' own 99th percentile is flagged.

The vector is the appearance the network sees first: each channel's mean and standard deviation of
AlexNet's first block over the whole plane (128 numbers). Measured on the bundled weights, the head's own
input (each channel's max over slices) placed the real knee well inside the phantoms' range (0.67 of the
threshold), so it cannot warn; the first block's statistics put it at 19x, noise at 1000x and a plane under
the wrong name at 14x, while phantom samples stay near 1.

Those statistics cannot see orientation (an upside-down sagittal phantom scored 0.84 against a threshold of
4.39). Beside them, a linear classifier on the plane's mean slice (16 x 16, standardised) tells the training
exams' orientation from their flipped copies (`ORIENTATIONS`: only flips that never occur in a correctly
stored knee; a mirrored coronal or axial image is the other knee, not an error). It is trusted only where
the plane is otherwise like the training data: on a real knee, unlike the phantoms it was fitted on, the
distance already warns, and the classifier's answer means nothing there.

The distance is that of probabilistic PCA: the Mahalanobis distance within the top RANK principal
directions plus the squared residual outside them over the mean residual variance, divided by the
number of dimensions (so a typical training exam scores about 1).
"""
from __future__ import annotations

import cv2
import numpy as np
import torch

RANK = 16
PERCENTILE = 99.0
ORIENTATION_SIZE = 16
# per plane: the flips (numpy axes of an (S, rows, columns) volume) that no correctly stored knee shows - rows
# run superior to inferior in sagittal and coronal images, columns anterior to posterior in sagittal and axial
# ones - and the flips that are normal (the other knee's mirror image)
ORIENTATIONS = {
    "sagittal": {"wrong": [(1,), (2,), (1, 2)], "normal": [()]},
    "coronal": {"wrong": [(1,), (1, 2)], "normal": [(), (2,)]},
    "axial": {"wrong": [(2,), (1, 2)], "normal": [(), (1,)]},
}


def orientation_image(volume: np.ndarray) -> np.ndarray:
    """uint8 (S, H, W) -> the mean slice at 16 x 16, standardised (256,)."""
    mean = np.asarray(volume, dtype=np.float32).mean(axis=0)
    small = cv2.resize(mean, (ORIENTATION_SIZE, ORIENTATION_SIZE), interpolation=cv2.INTER_AREA).ravel()
    return (small - small.mean()) / (small.std() + 1e-6)


def flipped_probability(stats: dict, volume: np.ndarray) -> float:
    """The orientation classifier's probability that this plane is stored flipped."""
    z = float(np.dot(stats["coef"], orientation_image(volume)) + stats["intercept"])
    return 1.0 / (1.0 + np.exp(-z))


def exam_vector(stem: torch.Tensor) -> np.ndarray:
    """The first block's activations of one plane (S, C, h, w) -> each channel's mean and std (2C,), fp32."""
    stem = stem.float()
    return torch.cat([stem.mean(dim=(0, 2, 3)), stem.std(dim=(0, 2, 3))]).cpu().numpy()


def distance(stats: dict, feature: np.ndarray) -> float:
    centred = np.asarray(feature, dtype=np.float64) - np.asarray(stats["mean"])
    components = np.asarray(stats["components"])
    inside = components @ centred
    outside = centred - components.T @ inside
    score = float((inside ** 2 / np.maximum(stats["variances"], 1e-12)).sum() + (outside @ outside) / stats["residual_variance"])
    return score / len(centred)


def rounded(stats: dict, digits: int = 6) -> dict:
    """The statistics with floats to `digits` significant digits (config.json stays readable and small)."""
    def r(v):
        if isinstance(v, float):
            return float(f"{v:.{digits}g}")
        if isinstance(v, list):
            return [r(x) for x in v]
        return v
    return {k: r(v) for k, v in stats.items()}


def warning(plane: str, result: dict) -> str:
    return (f"This {plane} series looks unlike the data these weights were trained on (distance {result['distance']:.1f}; "
            f"{result['percentile']:g} % of the training exams score below {result['threshold']:.1f}): its probabilities "
            "and maps mean little.")


def orientation_warning(plane: str, result: dict) -> str:
    return (f"This {plane} series looks flipped (upside down or front to back) compared with the training exams "
            f"(orientation check: {result['flipped']:.0%}): check how it was stored; its probabilities and maps mean "
            "little as it is.")


NO_STATISTICS = ("These weights carry no statistics of their training data, so this tool cannot tell whether the "
                 "exam looks like what they were trained on.")
