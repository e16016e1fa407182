"""The case browser's server side: labelled sets with their score tables, the table that the browser draws
(mrnet/app/web/cases.js: filters, sorting, the confusion matrix and the ROC curve all run there), cases opened
on demand with the most recent ones kept, and the links that name a view.

Only cases of a configured set can be named by a link: a link carries a set's name (never a path or a repo
the visitor picks) and a case id; uploads have no name and are never reachable from a link.
"""
from __future__ import annotations

import asyncio
import threading
import time
from collections import OrderedDict
from concurrent.futures import CancelledError, Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

import numpy as np

from mrnet.app.payload import explanation, viewer_payload
from mrnet.app.pixels import PixelStore
from mrnet.core.analysis import Analysis
from mrnet.core.config import TASK_TITLES
from mrnet.core.errors import MRNetError
from mrnet.core.exam import Exam
from mrnet.core.text import quoted
from mrnet.core.weights import Weights
from mrnet.sets.cases import CaseSet
from mrnet.sets.metrics import auc, roc_curve
from mrnet.sets.scores import read_scores, weights_digest
from mrnet.sets.statistics import brier, expected_calibration_error, reliability_bins, threshold_presets


@dataclass
class Browsable:
    cases: CaseSet
    scores: dict[str, dict[str, dict]] | None   # case -> task -> score row; None: not scored for these weights
    notice: str = ""                            # why there are no probabilities, when there are none
    compare: "Browsable | None" = None          # the same set with the second weights' table (compare mode)
    name: str = "A"                             # the weights' name in compare mode


def weights_name(weights: Weights) -> str:
    """A short name for weights in compare mode: the Hub repo (and revision), or the folder's name."""
    source = weights.source
    if source.get("repo"):
        return f"{source['repo']}@{source.get('revision') or 'main'}"
    folder = Path(str(source.get("folder", "weights"))).name
    return "bundled weights" if source.get("kind") == "bundled" and folder == "weights" else folder


def with_scores(cases: CaseSet, scores_file: str | Path | None, weights: Weights, name: str = "A",
                second: str = "") -> Browsable:
    """A set and its score table, kept only when these weights made it (the table records their digest).
    `second`: for compare mode's second weights, where their table goes (said when it is missing)."""
    how = f"`python -m mrnet score {cases.name}{' --weights ' + weights_name(weights) if second else ''} --out FILE`"
    if not scores_file or not Path(scores_file).is_file():
        return Browsable(cases, None, f"No predictions of {name} for this set yet: run {how} and "
                                      f"{second or 'set MRNET_SCORES=FILE'}. Cases open and are analysed one by one "
                                      "meanwhile.", name=name)
    try:
        table = read_scores(Path(scores_file))
    except MRNetError as exc:
        return Browsable(cases, None, str(exc), name=name)
    if table.weights != {weights_digest(weights)}:
        return Browsable(cases, None, f"The score table of {name} was made by other weights than {name}: rerun "
                                      f"{how} to see these weights' predictions.", name=name)
    return Browsable(cases, table.by_case(), name=name)


def table_payload(item: Browsable) -> dict:
    """What the Cases view draws: one row per case with its labels and, per task, the fused probability
    (absent where unscored), plus the set's title, notice and problems."""
    cases, scores = item.cases, item.scores or {}
    tasks = [t for t in TASK_TITLES if any(t in cases.labels[c] or t in scores.get(c, {}) for c in cases.ids)]
    rows: list[dict] = []
    for case in cases.ids:
        scored = scores.get(case, {})
        rows.append({"case": case, "labels": cases.labels.get(case, {}),
                     "p": {t: scored[t]["probability"] for t in tasks if t in scored}})
    payload: dict = {"dataset": cases.name, "title": cases.title, "split": cases.split,
                     "tasks": [[t, TASK_TITLES[t]] for t in tasks], "rows": rows, "scored": item.scores is not None,
                     "notice": item.notice, "problems": cases.problems, "calibration": calibration(rows, tasks),
                     "roc": rocs(rows, tasks)}
    other = item.compare
    if other is not None:  # compare mode: B's probabilities beside A's, for the same cases
        scores_b = other.scores or {}
        for row in rows:
            scored_b = scores_b.get(str(row["case"]), {})
            row["pB"] = {t: scored_b[t]["probability"] for t in tasks if t in scored_b}
        rows_b = [{"labels": r["labels"], "p": r["pB"]} for r in rows]
        payload["compare"] = {"a": item.name, "b": other.name, "scored": other.scores is not None,
                              "notice": other.notice, "calibration": calibration(rows_b, tasks),
                              "roc": rocs(rows_b, tasks)}
    return payload


def rocs(rows: list[dict], tasks: list[str]) -> dict:
    """Per task with scored, labelled cases: the ROC curve (mrnet.sets.metrics, one point per distinct score) as
    [false positive rate, true positive rate] points, its AUC (None with one class only) and the class counts. The
    Cases view draws it and places the threshold's point on it; it computes no ROC of its own."""
    out = {}
    for task in tasks:
        scored = [(r["labels"][task], r["p"][task]) for r in rows if task in r["labels"] and task in r["p"]]
        if not scored:
            continue
        labels, probabilities = [y for y, _ in scored], [p for _, p in scored]
        fpr, tpr, _ = roc_curve(labels, probabilities)
        out[task] = {"points": [[round(float(f), 6), round(float(t), 6)] for f, t in zip(fpr, tpr)],
                     "auc": auc(labels, probabilities), "pos": sum(labels), "neg": len(labels) - sum(labels)}
    return out


def calibration(rows: list[dict], tasks: list[str]) -> dict:
    """Per task with positive and negative scored cases: the reliability diagram's 10 quantile bins, ECE,
    Brier score and the threshold presets (0.5, Youden's J, sensitivity >= 0.90), each with its sensitivity
    and specificity (mrnet.sets.statistics)."""
    out = {}
    for task in tasks:
        scored = [(r["labels"][task], r["p"][task]) for r in rows if task in r["labels"] and task in r["p"]]
        labels = [y for y, _ in scored]
        if not scored or min(labels) == max(labels):
            continue
        probabilities = [p for _, p in scored]
        out[task] = {"bins": reliability_bins(labels, probabilities),
                     "ece": expected_calibration_error(labels, probabilities), "brier": brier(labels, probabilities),
                     "presets": [vars(point) for point in threshold_presets(labels, probabilities)]}
    return out


@dataclass
class Opened:
    dataset: str
    case: str
    analysis: Analysis
    payload: dict       # the viewer's data (payload.viewer_payload), with the link and any lesion masks
    truth: dict         # task -> 0/1
    made: float = 0.0   # time.time() when prepared
    masks: dict = field(default_factory=dict)  # plane -> lesion bit fields (a labelled set with masks), read once


class CaseAnalyzer(Protocol):
    """What the case browser needs of the app: an exam -> the first weights' analysis, and (compare mode) the
    second weights' (mrnet.app.context.Analyzer)."""
    @property
    def has_second(self) -> bool: ...

    def first(self, exam: Exam) -> Analysis: ...

    def second(self, exam: Exam) -> Analysis: ...


class CaseBrowser:
    """Opens cases (exam -> analysis -> viewer payload) on a small pool, keeping the `keep` most recent; a
    case asked for while it is still being prepared (a prefetch) is waited for, not computed twice. A kept
    case is prepared again after `max_age_s`, before the store's files of it are removed.
    In compare mode the second weights' analysis of a case (`second`) is prepared and kept the same way, on the
    exam the first one read."""

    def __init__(self, sets: dict[str, Browsable], analyzer: CaseAnalyzer, keep: int = 8,
                 store: PixelStore | None = None, max_age_s: float = 1800):
        self.sets, self.analyzer = sets, analyzer
        self.keep = keep * (2 if analyzer.has_second else 1)  # `keep` cases, each with both weights' analyses
        self.store, self.max_age_s = store, max_age_s
        self.default = next(iter(sets))
        self.lock = threading.Lock()
        self.recent: OrderedDict[tuple[str, str, str], Future] = OrderedDict()
        self.exams: OrderedDict[tuple[str, str], Future] = OrderedDict()  # (set, case) -> its exam, read once
        self.pool = ThreadPoolExecutor(max_workers=2, thread_name_prefix="mrnet-cases")
        # at most one prefetch waits at a time, whoever asks: a newer one replaces it (it is not started)
        self.next_prefetch: threading.Timer | None = None

    def check(self, dataset, case) -> tuple[str, str]:
        """A set and case as a link or the browser names them (any JSON) -> a known (set, case), or one sentence
        that quotes at most 40 characters of what was asked."""
        dataset = dataset or self.default
        if not isinstance(dataset, str) or dataset not in self.sets:
            raise MRNetError(f"There is no labelled set called {quoted(dataset)} here.")
        cases = self.sets[dataset].cases
        if not isinstance(case, str) or case not in cases.ids:
            raise MRNetError(f"The {cases.title} set has no case {quoted(case)}.")
        return dataset, case

    def future(self, key: tuple[str, str, str]) -> Future:
        """(set, case, "a" or "b") -> its preparation, started unless kept."""
        with self.lock:
            found = self.recent.get(key)
            if found is None or (found.done() and (found.cancelled() or found.exception() is not None
                                                   or time.time() - found.result().made > self.max_age_s)):
                found = self.recent[key] = self.pool.submit(self.prepare, *key)
            self.recent.move_to_end(key)
            while len(self.recent) > self.keep:
                _, evicted = self.recent.popitem(last=False)
                evicted.cancel()  # not started yet: it never will be (a running one finishes, unkept)
        return found

    def open(self, dataset: str | None, case: str | None, compare: bool = False) -> Opened:
        """A case's preparation, waited for. `compare`: the second weights' analysis starts beside it, on the same
        exam. Two analyses at once each take about twice as long, so the pair ends when one after the other
        would; B's maps then come with A's, instead of later, after B has shared the CPU with the page drawing
        A's (measured in docs/cases.md)."""
        return finished(self.opening(dataset, case, compare))

    def opening(self, dataset: str | None, case: str | None, compare: bool = False) -> Future:
        """`open`'s preparation, not waited for (a page load awaits it without holding a thread)."""
        dataset, case = self.check(dataset, case)
        first = self.future((dataset, case, "a"))  # first: it takes the pool's free worker when there is one
        if compare and self.analyzer.has_second:
            self.future((dataset, case, "b"))
        return first

    def second_future(self, dataset: str | None, case: str | None) -> Future:
        """The second weights' analysis of a case (an Opened whose payload is `payload.explanation`), started
        unless kept. Compare mode only."""
        if not self.analyzer.has_second:
            raise MRNetError("No second weights are configured here (MRNET_COMPARE).")
        return self.future((*self.check(dataset, case), "b"))

    def second(self, dataset: str | None, case: str | None, wait: bool = True) -> Opened | None:
        """The second weights' analysis of a case; with `wait=False`, only if it is ready now."""
        found = self.second_future(dataset, case)
        return finished(found) if wait or found.done() else None

    def prefetch(self, dataset: str | None, case: str | None, delay_s: float = 0.5, compare: bool = False,
                 after: Future | None = None) -> None:
        """Start preparing a case the reviewer is likely to open next (the next row of the table), `delay_s`
        after now or after `after` is done: the case on screen (and in compare mode its second analysis) is
        still on its way to the browser, and the CPU is its first. In compare mode the second weights'
        analysis follows. One prefetch waits at a time, app-wide: a newer one replaces it, and none starts while
        the pool has work queued, so no visitor's events can queue unbounded work for the others."""
        try:
            dataset, case = self.check(dataset, case)
        except MRNetError:
            return
        def start() -> None:
            with self.lock:
                busy = any(not f.done() for f in self.recent.values())
            if busy:  # the pool is working on cases somebody is waiting for: they come first
                return
            first = self.future((dataset, case, "a"))
            if compare and self.analyzer.has_second:  # B after A, on the exam A read
                first.add_done_callback(lambda _: self.future((dataset, case, "b")))
        def later(_=None) -> None:
            timer = threading.Timer(delay_s, start)
            timer.daemon = True
            with self.lock:
                if self.next_prefetch is not None:
                    self.next_prefetch.cancel()
                self.next_prefetch = timer
            timer.start()
        if after is not None:
            after.add_done_callback(later)
        else:
            later()

    def exam(self, dataset: str, case: str) -> Exam:
        """A case's exam, read (or generated) once for both weights' analyses: the first to ask reads it, one that
        asks meanwhile waits for that read; a kept analysis gives its own."""
        kept = self.kept(dataset, case)
        if kept is not None:
            return kept.analysis.exam
        with self.lock:
            found = self.exams.get((dataset, case))
            mine = found is None
            reading: Future = Future() if found is None else found
            if mine:
                self.exams[(dataset, case)] = reading
                while len(self.exams) > 2:  # the ones being read, or just read for the other weights
                    self.exams.popitem(last=False)
        if mine:
            try:
                reading.set_result(self.sets[dataset].cases.exam(case))
            except BaseException as exc:
                with self.lock:
                    self.exams.pop((dataset, case), None)  # read again when asked again
                reading.set_exception(exc)
        return reading.result()

    def prepare(self, dataset: str, case: str, which: str) -> Opened:
        cases = self.sets[dataset].cases
        truth = dict(cases.labels.get(case, {}))
        if which == "b":
            second = self.analyzer.second(self.exam(dataset, case))
            return Opened(dataset, case, second, explanation(second), truth, time.time())
        analysis = self.analyzer.first(self.exam(dataset, case))
        link = {"dataset": None if dataset == self.default else dataset, "case": case}
        masks = cases.masks(case)
        payload = viewer_payload(analysis, masks=masks, link=link, store=self.store)
        return Opened(dataset, case, analysis, payload, truth, time.time(), masks)

    def masks(self, dataset: str | None, case: str | None) -> dict[str, np.ndarray]:
        """A case's lesion masks: those its kept preparation read, else read again (a phantom set regenerates
        the exam for them, about 0.5 s)."""
        dataset, case = self.check(dataset, case)
        kept = self.kept(dataset, case)
        return kept.masks if kept is not None else self.sets[dataset].cases.masks(case)

    def kept(self, dataset: str, case: str) -> Opened | None:
        """A case's preparation with the first weights, when it is kept and done."""
        with self.lock:
            found = self.recent.get((dataset, case, "a"))
        return (found.result() if found is not None and found.done() and not found.cancelled() and found.exception() is None
                else None)


BUSY = ("The server is opening many cases for other visitors right now, and this one was pushed out of its queue: "
        "open it again in a moment.")


def finished(future: Future) -> Opened:
    """A preparation's result; one that was pushed out of the kept cases before it started is one sentence."""
    try:
        return future.result()
    except CancelledError:
        raise MRNetError(BUSY) from None


async def awaited(future: Future) -> Opened:
    """`finished` for a coroutine: the preparation awaited on the event loop (a page load that waits for it holds
    no thread and no concurrency slot that other visitors' page loads need)."""
    try:
        return await asyncio.wrap_future(future)
    except asyncio.CancelledError:
        raise MRNetError(BUSY) from None
