"""`python -m mrnet score DATA --out FILE`: every case of a labelled set through the model, one process.

Each case's predictions are appended to FILE.cache.jsonl as soon as they exist, keyed by (weights digest,
case content): a rerun, or a run after a kill, scores only the cases that are new or changed (or all of
them for other weights) and reuses the rest. Labels are read afresh each run (they live in the label CSVs,
not in the cache). The next exam is read while the current one runs.
"""
from __future__ import annotations

import json
import os
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
from tqdm import tqdm

from mrnet.core.analysis import analyze
from mrnet.core.compute import Compute
from mrnet.core.config import TASK_TITLES
from mrnet.core.errors import MRNetError
from mrnet.core.weights import Weights
from mrnet.sets.cases import CaseSet
from mrnet.sets.metrics import auc
from mrnet.sets.scores import predictions, rows_for, weights_digest, write_scores


def cache_path(out: Path) -> Path:
    return out.with_name(out.name + ".cache.jsonl")


def read_cache(path: Path) -> dict[tuple[str, str], dict]:
    """(weights, content) -> predictions; a line torn by a kill is skipped."""
    found = {}
    if path.is_file():
        for line in path.read_text(encoding="utf-8").splitlines():
            try:
                entry = json.loads(line)
                found[(entry["weights"], entry["content"])] = entry["predictions"]
            except (ValueError, KeyError, TypeError):
                continue
    return found


def score(cases: CaseSet, weights: Weights, compute: Compute, out: Path, progress: bool = True) -> dict:
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    key, cache_file = weights_digest(weights), cache_path(out)
    cache = read_cache(cache_file)
    rows, problems, scored, reused = [], [], 0, 0
    started = time.perf_counter()

    def read(case: str):
        """(fingerprint, exam or None when cached, or the error sentence)"""
        try:
            content = cases.fingerprint(case)
            return content, (None if (key, content) in cache else cases.exam(case))
        except MRNetError as exc:
            return None, str(exc)

    with ThreadPoolExecutor(max_workers=1) as reader, open(cache_file, "a", encoding="utf-8") as log:
        ahead = reader.submit(read, cases.ids[0]) if cases.ids else None
        for i, case in enumerate(tqdm(cases.ids, desc="scoring", unit="exam", disable=not progress)):
            content, exam = ahead.result()
            ahead = reader.submit(read, cases.ids[i + 1]) if i + 1 < len(cases.ids) else None
            if content is None:
                problems.append(f"case {case}: {exam}")
                continue
            if exam is None:
                predicted, reused = cache[(key, content)], reused + 1
            else:
                try:
                    predicted = predictions(analyze(exam, weights, compute))
                except MRNetError as exc:
                    problems.append(f"case {case}: {exc}")
                    continue
                log.write(json.dumps({"weights": key, "content": content, "predictions": predicted}) + "\n")
                log.flush()
                os.fsync(log.fileno())  # a kill loses at most the case being scored
                scored += 1
            rows += rows_for(case, predicted, cases.labels.get(case, {}), key, content)
    write_scores(out, rows)
    seconds = time.perf_counter() - started
    return {"cases": len(cases.ids), "scored": scored, "reused": reused, "failed": len(problems),
            "seconds": round(seconds, 2), "exams_per_s": round(scored / seconds, 3) if scored else None,
            "auc": task_aucs(rows), "problems": cases.problems + problems, "weights": key, "out": str(out)}


def task_aucs(rows: list[dict]) -> dict:
    result = {}
    for task in dict.fromkeys(r["task"] for r in rows):
        labelled = [r for r in rows if r["task"] == task and r["label"] != ""]
        value = auc([r["label"] for r in labelled], [r["probability"] for r in labelled]) if labelled else None
        result[task] = {"title": TASK_TITLES.get(task, task), "auc": None if value is None else round(value, 4),
                        "n": len(labelled), "positives": int(np.sum([r["label"] for r in labelled])) if labelled else 0}
    return result
