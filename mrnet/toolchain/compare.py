"""`python -m mrnet compare A.csv B.csv`: two score tables of the same labelled set (`python -m mrnet score`
with two weights), per task: both AUCs and their difference with DeLong's 95 % interval and p-value,
McNemar's exact p at the threshold, how many cases the two classify differently, and each one's
calibration (ECE over 10 quantile bins, Brier score). The statistics are mrnet.sets.statistics (numpy and the
standard library, so the Cases view computes the same numbers)."""
from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from mrnet.core.errors import MRNetError
from mrnet.core.text import visible_controls
from mrnet.sets.scores import ScoreColumns, TaskColumns, read_score_columns
from mrnet.sets.statistics import brier, delong, expected_calibration_error, mcnemar_exact


def labelled(table: ScoreColumns) -> dict[str, TaskColumns]:
    """task -> its rows that have a label."""
    kept = {}
    for task, t in table.tasks.items():
        has = t.label >= 0
        if has.any():
            kept[task] = TaskColumns(t.case[has], t.label[has], t.probability[has], t.content[has])
    return kept


def case_order(ids: dict[str, int]) -> np.ndarray:
    """Each case number's rank among the case ids as text: rows pair, and the statistics see them, in the order
    of their case ids whatever the tables' order."""
    ranks = np.empty(len(ids), np.int64)
    ranks[np.array(sorted(range(len(ids)), key=list(ids).__getitem__), np.int64)] = np.arange(len(ids))
    return ranks


def paired(a: ScoreColumns, b: ScoreColumns, name_a: str, name_b: str,
           ids: dict[str, int]) -> dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """task -> (labels, A's probabilities, B's probabilities) over the same cases, or one sentence saying why they
    are not the same set."""
    table_a, table_b = labelled(a), labelled(b)
    if not table_a or not table_b:
        raise MRNetError(f"{name_a if not table_a else name_b} has no labelled case to compare.")
    if set(table_a) != set(table_b):
        raise MRNetError(f"{name_a} and {name_b} score different tasks ({', '.join(sorted(table_a))} against "
                         f"{', '.join(sorted(table_b))}); score the same set with both weights.")
    order = case_order(ids)
    pairs = {}
    for task, ta in table_a.items():
        tb = table_b[task]
        in_a, in_b = np.argsort(order[ta.case], kind="stable"), np.argsort(order[tb.case], kind="stable")
        cases = ta.case[in_a]
        if len(ta.case) != len(tb.case) or (cases != tb.case[in_b]).any():
            differ = len(np.setxor1d(ta.case, tb.case))
            raise MRNetError(f"{name_a} and {name_b} list different cases for {task} ({differ} in one only); "
                             "score the same set with both weights.")
        differs = (ta.content[in_a] != tb.content[in_b]) | (ta.label[in_a] != tb.label[in_b])
        if differs.any():
            index = int(cases[np.argmax(differs)])
            case = next(c for c, i in ids.items() if i == index)
            raise MRNetError(f"Case {case} differs between {name_a} and {name_b} (its content or label): "
                             "these tables are of different sets.")
        pairs[task] = (ta.label[in_a].astype(int), ta.probability[in_a], tb.probability[in_b])
    return pairs


def compare_tables(path_a: Path, path_b: Path, threshold: float = 0.5) -> dict:
    """Per task, the comparison as a JSON-ready dict (see the module's docstring). The tables are read as arrays
    (read_score_columns): 10^6 cases each within tens of MB."""
    if not 0.0 < threshold < 1.0:
        raise MRNetError(f"--threshold {threshold} is not a probability strictly between 0 and 1.")
    ids: dict[str, int] = {}
    a, b = read_score_columns(Path(path_a), ids), read_score_columns(Path(path_b), ids)
    report = {"a": {"file": Path(path_a).name, "weights": sorted(a.weights)},
              "b": {"file": Path(path_b).name, "weights": sorted(b.weights)}, "threshold": threshold, "tasks": {}}
    for task, (y, pa, pb) in paired(a, b, Path(path_a).name, Path(path_b).name, ids).items():
        entry = {"n": len(y), "positives": int(y.sum())}
        if 0 < y.sum() < len(y):
            test = delong(y, pa, pb)
            entry |= {"auc_a": test.auc_a, "auc_b": test.auc_b, "auc_difference": test.difference,
                      "delong_ci": [test.ci_low, test.ci_high], "delong_p": test.p_value}
        right_a, right_b = (pa >= threshold) == (y == 1), (pb >= threshold) == (y == 1)
        only_a, only_b, p_value = mcnemar_exact(right_a, right_b)
        entry |= {"only_a_right": only_a, "only_b_right": only_b, "mcnemar_p": p_value,
                  "disagreements": int(((pa >= threshold) != (pb >= threshold)).sum()),
                  "ece_a": expected_calibration_error(y, pa), "ece_b": expected_calibration_error(y, pb),
                  "brier_a": brier(y, pa), "brier_b": brier(y, pb)}
        report["tasks"][task] = entry
    return report


def strict(value):
    """The report as strict JSON can hold it: a number that is not finite becomes null (json.dumps would write a
    bare NaN, which JSON parsers refuse)."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: strict(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [strict(v) for v in value]
    return value


def printable(text) -> str:
    """A name from a table or a file, for the terminal: control characters as escapes, at most 60 characters."""
    text = visible_controls(str(text), newline=True)
    return text if len(text) <= 60 else text[:59] + "…"


def format_report(report: dict) -> str:
    def num(value, digits=3):
        return "-" if value is None or not math.isfinite(value) else f"{value:.{digits}f}"
    lines = [f"A: {printable(report['a']['file'])} (weights {printable(', '.join(report['a']['weights']))})",
             f"B: {printable(report['b']['file'])} (weights {printable(', '.join(report['b']['weights']))})",
             f"threshold {report['threshold']}", "",
             f"{'task':10} {'n':>4} {'AUC A':>6} {'AUC B':>6} {'A-B':>7} {'DeLong 95% CI':>17} {'p':>7} "
             f"{'McNemar p':>9} {'differ':>6} {'ECE A':>6} {'ECE B':>6} {'Brier A':>7} {'Brier B':>7}"]
    for task, e in report["tasks"].items():
        ci = e.get("delong_ci")
        lines.append(f"{printable(task):10} {e['n']:4d} {num(e.get('auc_a')):>6} {num(e.get('auc_b')):>6} "
                     f"{num(e.get('auc_difference')):>7} "
                     f"{('[' + num(ci[0]) + ', ' + num(ci[1]) + ']') if ci else '-':>17} "
                     f"{num(e.get('delong_p'), 4):>7} {num(e['mcnemar_p'], 4):>9} {e['disagreements']:6d} "
                     f"{num(e['ece_a']):>6} {num(e['ece_b']):>6} {num(e['brier_a']):>7} {num(e['brier_b']):>7}")
    return "\n".join(lines)
