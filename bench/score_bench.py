"""Benchmark: `python -m mrnet score` (one process, the next exam read while one runs) against
`python -m mrnet predict` once per exam (what a user would script without it), on the same phantom exams
written to disk in MRNet's layout. Prints exams/s for both and the ratio; nothing asserted.

    .venv/bin/python bench/score_bench.py [--exams 8]
"""
import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def run(*args) -> str:
    done = subprocess.run([sys.executable, "-m", "mrnet", *args], cwd=ROOT, capture_output=True, text=True, check=True)
    return done.stdout


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--exams", type=int, default=8)
    a = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp) / "set"
        run("phantom", "--out", str(data), "--n-train", "0", "--n-valid", str(a.exams), "--seed", "3")
        t = time.perf_counter()
        summary = json.loads(run("score", str(data), "--out", str(Path(tmp) / "scores.csv"), "--no-progress"))
        score_s = time.perf_counter() - t
        t = time.perf_counter()
        for i in range(a.exams):
            run("predict", *[str(data / "valid" / p / f"{i:04d}.npy") for p in ("axial", "coronal", "sagittal")])
        predict_s = time.perf_counter() - t
    print(f"score:   {a.exams} exams in {score_s:.1f} s = {a.exams / score_s:.2f} exams/s (process start included; "
          f"{summary['exams_per_s']} exams/s inside the loop)")
    print(f"predict: {a.exams} exams in {predict_s:.1f} s = {a.exams / predict_s:.2f} exams/s (one process per exam)")
    print(f"ratio:   {predict_s / score_s:.1f}x")


if __name__ == "__main__":
    main()
