"""`python -m mrnet compare` on two large score tables: wall time and peak memory of the command, as a process of
its own.

    .venv/bin/python bench/compare_bench.py [--cases 1000000] [--repeats 1]

Writes two tables of CASES cases x 3 tasks (random labels; B's probabilities a noisy copy of A's; B's rows in
another order) in a temporary folder, runs `python -m mrnet compare A B --json` and prints JSON: the tables' size,
the median wall time and the peak resident memory (ru_maxrss of the child). Target (#37): 10^6 cases within 30 s
and 1 GB."""
import argparse
import json
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from mrnet.sets.scores import FIELDS  # noqa: E402


def write_table(path: Path, cases: np.ndarray, labels: np.ndarray, probabilities: np.ndarray, weights: str) -> None:
    with path.open("w") as fh:
        fh.write(",".join(FIELDS) + "\n")
        for t, task in enumerate(("abnormal", "acl", "meniscus")):
            p = np.round(probabilities[:, t], 6)
            fh.writelines(f"{c:07d},{task},{y},{q},sagittal,12,{q},{q},{q},{weights},phantom-v2-seed{c}\n"
                          for c, y, q in zip(cases, labels[:, t], p))


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--cases", type=int, default=1_000_000)
    p.add_argument("--repeats", type=int, default=1)
    a = p.parse_args()
    rng = np.random.default_rng(0)
    labels = (rng.random((a.cases, 3)) < 0.3).astype(int)
    scores_a = np.clip(labels * 0.4 + rng.random((a.cases, 3)) * 0.6, 0, 1)
    scores_b = np.clip(scores_a + rng.normal(0, 0.05, (a.cases, 3)), 0, 1)
    with tempfile.TemporaryDirectory() as folder:
        table_a, table_b = Path(folder) / "a.csv", Path(folder) / "b.csv"
        write_table(table_a, np.arange(a.cases), labels, scores_a, "aaaaaaaaaaaaaaaa")
        order = rng.permutation(a.cases)  # B lists its cases in another order
        write_table(table_b, order, labels[order], scores_b[order], "bbbbbbbbbbbbbbbb")
        size_mb = round((table_a.stat().st_size + table_b.stat().st_size) / 2**20, 1)
        times = []
        for _ in range(a.repeats):
            start = time.perf_counter()
            done = subprocess.run([sys.executable, "-m", "mrnet", "compare", str(table_a), str(table_b), "--json"],
                                  cwd=ROOT, capture_output=True, text=True)
            times.append(time.perf_counter() - start)
            if done.returncode != 0:
                sys.exit(done.stderr)
        report = json.loads(done.stdout)
    peak_mb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024  # KiB on Linux
    print(json.dumps({"cases": a.cases, "tables_mb": size_mb, "median_s": round(statistics.median(times), 2),
                      "peak_rss_mb": round(peak_mb), "n_per_task": {t: e["n"] for t, e in report["tasks"].items()},
                      "acl_auc_difference": report["tasks"]["acl"]["auc_difference"]}, indent=2))


if __name__ == "__main__":
    main()
