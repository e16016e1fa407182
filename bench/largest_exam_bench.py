"""Benchmark: peak memory of `python -m mrnet predict` on the largest legal exams (nothing asserted; numbers for
the README). Each case runs in a fresh process; the peak is the process's max RSS (getrusage of the child).

    .venv/bin/python bench/largest_exam_bench.py
"""
import io
import json
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests" / "support"))  # the tests' helpers (server, factories)
from dicom_factory import dicom_bytes  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent


def peak_mb(*files) -> tuple[float, int]:
    """The max RSS of one `predict` run, read by a fresh parent of its own (RUSAGE_CHILDREN keeps the max over
    every child a process has waited for)."""
    probe = ("import resource, subprocess, sys; r = subprocess.run(sys.argv[1:], capture_output=True);"
             " print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss, r.returncode)")
    run = subprocess.run([sys.executable, "-c", probe, sys.executable, "-m", "mrnet", "predict", *map(str, files)],
                         cwd=ROOT, capture_output=True, text=True, check=True)
    kb, rc = run.stdout.split()
    return round(int(kb) / 1024), int(rc)   # ru_maxrss is in kB on Linux


def main():
    rng = np.random.default_rng(0)
    out = {}
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        # the case: a zip of 128 DICOM slices of 1024 x 1024 (with noise in the middle, so that no
        # member compresses beyond the 200x ratio cap that refuses zip bombs)
        buf = io.BytesIO()
        with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
            for k in range(128):
                img = np.zeros((1024, 1024), np.uint16)
                img[256:768, 256:768] = 500 + k + rng.integers(0, 200, (512, 512))
                zf.writestr(f"IM{k:04d}.dcm", dicom_bytes(img, (4.0 * k, 0, 0), instance=k + 1))
        (tmp / "dicom.zip").write_bytes(buf.getvalue())
        out["zip of 128 DICOM slices 1024x1024"] = {"zip_mb": round(len(buf.getvalue()) / 2**20, 1)}
        out["zip of 128 DICOM slices 1024x1024"]["peak_rss_mb"], rc = peak_mb(tmp / "dicom.zip")
        out["zip of 128 DICOM slices 1024x1024"]["exit"] = rc
        # three .npy planes at the per-file limit: 128 x 1024 x 768 float16 (192 MB each)
        for plane in ("axial", "coronal", "sagittal"):
            np.save(tmp / f"{plane}.npy", rng.random((128, 1024, 768), dtype=np.float32).astype(np.float16))
        peak, rc = peak_mb(*(tmp / f"{p}.npy" for p in ("axial", "coronal", "sagittal")))  # rc 0: analysed
        out["3 planes of 128 x 1024 x 768 float16 (.npy, 192 MB each)"] = {"peak_rss_mb": peak, "exit": rc}
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
