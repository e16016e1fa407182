"""What a page load reads of the flags (the most recent page, the summary, the lesion marks' summary and the
reviewers' agreement), with none and with 300,000 flags by two reviewers (one in ten with a lesion mark), each page
load right after a new flag (so nothing is cached).

    .venv/bin/python bench/flags_bench.py [--flags 300000] [--repeats 7]

Prints JSON: the median time of one page load's reads and the Python heap it took at its peak (tracemalloc), for
an empty database and a full one, and how many views both reviewers judged. Target (#37): the full one within
0.1 s and 20 MB of the empty one."""
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

from mrnet.sets.flags import PAGE, Flag, FlagStore  # noqa: E402


def fill(db: Path, n: int) -> None:
    FlagStore(db).connect().close()  # the schema
    with sqlite3.connect(db) as conn:
        # 1,200 cases, each flagged again and again: the reviewers share a few thousand views
        conn.executemany("INSERT INTO flags (dataset, split, case_id, task, plane, slice, method, verdict, comment, "
                         "weights, created, pointing, reviewer, mark_x, mark_y, mark_w, mark_h, mark_hit, mark_on_lesion) "
                         "VALUES ('phantom', 'valid', ?, ?, 'coronal', 3, ?, ?, 'a comment', 'abc', "
                         "'2026-12-07T00:00:00Z', ?, ?, ?, ?, ?, ?, ?, ?)",
                         ((f"{i % 1200:04d}", ("abnormal", "acl", "meniscus")[i % 3], ("shapley", "exact")[i % 2],
                           ("on", "off", "unsure")[i % 5 % 3], i % 2, ("ada", "grace")[i // 7 % 2],
                           *((100, 120, 0, 0, i % 3 % 2, i % 4 % 2) if i % 10 == 0 else (None,) * 6))
                          for i in range(n)))


def new_flag(store: FlagStore, i: int) -> None:
    store.add(Flag("phantom", "valid", f"{i:04d}", "acl", "coronal", 3, "shapley", "on", "", "abc", reviewer="ada"))


def reads(store: FlagStore) -> list[dict]:
    store.list(limit=PAGE)
    store.summary()
    store.marks()
    return store.agreement()


def page_load(store: FlagStore, repeats: int) -> dict:
    times = []
    for i in range(repeats):
        new_flag(store, i)
        start = time.perf_counter()
        reads(store)
        times.append(time.perf_counter() - start)
    new_flag(store, repeats)
    tracemalloc.start()
    agreement = reads(store)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    shared = max((p["n"] for row in agreement for p in row["pairs"]), default=0)
    return {"median_s": round(statistics.median(times), 4), "peak_mb": round(peak / 2**20, 2),
            "most_shared_views": shared}


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
