"""What a page load reads of the flags (the most recent page and the summary), with none and with 300,000 flags.

    .venv/bin/python bench/flags_bench.py [--flags 300000] [--repeats 7]

Prints JSON: the median time of one page load's reads and the Python heap it took at its peak (tracemalloc), for
an empty database and a full one. Target (#37): the full one within 0.1 s and 20 MB of the empty one."""
import argparse
import json
import sqlite3
import statistics
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from mrnet.sets.flags import PAGE, FlagStore  # noqa: E402


def fill(db: Path, n: int) -> None:
    FlagStore(db).connect().close()  # the schema
    with sqlite3.connect(db) as conn:
        conn.executemany("INSERT INTO flags (dataset, split, case_id, task, plane, slice, method, verdict, comment, "
                         "weights, created, pointing) VALUES ('phantom', 'valid', ?, ?, 'coronal', 3, ?, ?, 'a comment', "
                         "'abc', '2026-12-07T00:00:00Z', ?)",
                         ((f"{i % 60:04d}", ("abnormal", "acl", "meniscus")[i % 3], ("shapley", "exact")[i % 2],
                           ("on", "off", "unsure")[i % 3], i % 2) for i in range(n)))


def page_load(store: FlagStore, repeats: int) -> dict:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        store.list(limit=PAGE)
        store.summary()
        times.append(time.perf_counter() - start)
    tracemalloc.start()
    store.list(limit=PAGE)
    store.summary()
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    return {"median_s": round(statistics.median(times), 4), "peak_mb": round(peak / 2**20, 2)}


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--flags", type=int, default=300_000)
    p.add_argument("--repeats", type=int, default=7)
    a = p.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        empty, full = Path(folder) / "empty.sqlite", Path(folder) / "full.sqlite"
        fill(empty, 0)
        fill(full, a.flags)
        result = {"flags": a.flags, "empty": page_load(FlagStore(empty), a.repeats),
                  "full": page_load(FlagStore(full), a.repeats)}
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
