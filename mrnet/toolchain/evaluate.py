"""`python -m mrnet evaluate --data DIR --weights SRC`: how well the weights classify held-out exams, where their
CAMs point, and whether the explanations are faithful to the model. The JSON report's keys:

- `n`, `split`, `weights`: exams evaluated, which split of DIR, the weights' source.
- `auc`: ROC AUC per task, `fused` (over planes, as the app) and per plane (that plane's logit).
- `pointing_game`: per CAM method (explain.METHODS), over lesion-positive (exam, task) pairs, the share of hits:
  the maximum of the task's CAM on the top slice (largest contribution of explain.DEFAULT_METHOD; the same
  slice for every method, so only the maps differ) of the decisive plane (the largest term in the fused logit) lies inside the lesion
  mask dilated by `pointing_game_dilation_px` (DILATE_PX = 15, the tolerance of Zhang et al., "Top-down Neural
  Attention by Excitation Backprop", ECCV 2016). `pointing_game_n`: the pairs.
- `pointing_game_ceiling`: how often any cell centre of the 7x7 grid lies in the dilated mask. A bilinearly
  upsampled 7x7 map peaks at a cell centre (one cell spans ~37 px), so no 7x7 CAM can score above it.
- `pointing_game_by_tolerance`: the same and the ceiling at both DILATE_PX and TIGHT_PX ("15", "10").
- `pointing_game_all_planes` (`_n`), `pointing_game_per_plane`: the test over every (exam, task, plane) whose
  plane shows the lesion, overall and per plane.
- `deletion_auc`: per task, the deletion test (faithfulness.py) over true positives (label 1, fused probability
  >= 0.5) on the decisive plane: the mean probability while the slices are removed in each method's order
  (additive methods: their slice contributions; classic: its per-slice score) and in random orders (`random`,
  mean of 10); lower is more faithful. `n`: the pairs. `deletion_curves`: the mean curves, read at 21 removed
  fractions of the exam (0, 0.05, ..., 1).
- `insertion_auc`: the same pairs and orders, the other way round: the exam rebuilt from each order's first slice
  on; the mean probability over the curve, higher is more faithful.
- `within_slice_auc`: the same pairs, inside the decisive plane's top slice (faithfulness.within_slice_scores):
  its pixels removed in each map's order (5, 10, 20, 40 %, set to the slice's mean) against random pixels
  (`random`, mean of 3); the mean share of the slice's own evidence left (w . g'_s / w . g_s) over the curve,
  lower is more faithful.
- `mask_localisation`: the top slice's map against the whole lesion mask on that slice (localisation.py), per
  method, over every (exam, task, plane) whose top slice shows the lesion: `auprc` and `best_iou` (the IoU at the
  threshold that maximises it), over all planes (`all`) and per plane; `random_auprc`: the lesion's mean share of
  the slice, what a map that ignores the lesion scores. None, with a sentence on stderr, for a set without masks.
- `randomization`: the cascading model-randomization check on the first `--randomization-exams` exams: per
  method and layer (head first, then conv5 down to conv1, cumulatively) the mean Spearman correlation and
  SSIM to the trained model's maps (`layers`), `chance` (the same measures between two different exams' maps),
  `verdict` per method (pass: both within `chance_margin` of chance once every layer is random), `n`, `cascade`.
- `pointing_game_marks` (with `--marks FLAGS_DB`): the pointing game against reviewers' lesion marks instead of
  masks, on any set: each method's map of the marked slice hits when its maximum lies within `dilation_px` of the
  reviewer's point or box; per method over every plane (`all`, with its Wilson 95 % interval `low`-`high`) and
  per plane, `n` marks (each reviewer's latest per case, task, plane and slice), `unused`: marks naming nothing in
  this set.
- `histogram_baseline_auc`: a logistic regression on intensity histograms, fitted on DIR/train: near 0.5 when
  the lesions are not given away by global image statistics (absent without a train split).
"""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
from tqdm import tqdm

from mrnet.core.analysis import analyze
from mrnet.core.config import DEFAULT_METHOD
from mrnet.core.errors import MRNetError
from mrnet.core.exam import Exam
from mrnet.core.explain import METHODS
from mrnet.core.pointing import (
    DILATE_PX,
    cell_centre_in_zone,
    hit_zone,
    mark_hit,
    mark_zone,
    pointing_hit,
    task_mask,
)
from mrnet.sets.flags import Flag, FlagStore
from mrnet.sets.metrics import auc
from mrnet.sets.statistics import wilson_interval
from mrnet.toolchain.card import summary, write_card
from mrnet.toolchain.dataset import fit_logistic, read_split
from mrnet.toolchain.faithfulness import (
    CASCADE,
    CHANCE_MARGIN,
    cascade,
    curve_aucs,
    deletion_curves,
    insertion_aucs,
    on_fractions,
    similarity,
    within_slice_scores,
)
from mrnet.toolchain.localisation import auprc_and_best_iou, upsampled

TIGHT_PX = 10       # the pointing game is also reported at this tolerance (key pointing_game_by_tolerance)
HIST_BINS = 32


def histogram_features(split, i, planes) -> np.ndarray:
    feats = []
    for plane in planes:
        h = np.bincount((split.volume(plane, i) // (256 // HIST_BINS)).ravel(), minlength=HIST_BINS)[:HIST_BINS]
        feats.append(np.log1p(h / h.sum() * 1e4))
    return np.concatenate(feats)


def histogram_baseline(data, tasks, planes, progress) -> dict:
    """Logistic regression on each exam's intensity histograms, fitted on `train`, scored on `valid`."""
    train, valid = read_split(data, "train", tasks), read_split(data, "valid", tasks)
    xt = np.stack([histogram_features(train, i, planes) for i in tqdm(range(len(train.ids)), disable=not progress, desc="histograms")])
    xv = np.stack([histogram_features(valid, i, planes) for i in range(len(valid.ids))])
    mu, sd = xt.mean(0), xt.std(0) + 1e-6
    out = {}
    for task in tasks:
        intercept, coef = fit_logistic((xt - mu) / sd, train.labels[task], l2=1.0)
        out[task] = auc(valid.labels[task], intercept + ((xv - mu) / sd) @ coef)
    return out


def randomization(originals: list, weights, progress: bool) -> dict:
    """The cascading model-randomization check (faithfulness.py) on exams the trained model has analysed
    (`originals`): per CAM method and randomized layer, the mean similarity of each (exam, task)'s
    decisive-plane maps to the trained model's, and a pass/fail verdict."""

    def top_map(analysis, task, method, plane=None, index=None):
        result = analysis.tasks[task]
        r = result.planes[plane or result.decisive_plane]
        return r.maps[method][r.top_slice if index is None else index]
    # chance: the trained model's maps of two different exams (each exam with the next one)
    chance = {m: [similarity(top_map(a, t, m), top_map(b, t, m)) for a, b in zip(originals, originals[1:])
                  for t in a.tasks] for m in METHODS}
    chance = {m: {k: round(float(np.mean([c[k] for c in v])), 4) for k in ("spearman", "ssim")} if v else None
              for m, v in chance.items()}
    layers = {m: {} for m in METHODS}
    for layer, randomized in tqdm(cascade(weights), total=len(CASCADE), disable=not progress, desc="randomization"):
        found = {m: [] for m in METHODS}
        for original in originals:
            changed = analyze(original.exam, randomized)
            for task, result in original.tasks.items():
                plane, top = result.decisive_plane, result.planes[result.decisive_plane].top_slice
                for m in METHODS:  # the same slice of the same plane, before and after
                    found[m].append(similarity(top_map(original, task, m), top_map(changed, task, m, plane, top)))
        for m in METHODS:
            layers[m][layer] = {k: round(float(np.mean([f[k] for f in found[m]])), 4) for k in ("spearman", "ssim")}
    verdict = {m: None if chance[m] is None else "pass" if all(
        layers[m][CASCADE[-1]][k] <= chance[m][k] + CHANCE_MARGIN for k in ("spearman", "ssim")) else "fail"
        for m in METHODS}
    return {"layers": layers, "chance": chance, "verdict": verdict, "n": len(originals), "chance_margin": CHANCE_MARGIN,
            "cascade": CASCADE}


def mean_scores(rows: list[dict]) -> dict | None:
    """Each ranking's mean score over a task's pairs, and the pairs' count; None without a pair."""
    if not rows:
        return None
    return {m: round(float(np.mean([r[m] for r in rows])), 4) for m in rows[0]} | {"n": len(rows)}


def read_marks(db, split_name: str, dataset: str | None = None) -> dict[str, list[Flag]]:
    """Reviewers' lesion marks in a flags database (the app's MRNET_FLAGS), by case id: each reviewer's latest mark
    per (case, task, plane, slice) of the split, of `dataset` when given."""
    if not Path(db).is_file():
        raise MRNetError(f"There is no flag database at {db}; give the app's MRNET_FLAGS with --marks.")
    latest: dict[tuple, Flag] = {}
    for f in FlagStore(db).list():
        if f.mark_x is not None and f.split == split_name and (dataset is None or f.dataset == dataset):
            latest[(f.reviewer, f.case_id, f.task, f.plane, f.slice)] = f
    by_case: dict[str, list[Flag]] = {}
    for f in latest.values():
        by_case.setdefault(f.case_id, []).append(f)
    return by_case


def marked_zone(f: Flag, volume: np.ndarray) -> np.ndarray | None:
    """A flag's mark on its slice as a zone, or None when it does not lie inside that slice."""
    box = (f.slice, f.mark_x, f.mark_y, f.mark_w or 0, f.mark_h or 0)
    if not all(isinstance(v, int) and v >= 0 for v in box) or f.slice >= len(volume):
        return None
    rows, columns = volume.shape[1:]
    if f.mark_x + (f.mark_w or 0) >= columns or f.mark_y + (f.mark_h or 0) >= rows:
        return None
    return mark_zone((rows, columns), f.mark_x, f.mark_y, f.mark_w or 0, f.mark_h or 0)


def marks_report(found: dict, unused: int, dilate_px: int) -> dict:
    """The pointing game against reviewers' marks, per method over every plane (with its Wilson interval) and
    per plane; `unused`: marks that name no case, task, plane or slice of this set."""
    every = {m: sum(per_plane.values(), []) for m, per_plane in found.items()}
    n = len(next(iter(every.values()), []))
    report: dict = {"n": n, "n_per_plane": {p: len(v) for p, v in next(iter(found.values()), {}).items()},
                    "unused": unused, "dilation_px": dilate_px, "hits": {}}
    for method, hits in every.items():
        low, high = wilson_interval(int(sum(hits)), len(hits))
        report["hits"][method] = {"all": round(float(np.mean(hits)), 4) if hits else None, "low": round(low, 4),
                                  "high": round(high, 4),
                                  **{p: round(float(np.mean(h)), 4) if h else None for p, h in found[method].items()}}
    return report


def run_evaluate(data, weights, split_name: str = "valid", progress: bool = True, dilate_px: int = DILATE_PX,
                 randomization_exams: int = 20, marks: dict[str, list[Flag]] | None = None) -> dict:
    tasks = [t for t in weights.config.tasks]
    split = read_split(data, split_name, tasks)
    planes = [p for p in split.planes if weights.for_plane(p)]
    logits = {t: {p: [] for p in planes} for t in tasks}
    fused = {t: [] for t in tasks}
    hits = {m: {p: [] for p in planes} for m in METHODS}     # (exam, task, plane)
    tolerances = sorted({dilate_px, TIGHT_PX}, reverse=True)
    tolerance_hits = {px: {m: [] for m in [*METHODS, "ceiling"]} for px in tolerances}  # (exam, task), decisive plane
    kept = []                                                 # the first exams' analyses, for randomization
    deletion = {t: [] for t in tasks}                         # (exam, task) true positive, decisive plane: AUCs
    deletion_mean_curves = {t: [] for t in tasks}             # ... and the curves on a common x axis
    insertion = {t: [] for t in tasks}                        # ... and the insertion test's AUCs
    covered = {m: {p: [] for p in planes} for m in METHODS}   # (exam, task, plane), lesion on the top slice:
    prevalence = {p: [] for p in planes}                      # (AUPRC, best IoU), and the lesion's share of it
    heads = {p: dict(zip(entry.tasks, model.classifier.weight.detach().float().cpu().numpy()))
             for p in planes for entry, model in weights.for_plane(p)}
    models = {p: {t: model for entry, model in weights.for_plane(p) for t in entry.tasks} for p in planes}
    within = {t: [] for t in tasks}                           # (exam, task) true positive: inside the top slice
    norm = weights.config.normalization
    mark_hits = {m: {p: [] for p in planes} for m in METHODS}  # reviewers' marks (--marks): each method's map
    unused_marks = sum(len(v) for k, v in (marks or {}).items() if k not in set(split.ids))
    for i in tqdm(range(len(split.ids)), disable=not progress, desc="evaluate"):
        exam = Exam(volumes={p: split.volume(p, i) for p in planes})
        analysis = analyze(exam, weights)
        if i < randomization_exams:
            kept.append(analysis)
        for t in tasks:
            result = analysis.tasks[t]
            fused[t].append(result.probability)
            for p in planes:
                logits[t][p].append(result.planes[p].logit)
            if split.labels[t][i] and result.probability >= 0.5:  # deletion: what made a positive call positive
                r = result.planes[result.decisive_plane]
                shares = {m: r.maps[m].mean(axis=(-2, -1)) for m, spec in METHODS.items() if spec.additive}
                curves = deletion_curves(r.pooled, heads[result.decisive_plane][t], r.bias, shares, seed=i)
                deletion[t].append(curve_aucs(curves))
                insertion[t].append(insertion_aucs(r.pooled, heads[result.decisive_plane][t], r.bias, shares, seed=i))
                inside = within_slice_scores(
                    models[result.decisive_plane][t], heads[result.decisive_plane][t], r.pooled, r.top_slice,
                    exam.volumes[result.decisive_plane][r.top_slice], {m: maps[r.top_slice] for m, maps in r.maps.items()},
                    norm.mean, norm.std, seed=i)
                if inside is not None:
                    within[t].append(inside)
                deletion_mean_curves[t].append({m: np.mean([on_fractions(c) for c in cs], axis=0)
                                                for m, cs in curves.items()})
        for f in (marks or {}).get(split.ids[i], []):
            marked = analysis.tasks[f.task].planes.get(f.plane) if f.task in analysis.tasks else None
            zone = marked_zone(f, exam.volumes[f.plane]) if marked is not None else None
            if zone is None:
                unused_marks += 1
                continue
            for method, maps in marked.maps.items():
                mark_hits[method][f.plane].append(mark_hit(maps[f.slice], zone, dilate_px))
        masks = {p: split.mask(p, i) for p in planes}
        if any(m is None for m in masks.values()):
            continue
        for t in tasks:
            lesions = {p: task_mask(m, t) for p, m in masks.items()}
            if not split.labels[t][i] or not any(m.any() for m in lesions.values()):
                continue
            for p, lesion in lesions.items():
                result = analysis.tasks[t].planes[p]
                top, decisive = result.top_slice, p == analysis.tasks[t].decisive_plane
                if lesion[top].any():
                    prevalence[p].append(float(lesion[top].mean()))
                    for method, maps in result.maps.items():
                        covered[method][p].append(auprc_and_best_iou(upsampled(maps[top], lesion[top].shape),
                                                                     lesion[top]))
                for px in tolerances if decisive else [dilate_px]:
                    zone = hit_zone(lesion[top], px)
                    for method, maps in result.maps.items():
                        hit = pointing_hit(maps[top], zone)
                        if lesion.any() and px == dilate_px:
                            hits[method][p].append(hit)
                        if decisive:
                            tolerance_hits[px][method].append(hit)
                    if decisive:
                        tolerance_hits[px]["ceiling"].append(cell_centre_in_zone(result.maps[DEFAULT_METHOD].shape[-2:], zone))
    report = {
        "n": len(split.ids), "split": split_name, "weights": weights.describe().get("source"),
        "auc": {t: {"fused": auc(split.labels[t], fused[t]), **{p: auc(split.labels[t], logits[t][p]) for p in planes}}
                for t in tasks},
    }
    for key, pairs in (("deletion_auc", deletion), ("insertion_auc", insertion), ("within_slice_auc", within)):
        report[key] = {t: mean_scores(rows) for t, rows in pairs.items()}
    report["deletion_curves"] = {t: {m: [round(float(v), 4) for v in np.mean([c[m] for c in rows], axis=0)]
                                     for m in rows[0]} if rows else None for t, rows in deletion_mean_curves.items()}
    pair_hits = tolerance_hits[dilate_px]
    if pair_hits[DEFAULT_METHOD]:
        report["pointing_game"] = {m: float(np.mean(pair_hits[m])) for m in METHODS}
        report["pointing_game_ceiling"] = float(np.mean(pair_hits["ceiling"]))
        report["pointing_game_n"] = len(pair_hits[DEFAULT_METHOD])
        report["pointing_game_by_tolerance"] = {str(px): {m: round(float(np.mean(h)), 4) for m, h in found.items()}
                                                for px, found in tolerance_hits.items()}
        report["pointing_game_all_planes"] = {m: float(np.mean(sum(hits[m].values(), []))) for m in hits}
        report["pointing_game_per_plane"] = {m: {p: (float(np.mean(h)) if h else None) for p, h in hits[m].items()}
                                             for m in hits}
        report["pointing_game_all_planes_n"] = len(sum(hits[DEFAULT_METHOD].values(), []))
        report["pointing_game_dilation_px"] = dilate_px
    if any(prevalence.values()):
        report["mask_localisation"] = localisation_report(covered, prevalence)
    else:
        report["mask_localisation"] = None
        print("Mask measures skipped: this set has no lesion masks (the pointing game, AUPRC and IoU need them).",
              file=sys.stderr)
    if marks is not None:
        report["pointing_game_marks"] = marks_report(mark_hits, unused_marks, dilate_px)
    if randomization_exams > 0:
        report["randomization"] = randomization(kept, weights, progress)
    if (split.root / "train").is_dir() and split_name != "train":
        try:
            report["histogram_baseline_auc"] = histogram_baseline(data, tasks, planes, progress)
        except MRNetError:  # an empty or partial train split: no baseline, but the rest of the report stands
            report["histogram_baseline_auc"] = None
    return report


def localisation_report(covered: dict, prevalence: dict) -> dict:
    """Per method, the mean AUPRC and best IoU of the top slice's map against its lesion mask, over every plane and
    per plane, with the random baseline of AUPRC (the lesion's mean share of the slice) and the pairs."""
    mean = lambda values: round(float(np.mean(values)), 4) if values else None  # noqa: E731
    every = sum(prevalence.values(), [])
    return {"n": len(every), "n_per_plane": {p: len(v) for p, v in prevalence.items()},
            "random_auprc": mean(every), "random_auprc_per_plane": {p: mean(v) for p, v in prevalence.items()},
            **{key: {m: {"all": mean([pair[k] for v in found.values() for pair in v]),
                         **{p: mean([pair[k] for pair in v]) for p, v in found.items()}} for m, found in covered.items()}
               for k, key in ((0, "auprc"), (1, "best_iou"))}}


def read_compared(specs: list[str]) -> dict:
    """--compare NAME=REPORT.json (another `evaluate`'s output, e.g. another recipe's weights on the same
    exams) -> {NAME: summary}."""
    import json
    from pathlib import Path
    out = {}
    for spec in specs:
        name, sep, path = spec.partition("=")
        if not sep or not name or not path:
            raise MRNetError(f"--compare takes NAME=REPORT.json, not {spec!r}.")
        try:
            report = json.loads(Path(path).read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise MRNetError(f"--compare {name}: {path} is not a readable JSON report ({exc}).") from None
        if not isinstance(report, dict) or not isinstance(report.get("auc"), dict):
            raise MRNetError(f"--compare {name}: {path} is not the output of `python -m mrnet evaluate`.")
        out[name] = summary(report)
    return out


def record(weights, report: dict, data, data_note: str = "", compared: dict | None = None) -> None:
    import shlex
    from pathlib import Path

    from mrnet.core.hub import BUNDLED
    kind = weights.source.get("kind")
    folder = str(BUNDLED) if kind == "bundled" else weights.source.get("folder")
    if kind not in ("local", "bundled") or not folder:
        raise MRNetError("--record writes into a local weights folder; this one came from the Hub.")
    config = weights.config
    command = "python -m mrnet " + " ".join(shlex.quote(x) for x in sys.argv[1:])
    config.provenance["evaluation"] = {k: v for k, v in report.items() if k != "weights"} | {
        "command": command, "data": str(data), "data_note": data_note} | ({"compared": compared} if compared else {})
    config.save(Path(folder))
    write_card(Path(folder), config)
