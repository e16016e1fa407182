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
from array import array
from dataclasses import asdict, dataclass
from itertools import repeat
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from mrnet.core.config import DEFAULT_METHOD, PLANES
from mrnet.core.errors import MRNetError
from mrnet.core.files import atomic_write
from mrnet.core.text import quoted

if TYPE_CHECKING:  # `compare` reads score tables without torch
    from mrnet.core.analysis import Analysis
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


MAX_TABLE_MB = 512      # a score table is about 100 bytes per case and task: 10^6 cases x 3 tasks fit
MAX_FIELD = 1000        # characters in one cell (a case id, a digest): a longer one is not a score table's
MAX_TASKS = 64          # distinct tasks in one table (MRNet has 3)
REQUIRED = ("case", "task", "label", "probability", "weights")


class ScoreRows:
    """A score table's rows as CSV lists, checked as they are read: at most `max_mb` (its size is read before its
    content), UTF-8 with or without a BOM, the columns `python -m mrnet score` writes, no cell over MAX_FIELD
    characters. `parse` checks one row's label and probability. Anything else is one sentence naming the file (and
    the line). Iterating streams the file: nothing but the current row is held."""

    def __init__(self, path: Path, max_mb: int = MAX_TABLE_MB):
        self.path, self.name = Path(path), Path(path).name
        try:
            if not self.path.is_file():
                raise MRNetError(f"The score file {self.name} is not a regular file.")
            if self.path.stat().st_size > max_mb * 2**20:
                raise MRNetError(f"The score file {self.name} is larger than {max_mb} MB: not a table `python -m "
                                 "mrnet score` writes.")
        except OSError as exc:
            raise MRNetError(f"The score file {self.name} cannot be read ({exc.strerror}).") from None

    def __iter__(self):
        """(line, row) for each row, with `self.columns`: column name -> index, set once the header is read."""
        name = self.name
        try:
            with self.path.open(encoding="utf-8-sig", newline="") as fh:
                reader = csv.reader(fh)
                try:
                    header = next(reader, None)
                except csv.Error:
                    raise MRNetError(f"{name}: its first line is not CSV.") from None
                if not header or not set(REQUIRED) <= set(header):
                    raise MRNetError(f"{name} is not a score file written by `python -m mrnet score`.")
                self.columns = {c: header.index(c) for c in header}
                width = len(header)
                try:
                    for row in reader:
                        if not row:
                            continue  # a blank line
                        if max(map(len, row)) > MAX_FIELD:
                            raise MRNetError(f"{name}: line {reader.line_num} has a cell longer than {MAX_FIELD} "
                                             "characters.")
                        if len(row) < width:
                            row += [""] * (width - len(row))
                        yield reader.line_num, row
                except csv.Error:
                    raise MRNetError(f"{name}: line {reader.line_num} is not CSV (a cell too long, or a stray "
                                     "quote).") from None
        except UnicodeDecodeError:
            raise MRNetError(f"The score file {name} is not UTF-8 text.") from None
        except OSError as exc:
            raise MRNetError(f"The score file {name} cannot be read ({exc.strerror}).") from None

    def parse(self, line: int, row: list[str]) -> tuple[int | None, float]:
        """One row's label (0, 1 or None) and probability (finite, in [0, 1])."""
        columns = self.columns
        text = row[columns["probability"]]
        try:
            probability = float(text)
            label_text = row[columns["label"]]
            label = int(label_text) if label_text else None
        except ValueError:
            raise MRNetError(f"{self.name}: line {line} has a malformed number.") from None
        if not 0.0 <= probability <= 1.0:  # False for NaN too
            raise MRNetError(f"{self.name}: line {line} has the probability {text[:20]}, which is not a number "
                             "between 0 and 1.")
        if label not in (None, 0, 1):
            raise MRNetError(f"{self.name}: line {line} has the label {label}, which is not 0, 1 or empty.")
        return label, probability

    def listed_twice(self, case: str, task: str, first: int, again: int) -> MRNetError:
        return MRNetError(f"{self.name}: case {quoted(case)} is listed twice for {quoted(task)} (lines {first} and "
                          f"{again}); a table has one row per case and task.")


def read_scores(path: Path, max_mb: int = MAX_TABLE_MB) -> Scores:
    """A score table as one dict per row, checked by ScoreRows, with each (case, task) once (for the Cases view:
    `read_score_columns` reads a large table for `compare`)."""
    table = ScoreRows(path, max_mb)
    rows: list[dict] = []
    first_line: dict[tuple[str, str], int] = {}
    for line, row in table:
        label, probability = table.parse(line, row)
        r = {c: row[i] for c, i in table.columns.items() if i < len(row)}
        key = (r["case"], r["task"])
        if key in first_line:
            raise table.listed_twice(*key, first_line[key], line)
        first_line[key] = line
        try:
            top_slice = int(r.get("top_slice") or 0)
        except ValueError:
            raise MRNetError(f"{table.name}: line {line} has a malformed number.") from None
        rows.append({**r, "label": label, "probability": probability, "top_slice": top_slice})
    return Scores(rows)


@dataclass
class TaskColumns:
    """One task's rows of a score table, as arrays (what `compare` needs of 10^6 cases, in tens of MB)."""
    case: np.ndarray          # int64: the case's index in the `ids` the tables were read with
    label: np.ndarray         # int8: 0, 1, or -1 for none
    probability: np.ndarray   # float64
    content: np.ndarray       # int64: the content cell's hash (compared between tables, never shown)


@dataclass
class ScoreColumns:
    tasks: dict[str, TaskColumns]
    weights: set[str]


def read_score_columns(path: Path, ids: dict[str, int], max_mb: int = MAX_TABLE_MB) -> ScoreColumns:
    """A score table checked as `read_scores` checks it, kept as arrays per task. `ids` maps case ids to numbers
    and grows with new ones: two tables read with the same `ids` name their cases alike. A table as `score`
    writes it is parsed by pandas' C reader (`fast_columns`, 10^6 cases in seconds); anything unusual is read
    again row by row, which accepts the same tables and says what is wrong in the same sentence."""
    table = ScoreRows(path, max_mb)
    fast = fast_columns(table, ids)
    if fast is not None:
        return fast
    built: dict[str, tuple[array, array, array, array, array]] = {}
    weights: set[str] = set()
    for line, row in table:
        label, probability = table.parse(line, row)
        columns = table.columns
        task = row[columns["task"]]
        columns_of_task = built.get(task)
        if columns_of_task is None:
            if len(built) == MAX_TASKS:
                raise MRNetError(f"{table.name} names more than {MAX_TASKS} tasks: not a score table.")
            columns_of_task = built[task] = (array("q"), array("b"), array("d"), array("q"), array("q"))
        case = row[columns["case"]]
        index = ids.setdefault(case, len(ids))
        cases, labels, probabilities, contents, lines = columns_of_task
        cases.append(index)
        labels.append(-1 if label is None else label)
        probabilities.append(probability)
        contents.append(hash(row[columns["content"]]) if "content" in columns else 0)
        lines.append(line)
        weights.add(row[columns["weights"]])
        if len(weights) > MAX_TASKS:
            raise MRNetError(f"{table.name} names more than {MAX_TASKS} weights: not a score table.")
    read = {task: [np.frombuffer(a, dtype=d) if len(a) else np.zeros(0, d)
                   for a, d in zip(arrays, (np.int64, np.int8, np.float64, np.int64, np.int64))]
            for task, arrays in built.items()}
    repeated = []  # each (case, task) once: the earliest repeated row in the file is named, as read_scores does
    for task, (case_of_row, *_, line_of_row) in read.items():
        first = np.unique(case_of_row, return_index=True)[1]
        if len(first) < len(case_of_row):
            again = np.ones(len(case_of_row), bool)
            again[first] = False
            row = int(np.flatnonzero(again)[np.argmin(line_of_row[again])])
            earlier = int(line_of_row[np.flatnonzero(case_of_row == case_of_row[row])[0]])
            repeated.append((int(line_of_row[row]), earlier, task, int(case_of_row[row])))
    if repeated:
        line, earlier, task, index = min(repeated)
        raise table.listed_twice(next(c for c, i in ids.items() if i == index), task, earlier, line)
    return ScoreColumns({task: TaskColumns(*arrays[:4]) for task, arrays in read.items()}, weights)


FAST_ROWS = 200_000     # rows per chunk of the fast path: ~50 MB of strings at a time
LABEL_CODES = {"": -1, "0": 0, "1": 1}


def fast_columns(table: ScoreRows, ids: dict[str, int]) -> ScoreColumns | None:
    """read_score_columns' fast path: the columns it needs as text from pandas' C parser, a chunk at a time,
    converted column by column (probabilities by Python's own float(), so bit for bit as the row reader). None, so
    that the row reader reads it instead, at anything it would look at twice: a line longer than a cell may be (no
    line `score` writes comes near), a header without our columns, a number or label `score` does not write, a
    repeated (case, task), a row that is not CSV, text that is not UTF-8."""
    import pandas as pd  # a dependency of gradio's, here only for `compare`'s large tables
    try:
        with table.path.open("rb") as fh:
            header = next(csv.reader([fh.readline().decode("utf-8-sig")]), [])
            if max(map(len, fh), default=0) > MAX_FIELD:
                return None
    except (OSError, UnicodeDecodeError, csv.Error):
        return None
    wanted = [c for c in (*REQUIRED, "content") if c in header]
    if not set(REQUIRED) <= set(header) or len(header) != len(set(header)):
        return None
    built: dict[str, list[tuple[np.ndarray, ...]]] = {}
    weights: set[str] = set()
    try:
        for chunk in pd.read_csv(table.path, dtype=str, na_filter=False, encoding="utf-8-sig", chunksize=FAST_ROWS,
                                 engine="c", usecols=wanted):
            cells = {c: chunk[c].to_numpy() for c in wanted}
            n = len(chunk)
            probability = cells["probability"].astype(np.float64)
            label = np.fromiter(map(LABEL_CODES.get, cells["label"], repeat(9)), np.int8, n)
            if not ((probability >= 0.0) & (probability <= 1.0)).all() or (label == 9).any():
                return None
            local, uniques = pd.factorize(cells["case"])  # in C; then each distinct case once in Python
            case = np.fromiter((ids.setdefault(c, len(ids)) for c in uniques), np.int64, len(uniques))[local]
            content = (np.fromiter(map(hash, cells["content"]), np.int64, n) if "content" in cells
                       else np.zeros(n, np.int64))
            weights.update(pd.unique(cells["weights"]))
            code, tasks_here = pd.factorize(cells["task"])
            for k, task in enumerate(tasks_here):
                rows = code == k
                built.setdefault(task, []).append((case[rows], label[rows], probability[rows], content[rows]))
            if len(built) > MAX_TASKS or len(weights) > MAX_TASKS:
                return None
    except (ValueError, UnicodeDecodeError, OSError, pd.errors.ParserError, pd.errors.EmptyDataError):
        return None
    tasks = {}
    for task, parts in built.items():
        case, label, probability, content = (np.concatenate(column) for column in zip(*parts))
        if len(case) and np.bincount(case).max() > 1:
            return None  # a repeated case: the row reader names it, with its lines
        tasks[task] = TaskColumns(case, label, probability, content)
    return ScoreColumns(tasks, weights)

