"""The model card (README.md of a weights folder), written from config.json so that the card and the config
never disagree. The front matter is huggingface_hub's ModelCardData, with the fused ROC AUC per task as
`model-index` results (the Hub shows them on the model page)."""
from __future__ import annotations

from pathlib import Path

from huggingface_hub import EvalResult, ModelCard, ModelCardData

from mrnet.core.config import DEFAULT_METHOD, TASK_TITLES, WeightsConfig
from mrnet.core.errors import MRNetError
from mrnet.core.explain import METHODS

REQUIRED_YAML = ("license", "library_name", "tags", "pipeline_tag")
MODEL_NAME = "MRNet (AlexNet per slice, max over slices) with CAM explanations"


def eval_results(config: WeightsConfig) -> list[EvalResult]:
    """Fused ROC AUC per task: on the held-out evaluation when one is recorded, else on the validation split."""
    prov = config.provenance
    evaluation = prov.get("evaluation") or {}
    if evaluation.get("auc"):
        per_task, split = evaluation["auc"], "held-out"
        data = f"held-out exams ({Path(str(evaluation.get('data', ''))).name or 'see the card'})"
    else:
        per_task, split, data = prov.get("metrics", {}).get("valid", {}), "valid", "validation split used in training"
    synthetic = "synthetic" in str(prov.get("trained_on", "")).lower()
    return [EvalResult(task_type="image-classification", task_name="Knee MRI: abnormality, ACL tear, meniscal tear",
                       dataset_type="knee-phantoms" if synthetic else "knee-mri", dataset_name=data, dataset_split=split,
                       metric_type="roc_auc", metric_name=f"ROC AUC, {TASK_TITLES.get(task, task)} (fused over planes)",
                       metric_value=round(float(aucs["fused"]), 4))
            for task, aucs in per_task.items() if isinstance(aucs, dict) and isinstance(aucs.get("fused"), float)]


def card_data(config: WeightsConfig) -> ModelCardData:
    prov = config.provenance
    tags = ["medical-imaging", "knee-mri", "mrnet", "class-activation-maps", "research-only"]
    if "synthetic" in str(prov.get("trained_on", "")).lower():
        tags.append("synthetic-data")
    results = eval_results(config)
    return ModelCardData(license=prov.get("license", "mit").lower(), library_name="pytorch",
                         pipeline_tag="image-classification", tags=tags, metrics=["roc_auc"] if results else None,
                         model_name=MODEL_NAME if results else None, eval_results=results or None)


def front_matter(config: WeightsConfig) -> str:
    return f"---\n{card_data(config).to_yaml()}\n---\n"


def metric_table(metrics: dict) -> str:
    out = []
    for split, per_task in metrics.items():
        if not isinstance(per_task, dict) or not per_task or not all(isinstance(v, dict) for v in per_task.values()):
            continue
        columns = list(next(iter(per_task.values())))
        out += [f"**{split}** (ROC AUC)", "", "| task | " + " | ".join(columns) + " |",
                "|---" * (len(columns) + 1) + "|"]
        out += [f"| {task} | " + " | ".join(f"{v[c]:.3f}" if isinstance(v.get(c), float) else str(v.get(c, ""))
                                          for c in columns) + " |" for task, v in per_task.items()]
        out.append("")
    return "\n".join(out)


def pointing_game_lines(evaluation: dict) -> list[str]:
    pg, every = evaluation["pointing_game"], evaluation.get("pointing_game_all_planes")
    by_tolerance = evaluation.get("pointing_game_by_tolerance") or {
        str(evaluation.get("pointing_game_dilation_px")): pg | {"ceiling": evaluation.get("pointing_game_ceiling")}}
    methods = list(pg)
    lines = [f"Pointing game over {evaluation.get('pointing_game_n')} lesion-positive exam/task pairs: a hit when the "
             "CAM's maximum on the top slice of the decisive plane lies inside the lesion mask dilated by the "
             "tolerance. The ceiling is how often any cell centre of the 7x7 map lies in the dilated mask: no 7x7 "
             "CAM can score above it.", "",
             "| tolerance | " + " | ".join(methods) + " | ceiling |", "|---" * (len(methods) + 2) + "|"]
    lines += [f"| {px} px | " + " | ".join(f"{row[m]:.3f}" for m in methods) + " | "
              + (f"{row['ceiling']:.3f}" if row.get("ceiling") is not None else "") + " |"
              for px, row in by_tolerance.items()]
    lines.append("")
    if every:
        shown = DEFAULT_METHOD if DEFAULT_METHOD in every else next(iter(every))
        per_plane = ", ".join(f"{p} {v:.3f}" for p, v in evaluation["pointing_game_per_plane"][shown].items()
                              if v is not None)
        lines += [f"The same test on every plane that shows the lesion "
                  f"({evaluation.get('pointing_game_all_planes_n')} exam/task/plane cases, "
                  f"{evaluation.get('pointing_game_dilation_px')} px): "
                  + ", ".join(f"{m} {v:.3f}" for m, v in every.items()) + f"; per plane, {shown}: {per_plane}.", ""]
    return lines


def deletion_lines(deletion: dict, insertion: dict | None = None, within: dict | None = None) -> list[str]:
    rankings = [k for k in next(v for v in deletion.values() if v) if k != "n"]
    lines = ["Deletion test (lower is more faithful): over true positives, the decisive plane's slices are dropped "
             "one at a time in each explanation's order and the mean probability over the curve is reported "
             "(random: the mean of 10 orders).", "",
             "| task | " + " | ".join(rankings) + " | pairs |", "|---" * (len(rankings) + 2) + "|"]
    lines += [f"| {TASK_TITLES.get(t, t)} | " + " | ".join(f"{v[r]:.3f}" for r in rankings) + f" | {v['n']} |"
              for t, v in deletion.items() if v]
    if within and any(within.values()):
        lines += ["", "Inside the top slice (lower is more faithful): its pixels set to the slice's mean in each map's "
                  "order, 5 to 40 % of them, against random pixels; the mean share of the slice's own evidence left "
                  "over the curve.", "",
                  "| task | " + " | ".join(rankings) + " | pairs |", "|---" * (len(rankings) + 2) + "|"]
        lines += [f"| {TASK_TITLES.get(t, t)} | " + " | ".join(f"{v[r]:.3f}" if r in v else "-" for r in rankings)
                  + f" | {v['n']} |" for t, v in within.items() if v]
    if insertion and any(insertion.values()):
        lines += ["", "Insertion test (higher is more faithful): the same pairs, the exam rebuilt slice by slice from "
                  "each order's first.", "",
                  "| task | " + " | ".join(rankings) + " | pairs |", "|---" * (len(rankings) + 2) + "|"]
        lines += [f"| {TASK_TITLES.get(t, t)} | " + " | ".join(f"{v[r]:.3f}" for r in rankings) + f" | {v['n']} |"
                  for t, v in insertion.items() if v]
    return lines + [""]


def localisation_lines(found: dict) -> list[str]:
    """The top slice's map against the whole lesion mask: AUPRC (random: the lesion's share) and the best IoU."""
    methods = list(found["auprc"])
    lines = [f"Localisation against the whole lesion mask, over {found['n']} (exam, task, plane) whose top slice shows "
             f"the lesion: AUPRC of the map's pixels (random: {found['random_auprc']:.3f}, the lesion's share of the "
             "slice) and the IoU at the best threshold.", "",
             "| measure | " + " | ".join(methods) + " |", "|---" * (len(methods) + 1) + "|"]
    for key, title in (("auprc", "AUPRC"), ("best_iou", "best IoU")):
        lines.append(f"| {title} | " + " | ".join(f"{found[key][m]['all']:.3f}" for m in methods) + " |")
    return lines + [""]


def randomization_lines(check: dict) -> list[str]:
    cascade = check.get("cascade") or list(next(iter(check["layers"].values())))
    lines = [f"Model-randomization check (Adebayo et al., 2018) on {check.get('n')} exams: Spearman / SSIM between "
             "the trained model's map of its top slice and the map once the layers down to the one named are "
             "re-initialised. A method passes when, with every layer random, both are within "
             f"{check.get('chance_margin')} of chance (two different exams' maps from the trained model).", "",
             "| method | " + " | ".join(cascade) + " | chance | verdict |", "|---" * (len(cascade) + 3) + "|"]
    for method, layers in check["layers"].items():
        chance = check["chance"].get(method)
        lines.append(f"| {method} | " + " | ".join(f"{layers[c]['spearman']:.2f} / {layers[c]['ssim']:.2f}"
                                                   for c in cascade)
                     + (f" | {chance['spearman']:.2f} / {chance['ssim']:.2f}" if chance else " | ")
                     + f" | {check['verdict'].get(method) or 'n/a'} |")
    return lines + [""]


def comparison_lines(evaluation: dict) -> list[str]:
    """These weights beside other evaluations of the same exams (evaluate --record --compare NAME=REPORT)."""
    runs = {"these weights": summary(evaluation)} | evaluation["compared"]
    by_tolerance = [r.get("pointing_game_by_tolerance") or {} for r in runs.values()]
    tolerances = sorted({px for t in by_tolerance for px in t}, key=int, reverse=True)  # "15", "10"
    methods = [m for m in METHODS if all(m in row for t in by_tolerance for row in t.values())]

    def joined(values):
        return " / ".join("-" if v is None else v if isinstance(v, str) else f"{v:.3f}" for v in values)
    rows = [("held-out exams", [str(r.get("n")) for r in runs.values()])]
    for task in evaluation.get("auc", {}):
        rows.append((f"ROC AUC, {TASK_TITLES.get(task, task)} (fused)", [joined([r["auc"].get(task)]) for r in runs.values()]))
    for px in tolerances:
        rows.append((f"pointing game at {px} px, {' / '.join(methods)}",
                     [joined([t.get(px, {}).get(m) for m in methods]) for t in by_tolerance]))
    for task in evaluation.get("auc", {}):
        rows.append((f"deletion AUC, {TASK_TITLES.get(task, task)}, {' / '.join([*methods, 'random'])}",
                     [joined([((r.get("deletion_auc") or {}).get(task) or {}).get(m) for m in [*methods, "random"]])
                      for r in runs.values()]))
    rows.append((f"randomization check, {' / '.join(methods)}",
                 [joined([(r.get("randomization_verdict") or {}).get(m) for m in methods]) for r in runs.values()]))
    return (["Side by side on the same held-out exams (`evaluate --record --compare NAME=REPORT.json`):", "",
             "| | " + " | ".join(runs) + " |", "|---" * (len(runs) + 1) + "|"]
            + [f"| {name} | " + " | ".join(values) + " |" for name, values in rows] + [""])


def evaluation_section(evaluation: dict | None) -> list[str]:
    """The held-out evaluation (python -m mrnet evaluate --record), with the command that produced it."""
    if not evaluation:
        return []
    lines = ["## Held-out evaluation", "", f"```\n{evaluation.get('command', '')}\n```", "",
             f"{evaluation.get('n')} exams ({evaluation.get('data', '')}). {evaluation.get('data_note', '')}", "",
             metric_table({"held-out": evaluation.get("auc", {})})]
    if evaluation.get("pointing_game"):
        lines += pointing_game_lines(evaluation)
    if any(evaluation.get("deletion_auc", {}).values()):
        lines += deletion_lines(evaluation["deletion_auc"], evaluation.get("insertion_auc"),
                                evaluation.get("within_slice_auc"))
    if evaluation.get("mask_localisation"):
        lines += localisation_lines(evaluation["mask_localisation"])
    if evaluation.get("randomization"):
        lines += randomization_lines(evaluation["randomization"])
    if evaluation.get("compared"):
        lines += comparison_lines(evaluation)
    if evaluation.get("histogram_baseline_auc"):
        base = ", ".join(f"{t} {a:.3f}" for t, a in evaluation["histogram_baseline_auc"].items() if a is not None)
        lines += [f"Histogram baseline (logistic regression on intensity histograms; near 0.5 means the lesions "
                  f"are not given away by global statistics): {base}.", ""]
    return lines


def ood_section(config: WeightsConfig) -> list[str]:
    if not config.ood:
        return ["## Out-of-distribution check", "", "None: these weights carry no statistics of their training data, "
                "so the app cannot say when an exam is unlike it.", ""]
    counts = ", ".join(f"{p} {s['n']}" for p, s in config.ood.items())
    return ["## Out-of-distribution check", "",
            f"config.json carries, per plane, statistics of the training exams' appearance ({counts}; `mrnet.core.ood`: each "
            "channel's mean and std of AlexNet's first block, summarised by their mean and top 16 principal directions). "
            "An exam plane farther than the training exams' own "
            "99th percentile is flagged in the report, the CLI and the app: its probabilities and maps mean little.", ""]


def card_text(config: WeightsConfig) -> str:
    prov = config.provenance
    body = [
        "# MRNet (AlexNet per slice, max over slices) for knee MRI, with CAM explanations", "",
        "> **Research demo. Not for diagnosis.** " + prov.get("intended_use", ""), "",
        "## Training data", "", str(prov.get("trained_on", "unknown")), "",
        "## How it was trained", "", f"```\n{prov.get('training_command', 'unknown')}\n```", "",
        f"Training time: {prov.get('training_minutes', '?')} minutes"
        + (" in the run that wrote these files, which resumed from checkpoints (the earlier runs' time is not "
           "counted)." if prov.get("resumed") else "."), "",
        "## Metrics", "", "Validation split (early stopping and the fusion coefficients were fitted on it, so "
        "these are optimistic; the held-out evaluation below is not):", "",
        metric_table(prov.get("metrics", {})) or "none recorded", "",
        *evaluation_section(prov.get("evaluation")),
        *ood_section(config),
        "## Format", "",
        f"Tasks: {', '.join(config.tasks)}. Planes: {', '.join(config.planes)}. One safetensors file per "
        "plane with one logit per task; input slices are uint8 256x256, normalised as "
        f"(x - {config.normalization.mean}) / {config.normalization.std}. Fusion over planes: logistic "
        "regression with the coefficients in config.json. Load with the `mrnet` library of "
        "this repository (`mrnet.core.hub.resolve`).", "",
        "## Limits", "",
        "Trained and evaluated only on what is named above. Synthetic phantoms are simple shapes: the "
        "metrics say nothing about real patients. Do not use for clinical decisions.", "",
    ]
    return front_matter(config) + "\n" + "\n".join(body)


def summary(report: dict) -> dict:
    """What the card's side-by-side table shows of an evaluation."""
    return {"n": report.get("n"), "weights": report.get("weights"),
            "auc": {t: a.get("fused") for t, a in report.get("auc", {}).items()},
            "pointing_game_by_tolerance": report.get("pointing_game_by_tolerance"),
            "deletion_auc": report.get("deletion_auc"), "insertion_auc": report.get("insertion_auc"),
            "randomization_verdict": (report.get("randomization") or {}).get("verdict")}


def write_card(folder: Path, config: WeightsConfig) -> None:
    ModelCard(card_text(config)).save(Path(folder) / "README.md")


def check_card(text: str) -> list[str]:
    """Problems with a card's YAML front matter (empty list: valid)."""
    if not text.startswith("---\n") or "\n---\n" not in text[4:]:
        return ["the card has no YAML front matter between --- lines"]
    import yaml  # gradio and huggingface_hub both depend on PyYAML
    try:
        meta = yaml.safe_load(text[4:text.index("\n---\n", 4)])
    except yaml.YAMLError as exc:
        return [f"the front matter is not valid YAML ({exc})"]
    if not isinstance(meta, dict):
        return ["the front matter is not a mapping"]
    return [f"the front matter lacks {key}" for key in REQUIRED_YAML if key not in meta]


README_START = "<!-- metrics: generated from weights/config.json by `python -m mrnet readme-metrics`; do not edit -->"
README_END = "<!-- /metrics -->"


def readme_metrics(evaluation: dict) -> str:
    """The README's table of the bundled weights (the card's evaluation): each task's fused and per-plane ROC AUC,
    and the default method's pointing game per plane (15 px, planes that show the lesion)."""
    planes = ["axial", "coronal", "sagittal"]
    lines = ["| | fused | " + " | ".join(planes) + " |", "|---|" + "---|" * (len(planes) + 1)]
    for task, aucs in evaluation.get("auc", {}).items():
        cells = [f"{aucs[k]:.3f}" if isinstance(aucs.get(k), (int, float)) else "" for k in ["fused", *planes]]
        lines.append(f"| {TASK_TITLES.get(task, task)} | " + " | ".join(cells) + " |")
    per_plane = (evaluation.get("pointing_game_per_plane") or {}).get(DEFAULT_METHOD, {})
    if per_plane:
        lines.append("| pointing game | | " + " | ".join(f"{per_plane[p]:.3f}" if p in per_plane else "" for p in planes)
                     + " |")
    return "\n".join(lines)


def with_readme_metrics(readme: str, evaluation: dict) -> str:
    """The README with its metrics block (between README_START and README_END) made from `evaluation`."""
    if README_START not in readme or README_END not in readme:
        raise MRNetError(f"The README has no metrics block ({README_START} ... {README_END}).")
    head, rest = readme.split(README_START, 1)
    _, tail = rest.split(README_END, 1)
    return f"{head}{README_START}\n{readme_metrics(evaluation)}\n{README_END}{tail}"
