"""Why does a plane's model learn little? Per (plane, task), from a weights folder and a phantom folder:

- slice AUC: each slice's logit against whether its mask shows that task's lesion (what stage 1 trains);
- exam AUC: the max over slices against the exam's label (what the app and MRNet use);
- clean max: how many of a negative exam's slices outscore the median lesion slice of positive exams
  (the max over ~30 slices of a clean exam is where false positives accumulate);
- decisive hit: the share of positive exams whose top slice shows the lesion;
- model AUC: MRNet's own exam logit (the head on the max over slices of the pooled features), which is
  not the max of the slice logits: a head trained on single slices meets max-pooled features here;
- with --refit-head: the AUC of a head fitted again on those max-pooled features of the training exams
  (L2 logistic regression per task, C = 0.1, standardised channels): whether the channels' max over an
  exam still carries the lesion at all.

A model that ranks slices well but exams badly is let down by the max over slices; one that ranks
slices badly never learned the lesion. With --stage1-steps N it first trains a fresh model of --plane for
N steps of the training recipe's stage 1 alone (mask-free: slice labels only) and diagnoses that, which
tells a stage-1 failure from one of the exam-level stage. Usage:
    .venv/bin/python bench/plane_diagnosis.py --weights weights --data data/phantoms [--split valid]
    .venv/bin/python bench/plane_diagnosis.py --data data/phantoms --plane coronal --stage1-steps 600
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import torch

from mrnet.core.compute import compute_for
from mrnet.core.config import Normalization
from mrnet.core.pointing import task_mask
from mrnet.core.weights import load_weights
from mrnet.sets.metrics import auc
from mrnet.toolchain.dataset import read_split
from mrnet.toolchain.train import max_pooled


def slice_and_exam_logits(model, volume, norm, compute) -> tuple[np.ndarray, np.ndarray]:
    """(S, tasks) each slice's logits, and (tasks,) the exam's as MRNet computes it."""
    with torch.inference_mode():
        pooled, exam = model.forward_head(model.forward_features(compute.slices(volume, norm)))
        return model.classifier(pooled).cpu().numpy(), exam.cpu().numpy()


def stage1_model(data: Path, plane: str, steps: int, tasks, extra: dict):
    """A fresh model after the train recipe's stage 1 alone (mask-free), as `mrnet train` would start it."""
    from mrnet.toolchain.options import TrainOptions
    from mrnet.toolchain.pretrained import initial_model
    from mrnet.toolchain.train import pretrain
    args = TrainOptions(data=str(data), out="", mask_weight=0.0, slice_steps=steps, **extra)
    torch.manual_seed(args.seed + ["axial", "coronal", "sagittal"].index(plane))
    model = initial_model(args.init, len(tasks)).to(memory_format=torch.channels_last)
    pretrain(model, read_split(data, "train", tasks), plane, tasks, args, Normalization(), compute_for("cpu", "fp32"),
             log=print)
    return model.eval()


def stage1_checkpoint(path: Path, n_tasks: int):
    """The model a stage-1 checkpoint holds (its BatchNorm view folded back into plain AlexNet)."""
    from mrnet.core.model import MRNet
    from mrnet.toolchain.train import fold_batchnorm, with_batchnorm
    model = MRNet(n_tasks)
    plain = model.features
    model.features = with_batchnorm(plain)
    model.load_state_dict(torch.load(path, weights_only=True)["model"])
    fold_batchnorm(model.features)
    model.features = plain
    return model.eval()


def refit_head_aucs(model, data: Path, split, plane, tasks, norm, compute) -> dict:
    from sklearn.linear_model import LogisticRegression
    from sklearn.preprocessing import StandardScaler
    train = read_split(data, "train", tasks)
    x_train, x_split = max_pooled(model, train, plane, norm, compute), max_pooled(model, split, plane, norm, compute)
    scaler = StandardScaler().fit(x_train)
    return {t: auc(split.labels[t], LogisticRegression(C=0.1, max_iter=5000).fit(
        scaler.transform(x_train), train.labels[t]).decision_function(scaler.transform(x_split))) for t in tasks}


def diagnose(models: dict, data: Path, split_name: str, tasks, norm, refit: bool = False) -> dict:
    compute = compute_for("cpu", "fp32")
    split = read_split(data, split_name, tasks)
    report = {}
    for plane, model in models.items():
        refitted = refit_head_aucs(model, data, split, plane, tasks, norm, compute) if refit else {}
        per_exam, model_logits = [], []
        for i in range(len(split.ids)):
            logits, exam_logit = slice_and_exam_logits(model, split.volume(plane, i), norm, compute)
            per_exam.append((logits, split.mask(plane, i)))
            model_logits.append(exam_logit)
        model_logits = np.stack(model_logits)
        for k, task in enumerate(tasks):
            s_scores, s_labels, top_hits, lesion_scores, clean_scores = [], [], [], [], []
            for i, (logits, mask) in enumerate(per_exam):
                shows = task_mask(mask, task).reshape(len(mask), -1).any(axis=1)
                s_scores += list(logits[:, k])
                s_labels += list(shows.astype(int))
                if split.labels[task][i]:
                    top_hits.append(bool(shows[int(np.argmax(logits[:, k]))]))
                    lesion_scores += list(logits[shows, k])
                else:
                    clean_scores.append(logits[:, k])
            exam_scores = np.array([logits[:, k].max() for logits, _ in per_exam])
            median_lesion = float(np.median(lesion_scores)) if lesion_scores else float("nan")
            report[f"{plane}/{task}"] = {
                "slice_auc": round(auc(np.array(s_labels), np.array(s_scores)), 3),
                "exam_auc": round(auc(split.labels[task], exam_scores), 3),
                "model_auc": round(auc(split.labels[task], model_logits[:, k]), 3),
                "clean_slices_above_median_lesion": round(float(np.mean(
                    [np.mean(c > median_lesion) for c in clean_scores])), 3),
                "decisive_hit": round(float(np.mean(top_hits)), 3),
                **({"refit_head_auc": round(refitted[task], 3)} if refit else {}),
            }
    return report


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--weights", default="weights")
    parser.add_argument("--data", default="data/phantoms")
    parser.add_argument("--split", default="valid")
    parser.add_argument("--plane", default="coronal", help="with --stage1-steps: the plane to train")
    parser.add_argument("--stage1-steps", type=int, default=0)
    parser.add_argument("--refit-head", action="store_true", help="also the AUC of a head refitted on max-pooled "
                        "features of the training split")
    parser.add_argument("--checkpoint", help="a stage-1 checkpoint of `mrnet train` (OUT/checkpoints/PLANE.stage1.pt) "
                        "to diagnose, for --plane")
    parser.add_argument("--option", action="append", default=[], metavar="NAME=JSON",
                        help="with --stage1-steps: a TrainOptions value, e.g. stage1_batchnorm=false")
    args = parser.parse_args()
    if args.checkpoint:
        tasks, norm = ["abnormal", "acl", "meniscus"], Normalization()
        models = {args.plane: stage1_checkpoint(Path(args.checkpoint), len(tasks))}
    elif args.stage1_steps:
        tasks = ["abnormal", "acl", "meniscus"]
        extra = {k: json.loads(v) for k, v in (o.split("=", 1) for o in args.option)}
        models = {args.plane: stage1_model(Path(args.data), args.plane, args.stage1_steps, tasks, extra)}
        norm = Normalization()
    else:
        weights = load_weights(Path(args.weights))
        tasks, norm = weights.config.tasks, weights.config.normalization
        models = {plane: weights.for_plane(plane)[0][1] for plane in weights.planes}
    report = diagnose(models, Path(args.data), args.split, tasks, norm, args.refit_head)
    print(f"{'plane/task':20} {'slice AUC':>9} {'exam AUC':>8} {'model AUC':>9} {'clean>med':>9} {'top hit':>7}")
    for name, row in report.items():
        print(f"{name:20} {row['slice_auc']:9.3f} {row['exam_auc']:8.3f} {row['model_auc']:9.3f} "
              f"{row['clean_slices_above_median_lesion']:9.3f} {row['decisive_hit']:7.3f}")
    print(json.dumps(report))


if __name__ == "__main__":
    main()
