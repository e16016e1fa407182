"""Benchmark: training throughput (exams/s per plane and epoch) on a phantom set, with the exams read and augmented
in the main process and in DataLoader workers. Prints JSON; nothing asserted. Throughput is per exam, so it
carries over to an MRNet-sized set (1,130 train exams: `--n-train 1130 --n-valid 120`), which takes
about 1,130 / (exams/s) seconds per plane and epoch.

    .venv/bin/python bench/train_bench.py [--n-train 120] [--workers 0 1] [--device auto]
"""
import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--n-train", type=int, default=120)
    parser.add_argument("--workers", type=int, nargs="+", default=[0, 1])
    parser.add_argument("--device", default="auto")
    a = parser.parse_args()
    mrnet = [sys.executable, "-m", "mrnet"]
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp) / "set"
        subprocess.run(mrnet + ["phantom", "--out", str(data), "--n-train", str(a.n_train), "--n-valid", "20",
                                "--seed", "5", "--workers", "2"], cwd=ROOT, check=True, capture_output=True)
        result = {}
        for workers in a.workers:
            out = Path(tmp) / f"w{workers}"
            subprocess.run(mrnet + ["train", "--data", str(data), "--out", str(out), "--epochs", "1", "--slice-steps", "0",
                                    "--mask-weight", "0", "--workers", str(workers), "--device", a.device, "--no-progress"],
                           cwd=ROOT, check=True, capture_output=True)
            history = json.loads((out / "training_history.json").read_text())
            result[f"workers={workers}"] = {plane: {"exams_per_s": h["history"][0]["exams_per_s"],
                                                    "epoch_s": h["history"][0]["seconds"]} for plane, h in history.items()}
    print(json.dumps({"train_exams": a.n_train, **result}, indent=2))


if __name__ == "__main__":
    main()
