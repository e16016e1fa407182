"""The statistics of a score table that the Cases view and `python -m mrnet compare` report, in numpy and the
standard library (the runtime has no scipy; tests check each against scipy or an independent computation).

- calibration: reliability bins (equal-count quantile bins of the predicted probability), expected
  calibration error and Brier score;
- operating points: sensitivity and specificity at a threshold, Youden's J, a sensitivity floor;
- DeLong's test for two correlated ROC AUCs on the same cases;
- McNemar's exact test for two classifiers' paired errors;
- Wilson's score interval for a proportion.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

Z95 = 1.959963984540054  # the standard normal's 97.5 % quantile


def brier(labels, probabilities) -> float:
    """Brier score: mean((p - y)^2); 0 is perfect, 0.25 is a constant 0.5."""
    y, p = np.asarray(labels, float), np.asarray(probabilities, float)
    return float(np.mean((p - y) ** 2))


def reliability_bins(labels, probabilities, bins: int = 10) -> list[dict]:
    """Equal-count bins of the predicted probability (quantile bins: cases sorted by p, split into `bins`
    runs as equal as possible), each with its count, mean predicted probability and observed positive rate.
    A perfectly calibrated model has observed == predicted in every bin."""
    y, p = np.asarray(labels, float), np.asarray(probabilities, float)
    order = np.argsort(p, kind="stable")
    return [{"count": int(len(run)), "predicted": float(p[run].mean()), "observed": float(y[run].mean()),
             "low": float(p[run].min()), "high": float(p[run].max())}
            for run in np.array_split(order, min(bins, len(p))) if len(run)]


def expected_calibration_error(labels, probabilities, bins: int = 10) -> float:
    """ECE = sum over the reliability bins of (count / n) * |observed - predicted|."""
    rows = reliability_bins(labels, probabilities, bins)
    n = sum(r["count"] for r in rows)
    return float(sum(r["count"] / n * abs(r["observed"] - r["predicted"]) for r in rows))


@dataclass(frozen=True)
class OperatingPoint:
    name: str
    threshold: float       # positive when p >= threshold
    sensitivity: float
    specificity: float


def operating_point(name: str, labels, probabilities, threshold: float) -> OperatingPoint:
    y, p = np.asarray(labels, int), np.asarray(probabilities, float)
    positive = p >= threshold
    pos, neg = max(int(y.sum()), 1), max(int((1 - y).sum()), 1)
    return OperatingPoint(name, float(threshold), float((positive & (y == 1)).sum() / pos),
                          float((~positive & (y == 0)).sum() / neg))


def threshold_presets(labels, probabilities, min_sensitivity: float = 0.90) -> list[OperatingPoint]:
    """0.5; Youden's J (the threshold maximising sensitivity + specificity - 1, among the predicted
    probabilities); and the highest threshold whose sensitivity is still >= min_sensitivity (the most
    specific of the thresholds that keep that sensitivity)."""
    p = np.asarray(probabilities, float)
    candidates = np.unique(p)[::-1]   # every distinct probability, highest first
    points = [operating_point("0.5", labels, p, 0.5)]
    at = [operating_point("", labels, p, t) for t in candidates]
    youden = max(at, key=lambda o: (o.sensitivity + o.specificity - 1, o.threshold))
    points.append(OperatingPoint("Youden's J", youden.threshold, youden.sensitivity, youden.specificity))
    floor = next((o for o in at if o.sensitivity >= min_sensitivity), at[-1])
    points.append(OperatingPoint(f"sensitivity >= {min_sensitivity:.2f}", floor.threshold, floor.sensitivity,
                                 floor.specificity))
    return points


def wilson_interval(successes: int, n: int, z: float = Z95) -> tuple[float, float]:
    """Wilson's score interval for a proportion successes / n (95 % by default); (0, 1) when n is 0."""
    if n == 0:
        return 0.0, 1.0
    share = successes / n
    centre = (share + z * z / (2 * n)) / (1 + z * z / n)
    half = z / (1 + z * z / n) * math.sqrt(share * (1 - share) / n + z * z / (4 * n * n))
    return max(0.0, centre - half), min(1.0, centre + half)


def midranks(x: np.ndarray) -> np.ndarray:
    """1-based ranks, ties sharing the mean of their ranks."""
    values, inverse, counts = np.unique(x, return_inverse=True, return_counts=True)
    last = np.cumsum(counts)
    return ((last - counts + 1 + last) / 2.0)[inverse]


@dataclass(frozen=True)
class DeLong:
    auc_a: float
    auc_b: float
    difference: float       # auc_a - auc_b
    standard_error: float
    ci_low: float           # 95 % interval of the difference
    ci_high: float
    p_value: float          # two-sided, H0: equal AUCs


def delong(labels, scores_a, scores_b) -> DeLong:
    """DeLong, DeLong & Clarke-Pearson (1988), in Sun & Xu's (2014) midrank form. For each model, the
    structural components are V10_i = (1/n) sum_j psi(X_i, Y_j) over the m positives and
    V01_j = (1/m) sum_i psi(X_i, Y_j) over the n negatives (psi = 1, 1/2, 0 for >, =, <); AUC = mean V10;
    S = cov(V10) / m + cov(V01) / n; Var(A - B) = S_aa + S_bb - 2 S_ab; z = (A - B) / sqrt(Var)."""
    y = np.asarray(labels, int)
    if y.min() == y.max():
        raise ValueError("DeLong's test needs positives and negatives")
    scores = np.stack([np.asarray(scores_a, float), np.asarray(scores_b, float)])
    pos, neg = scores[:, y == 1], scores[:, y == 0]
    m, n = pos.shape[1], neg.shape[1]
    v10, v01 = np.empty_like(pos), np.empty_like(neg)
    for k in range(2):
        combined = midranks(np.r_[pos[k], neg[k]])
        v10[k] = (combined[:m] - midranks(pos[k])) / n
        v01[k] = 1.0 - (combined[m:] - midranks(neg[k])) / m
    aucs = v10.mean(axis=1)
    s = np.cov(v10) / m + np.cov(v01) / n
    variance = float(s[0, 0] + s[1, 1] - 2 * s[0, 1])
    difference = float(aucs[0] - aucs[1])
    se = math.sqrt(max(variance, 0.0))
    if se == 0.0:
        p_value = 1.0 if difference == 0 else 0.0
    else:
        p_value = math.erfc(abs(difference) / se / math.sqrt(2))
    return DeLong(float(aucs[0]), float(aucs[1]), difference, se, difference - Z95 * se, difference + Z95 * se,
                  p_value)


def mcnemar_exact(correct_a, correct_b) -> tuple[int, int, float]:
    """McNemar's exact test on paired outcomes -> (only A right, only B right, two-sided p): under H0 the
    discordant pairs split as Binomial(b + c, 1/2), and p = min(1, 2 * P(X <= min(b, c)))."""
    a, b = np.asarray(correct_a, bool), np.asarray(correct_b, bool)
    only_a, only_b = int((a & ~b).sum()), int((~a & b).sum())
    total = only_a + only_b
    if total == 0:
        return only_a, only_b, 1.0
    return only_a, only_b, min(1.0, 2 * binomial_half_tail(min(only_a, only_b), total))


def binomial_half_tail(k: int, n: int) -> float:
    """P(X <= k) for X ~ Binomial(n, 1/2), in O(k) steps in log space: the exact sum of binomial coefficients
    over big integers grew super-quadratically (10^5 cases took minutes). Each term is C(n, i) / 2^n, got from the
    previous one by the ratio (n - i + 1) / i; the sum is taken relative to the largest term (the last, as
    k <= n / 2 here), so nothing underflows before it matters."""
    if k >= n:
        return 1.0
    log_terms = [0.0] * (k + 1)
    log_terms[0] = -n * math.log(2)
    for i in range(1, k + 1):
        log_terms[i] = log_terms[i - 1] + math.log(n - i + 1) - math.log(i)
    top = max(log_terms)
    return min(1.0, math.exp(top) * math.fsum(math.exp(t - top) for t in log_terms))


def cohen_kappa(a: list, b: list) -> float:
    """Cohen's kappa of two raters' labels of the same items: (p_o - p_e) / (1 - p_e), p_e from each rater's own
    label frequencies. 1.0 when both give one and the same label throughout (no disagreement to chance)."""
    labels = {label: i for i, label in enumerate(sorted(set(a) | set(b)))}
    codes_a, codes_b = (np.array([labels[x] for x in rater]) for rater in (a, b))
    return float(cohen_kappas(codes_a, codes_b, len(labels), np.ones((1, len(a))))[0])


def cohen_kappas(a: np.ndarray, b: np.ndarray, labels: int, draws: np.ndarray) -> np.ndarray:
    """cohen_kappa of label codes 0 .. labels-1 for each row of `draws` (resamples x items: how often each
    resample draws each item), as sums weighted by the draws."""
    n = draws.sum(axis=-1)
    observed = draws @ (a == b) / n
    expected = sum((draws @ (a == c)) * (draws @ (b == c)) for c in range(labels)) / n ** 2
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(expected == 1, 1.0, (observed - expected) / (1 - expected))


def fleiss_kappa(counts) -> float:
    """Fleiss' kappa: `counts` (items x categories), how many raters gave each item each category, every item
    rated by the same number of raters (Fleiss 1971)."""
    table = np.asarray(counts, float)
    return float(fleiss_kappas(table, np.ones((1, len(table))))[0])


def fleiss_kappas(table: np.ndarray, draws: np.ndarray) -> np.ndarray:
    """fleiss_kappa of `table` for each row of `draws` (resamples x items), as sums weighted by the draws."""
    raters = table[0].sum()
    per_item = (table * (table - 1)).sum(axis=1) / (raters * (raters - 1))
    n = draws.sum(axis=-1)
    p_bar = draws @ per_item / n
    p_e = ((draws @ table / (n * raters)[:, None]) ** 2).sum(axis=-1)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(p_e == 1, 1.0, (p_bar - p_e) / (1 - p_e))


def bootstrap_interval(statistic, n: int, resamples: int = 1000, seed: int = 0) -> tuple[float, float]:
    """The 95 % percentile interval of `statistic(draws)` over `resamples` resamples of n items with replacement
    (a fixed seed: the same flags give the same interval). `statistic` takes a batch of resamples as `draws`
    (resamples x n: how often each resample drew each item) and gives one value per resample; a batch holds at
    most about 2 million draws."""
    rng = np.random.default_rng(seed)
    batch = max(1, 2_000_000 // max(n, 1))
    values: list[float] = []
    while len(values) < resamples:
        k = min(batch, resamples - len(values))
        picked = rng.integers(0, n, (k, n)) + n * np.arange(k)[:, None]
        values.extend(statistic(np.bincount(picked.ravel(), minlength=k * n).reshape(k, n).astype(float)))
    values.sort()
    return float(values[int(0.025 * resamples)]), float(values[int(0.975 * resamples) - 1])
