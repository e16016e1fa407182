"""A labelled set's predictions, one row per case and task (`python -m mrnet score` writes them, the app's
Cases view reads them; mrnet.sets.metrics computes ROC and AUC from them).

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
from mrnet.core.text import quoted
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


MAX_TABLE_MB = 512      # a score table is a few hundred bytes per case: 10^6 cases x 3 tasks fit
MAX_FIELD = 1000        # characters in one cell (a case id, a digest): a longer one is not a score table's


def read_scores(path: Path, max_mb: int = MAX_TABLE_MB) -> Scores:
    """A score table, checked before anything uses it: at most `max_mb` (its size is read before its content),
    UTF-8 with or without a BOM, no cell over MAX_FIELD characters, each probability finite and in [0, 1], each
    label 0, 1 or empty, and each (case, task) once. Anything else is one sentence naming the file (and the line)."""
    path = Path(path)
    name = path.name
    try:
        if not path.is_file():
            raise MRNetError(f"The score file {name} is not a regular file.")
        if path.stat().st_size > max_mb * 2**20:
            raise MRNetError(f"The score file {name} is larger than {max_mb} MB: not a table `python -m mrnet score` "
                             "writes.")
        with path.open("rb") as fh:
            raw = fh.read(max_mb * 2**20 + 1)
    except OSError as exc:
        raise MRNetError(f"The score file {name} cannot be read ({exc.strerror}).") from None
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise MRNetError(f"The score file {name} is not UTF-8 text (byte {exc.start}).") from None
    reader = csv.DictReader(io.StringIO(text))
    try:
        names = reader.fieldnames
    except csv.Error:
        raise MRNetError(f"{name}: its first line is not CSV.") from None
    if not names or not {"case", "task", "label", "probability", "weights"} <= set(names):
        raise MRNetError(f"{name} is not a score file written by `python -m mrnet score`.")
    rows: list[dict] = []
    first_line: dict[tuple[str, str], int] = {}
    try:
        for r in reader:
            line = reader.line_num
            if any(len(v) > MAX_FIELD for v in r.values() if isinstance(v, str)):
                raise MRNetError(f"{name}: line {line} has a cell longer than {MAX_FIELD} characters.")
            probability = float(r["probability"])
            if not 0.0 <= probability <= 1.0:  # False for NaN too
                raise MRNetError(f"{name}: line {line} has the probability {r['probability'][:20]}, which is not a "
                                 "number between 0 and 1.")
            label = int(r["label"]) if r["label"] not in ("", None) else None
            if label not in (None, 0, 1):
                raise MRNetError(f"{name}: line {line} has the label {label}, which is not 0, 1 or empty.")
            key = (r["case"], r["task"])
            if key in first_line:
                raise MRNetError(f"{name}: case {quoted(r['case'])} is listed twice for {quoted(r['task'])} (lines "
                                 f"{first_line[key]} and {line}); a table has one row per case and task.")
            first_line[key] = line
            rows.append({**r, "label": label, "probability": probability, "top_slice": int(r.get("top_slice") or 0)})
    except csv.Error:
        raise MRNetError(f"{name}: line {reader.line_num + 1} is not CSV (a cell too long, or a stray quote).") from None
    except (ValueError, TypeError):
        raise MRNetError(f"{name}: line {reader.line_num} has a malformed number.") from None
    return Scores(rows)

