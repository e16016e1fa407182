"""A labelled set's predictions, one row per case and task (`python -m mrnet score` writes them, the app's
Cases view reads them; mrnet.toolchain.metrics computes ROC and AUC from them).

The file is CSV with the columns of FIELDS: `label` is empty for a case without ground truth; `p_PLANE`
is empty for a plane the case lacks; `weights` is the weights' digest (`weights_digest`: every model file's
sha256, the fusion, ...), so a table is never shown against weights that did not make it.
"""
from __future__ import annotations

import csv
import hashlib
import io
import json
from dataclasses import asdict, dataclass
from pathlib import Path

from mrnet.core.analysis import Analysis
from mrnet.core.config import PLANES
from mrnet.core.errors import MRNetError
from mrnet.core.explain import DEFAULT_METHOD
from mrnet.core.files import atomic_write
from mrnet.core.weights import Weights

FIELDS = ["case", "task", "label", "probability", "decisive_plane", "top_slice",
          *[f"p_{p}" for p in PLANES], "weights", "content"]


def weights_digest(weights: Weights) -> str:
    """What the predictions depend on - each model file's sha256 and the tasks, planes, normalisation and
    fusion, and the attribution that picks the top slice - and nothing else: recording an evaluation in the
    card keeps a score table valid."""
    config = asdict(weights.config)
    decisive = {k: config[k] for k in ("tasks", "planes", "models", "normalization", "fusion")}
    decisive["attribution"] = DEFAULT_METHOD
    return hashlib.sha256(json.dumps(decisive, sort_keys=True).encode()).hexdigest()[:16]


def predictions(analysis: Analysis) -> dict:
    """What a score row keeps of an analysis, per task (JSON-ready; the score cache stores it as is)."""
    return {task: {"probability": round(t.probability, 6), "decisive_plane": t.decisive_plane,
                   "top_slice": t.planes[t.decisive_plane].top_slice,
                   "planes": {p: round(r.probability, 6) for p, r in t.planes.items()}}
            for task, t in analysis.tasks.items()}


def rows_for(case: str, predicted: dict, labels: dict, weights: str, content: str) -> list[dict]:
    return [{"case": case, "task": task, "label": labels.get(task, ""), "probability": p["probability"],
             "decisive_plane": p["decisive_plane"], "top_slice": p["top_slice"],
             **{f"p_{plane}": p["planes"].get(plane, "") for plane in PLANES}, "weights": weights, "content": content}
            for task, p in predicted.items()]


def write_scores(path: Path, rows: list[dict]) -> None:
    """Atomically: a reader never sees half a table."""
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=FIELDS, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    atomic_write(Path(path), lambda fh: fh.write(buf.getvalue().encode()))


@dataclass
class Scores:
    rows: list[dict]          # parsed: label int or None, probability float, top_slice int

    @property
    def weights(self) -> set[str]:
        return {r["weights"] for r in self.rows}

    def by_case(self) -> dict[str, dict[str, dict]]:
        table: dict[str, dict[str, dict]] = {}
        for r in self.rows:
            table.setdefault(r["case"], {})[r["task"]] = r
        return table


def read_scores(path: Path) -> Scores:
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise MRNetError(f"The score file {path.name} cannot be read ({exc.strerror}).") from None
    reader = csv.DictReader(io.StringIO(text))
    if not reader.fieldnames or not {"case", "task", "label", "probability", "weights"} <= set(reader.fieldnames):
        raise MRNetError(f"{path.name} is not a score file written by `python -m mrnet score`.")
    rows = []
    try:
        for r in reader:
            rows.append({**r, "label": int(r["label"]) if r["label"] not in ("", None) else None,
                         "probability": float(r["probability"]), "top_slice": int(r.get("top_slice") or 0)})
    except (ValueError, TypeError):
        raise MRNetError(f"{path.name}: line {reader.line_num} has a malformed number.") from None
    return Scores(rows)
