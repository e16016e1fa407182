"""Is an explanation faithful to the model? The deletion test (Petsiuk et al., RISE, BMVC 2018), adapted to
MRNet's slices: remove the slices an explanation ranks highest, one at a time, and watch the probability fall.
A faithful ranking makes it fall fastest: its deletion AUC (the mean probability over the curve) is lowest.
The insertion test is the other half: rebuild the exam from the top-ranked slice on; the faithful ranking makes
the probability rise fastest (highest insertion AUC).

How a slice is removed: it is dropped from the exam. MRNet's max over slices then runs over the slices that are
left, so the model sees a shorter exam of real slices - no black or blurred filler slice that would itself be
unlike any training exam (the usual objection to deletion with a baseline image). One slice always remains.
Because the head only needs each slice's pooled features, every step is exact and costs no forward pass.

Rankings compared, per plane: exact and Shapley attribution (each slice's share of the logit, `explain.exact_attribution`
and `explain.shapley_attribution`),
classic CAM's per-slice score (the mean of the slice's raw CAM, w . g_s, i.e. the logit that slice alone would
give, less the bias), and random orders (the mean of RANDOM_ORDERS of them, from a fixed seed).
"""
from __future__ import annotations

import copy

import numpy as np

from mrnet.core.analysis import sigmoid  # the model's own probability

RANDOM_ORDERS = 10


def deletion_curve(pooled: np.ndarray, weight: np.ndarray, bias: float, order: np.ndarray) -> np.ndarray:
    """pooled (S, C): each slice's pooled features; order: slice indices, most important first.
    -> (S,) probabilities after removing the first 0, 1, ..., S-1 slices of `order`."""
    n = len(order)
    return np.array([sigmoid(float(weight @ pooled[order[k:]].max(axis=0)) + bias) for k in range(n)])


def insertion_curve(pooled: np.ndarray, weight: np.ndarray, bias: float, order: np.ndarray) -> np.ndarray:
    """The insertion test's curve (RISE's other half): the exam rebuilt from the top of `order`, one slice at a
    time. -> (S,) probabilities with the first 1, 2, ..., S slices of `order` (the last is the whole exam).
    A faithful ranking makes it rise fastest: its insertion AUC (the curve's mean) is highest."""
    return np.array([sigmoid(float(weight @ pooled[order[:k + 1]].max(axis=0)) + bias) for k in range(len(order))])


PIXEL_FRACTIONS = (0.05, 0.1, 0.2, 0.4)  # of the slice's pixels, removed in a map's order
RANDOM_PIXEL_ORDERS = 3


def within_slice_scores(model, weight: np.ndarray, pooled: np.ndarray, index: int, pixels: np.ndarray,
                        maps: dict[str, np.ndarray], mean: float, std: float, seed: int = 0) -> dict[str, float] | None:
    """Inside one slice (remove-and-classify, after Hooker et al.'s ROAR without the retraining): the pixels a map
    ranks highest are set to the slice's mean intensity, PIXEL_FRACTIONS of them in turn, and the slice goes through
    the model again. What is left of the slice's own evidence, w . g'_s / w . g_s (g: its pooled features; the
    logit the slice alone would give, less the bias), is read at each step: the exam's probability would not do,
    since MRNet's max over slices lets the other slices stand in for this one. -> per map (and `random`, the mean
    of RANDOM_PIXEL_ORDERS random pixel orders) the mean of that curve from 1 (nothing removed): lower is more
    faithful. None when the slice holds no positive evidence. One batch through the model (float32)."""
    import torch

    from mrnet.core.model import to_input
    from mrnet.toolchain.localisation import upsampled
    evidence = float(weight @ pooled[index])
    if evidence <= 0:
        return None
    rng = np.random.default_rng(seed)
    n = pixels.size
    orders = [(name, np.argsort(-upsampled(m, pixels.shape).ravel(), kind="stable")) for name, m in maps.items()]
    orders += [("random", rng.permutation(n)) for _ in range(RANDOM_PIXEL_ORDERS)]
    variants = []
    for _, order in orders:
        for fraction in PIXEL_FRACTIONS:
            changed = pixels.copy().ravel()
            changed[order[:int(fraction * n)]] = int(round(float(pixels.mean())))
            variants.append(changed.reshape(pixels.shape))
    with torch.no_grad():
        x = to_input(np.stack(variants).astype(np.uint8), mean, std)
        left = model.forward_features(x).float().mean(dim=(2, 3)).cpu().numpy() @ weight / evidence
    steps = len(PIXEL_FRACTIONS)
    curves: dict[str, list[float]] = {}
    for k, (name, _) in enumerate(orders):
        curves.setdefault(name, []).append(float(np.mean([1.0, *left[k * steps:(k + 1) * steps]])))
    return {name: float(np.mean(values)) for name, values in curves.items()}


def deletion_auc(curve: np.ndarray) -> float:
    """The mean of the curve (the area under it with the removed fraction on [0, 1))."""
    return float(np.mean(curve))


def rankings(pooled: np.ndarray, weight: np.ndarray, contributions: dict[str, np.ndarray], seed: int = 0) -> dict:
    """Each method's order of slices, most important first (ties: the lower index first). contributions: the
    slice contributions of each additive method (explain.CamMethod.additive), by name."""
    rng = np.random.default_rng(seed)
    return {**{name: np.argsort(-c, kind="stable") for name, c in contributions.items()},
            "classic": np.argsort(-(pooled @ weight), kind="stable"),
            "random": [rng.permutation(len(pooled)) for _ in range(RANDOM_ORDERS)]}


def ranked_curves(curve, pooled: np.ndarray, weight: np.ndarray, bias: float, contributions: dict[str, np.ndarray],
                  seed: int = 0) -> dict[str, list[np.ndarray]]:
    """Each ranking's curves (`curve`: deletion_curve or insertion_curve) for one exam, plane and task (random: one
    per order, the same orders for the same seed)."""
    return {name: [curve(pooled, weight, bias, o) for o in (order if isinstance(order, list) else [order])]
            for name, order in rankings(pooled, weight, contributions, seed).items()}


def deletion_curves(pooled: np.ndarray, weight: np.ndarray, bias: float, contributions: dict[str, np.ndarray],
                    seed: int = 0) -> dict[str, list[np.ndarray]]:
    return ranked_curves(deletion_curve, pooled, weight, bias, contributions, seed)


def curve_aucs(curves: dict[str, list[np.ndarray]]) -> dict[str, float]:
    """ranked_curves' output -> the area under each ranking's curve (random: the mean over its orders)."""
    return {name: float(np.mean([deletion_auc(c) for c in cs])) for name, cs in curves.items()}


def deletion_scores(pooled: np.ndarray, weight: np.ndarray, bias: float, contributions: dict[str, np.ndarray],
                    seed: int = 0) -> dict[str, float]:
    """Deletion AUC per ranking for one exam, plane and task (lower is more faithful)."""
    return curve_aucs(deletion_curves(pooled, weight, bias, contributions, seed))


def insertion_aucs(pooled: np.ndarray, weight: np.ndarray, bias: float, contributions: dict[str, np.ndarray],
                   seed: int = 0) -> dict[str, float]:
    """Insertion AUC per ranking for one exam, plane and task (higher is more faithful)."""
    return curve_aucs(ranked_curves(insertion_curve, pooled, weight, bias, contributions, seed))


def on_fractions(curve: np.ndarray, points: int = 21) -> np.ndarray:
    """A curve over S slices read at removed fractions 0, 1/(points-1), ..., 1 of the exam (the last point: one
    slice left), so that exams with different slice counts average."""
    n = len(curve)
    return curve[np.minimum(n - 1, np.floor(np.linspace(0, 1, points) * n).astype(int))]


# --- Model-randomization sanity check (Adebayo et al., "Sanity Checks for Saliency Maps", NeurIPS 2018) -----
# Re-initialise the model from the head down, one layer more at each step (cascading), and compare each CAM
# method's maps with the trained model's: a method whose maps stay alike does not depend on what the model
# learned. Similarity, on the trained model's top slice of the decisive plane: Spearman rank correlation of the
# low-resolution maps, and SSIM of the maps upsampled to 256 x 256 and min-max scaled (as shown). Two smooth
# upsampled maps are never structurally unrelated, so the yardstick is chance: the same measures between the
# trained model's maps of two different exams. A method passes when, once every layer is random, both measures
# are within CHANCE_MARGIN of chance (Adebayo et al. judge by eye; the margin is ours).

CASCADE = ["head", "conv5", "conv4", "conv3", "conv2", "conv1"]
CONV_INDEX = {"conv1": 0, "conv2": 3, "conv3": 6, "conv4": 8, "conv5": 10}   # AlexNet's features[i]
CHANCE_MARGIN = 0.05


def randomize(model, layer: str, seed: int) -> None:
    """Re-initialise one layer in place (He init for convs, as `init_from_scratch`; N(0, 0.01) for the head)."""
    import torch
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        if layer == "head":
            model.classifier.weight.normal_(0.0, 0.01, generator=generator)
            model.classifier.bias.zero_()
            return
        conv = model.features[CONV_INDEX[layer]]
        fan_in = conv.weight[0].numel()
        conv.weight.normal_(0.0, (2.0 / fan_in) ** 0.5, generator=generator)
        conv.bias.zero_()


def cascade(weights):
    """Yields (layer, weights randomised from the head down to that layer) for each layer of CASCADE: one copy
    of `weights`, randomised further at each step (every plane's models; step k's layer is seeded with k)."""
    randomized = copy.deepcopy(weights)
    for step, layer in enumerate(CASCADE):
        for _, model in randomized.models:
            randomize(model, layer, seed=step)
        yield layer, randomized


def spearman(a: np.ndarray, b: np.ndarray) -> float:
    """Spearman rank correlation (scipy's; ties share their mean rank); 0 when either side is constant."""
    from scipy.stats import spearmanr
    a, b = np.asarray(a, np.float64).ravel(), np.asarray(b, np.float64).ravel()
    if a.min() == a.max() or b.min() == b.max():
        return 0.0
    return float(spearmanr(a, b).statistic)


def ssim(a: np.ndarray, b: np.ndarray) -> float:
    """Structural similarity (Wang et al. 2004) of two maps in [0, 1], Gaussian window of sigma 1.5."""
    import cv2
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    c1, c2 = 0.01 ** 2, 0.03 ** 2

    def blur(x):
        return cv2.GaussianBlur(x, (11, 11), 1.5)
    mu_a, mu_b = blur(a), blur(b)
    var_a, var_b, cov = blur(a * a) - mu_a ** 2, blur(b * b) - mu_b ** 2, blur(a * b) - mu_a * mu_b
    value = ((2 * mu_a * mu_b + c1) * (2 * cov + c2)) / ((mu_a ** 2 + mu_b ** 2 + c1) * (var_a + var_b + c2))
    return float(value.mean())


def shown(cam: np.ndarray) -> np.ndarray:
    """One slice's low-resolution map as displayed: upsampled to 256 x 256 and min-max scaled."""
    import cv2
    up = cv2.resize(np.asarray(cam, np.float32), (256, 256), interpolation=cv2.INTER_LINEAR)
    span = float(up.max() - up.min())
    return (up - up.min()) / span if span > 0 else np.zeros_like(up)


def similarity(a: np.ndarray, b: np.ndarray) -> dict[str, float]:
    """a, b: (h, w) low-resolution maps of one slice."""
    return {"spearman": spearman(a, b), "ssim": ssim(shown(a), shown(b))}
