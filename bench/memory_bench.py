"""Memory kept per visitor: N sessions each analyse the largest exam the app accepts (3 planes x MRNET_MAX_SLICES
slices) and prepare its zip, all at once, against the real app.

    .venv/bin/python bench/memory_bench.py [--sessions 16] [--slices 128] [--settle 30]

Prints JSON: the server's RSS when idle, its peak (VmHWM) and its RSS `--settle` seconds after the last session
finished, in MB, with the CPU's name. Target (#37): peak <= 1.5 GB and settled <= idle + 300 MB."""
import argparse
import io
import json
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests" / "support"))  # the tests' helpers (server)

from helpers import event_messages  # noqa: E402
from server import running_app  # noqa: E402


def status_mb(pid: int, field: str) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return round(int(line.split()[1]) / 1024)
    return float("nan")


def cpu_name() -> str:
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return "unknown"


def largest_exam(slices: int) -> bytes:
    rng = np.random.default_rng(0)
    buf = io.BytesIO()
    np.savez(buf, **{p: rng.integers(0, 255, (slices, 256, 256), dtype=np.uint8) for p in ("axial", "coronal", "sagittal")})
    return buf.getvalue()


def session(url: str, config: dict, exam: bytes, name: str) -> None:
    by_api = {d.get("api_name"): i for i, d in enumerate(config["dependencies"])}
    uploaded = httpx.post(url + "gradio_api/upload", files={"files": ("exam.npz", exam)}, timeout=120).json()[0]
    files = [{"path": uploaded, "orig_name": "exam.npz", "meta": {"_type": "gradio.FileData"}}]
    for fn, inputs in ((by_api["run_analysis"], [files, None]), (by_api["on_download"], [None, None])):
        messages, _ = event_messages(url, config, fn, inputs, name)
        assert messages[-1].get("success"), messages[-1]


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--sessions", type=int, default=16)
    p.add_argument("--slices", type=int, default=128)
    p.add_argument("--settle", type=float, default=30)
    a = p.parse_args()
    exam = largest_exam(a.slices)
    with running_app(process=True) as (url, proc, log):
        config = httpx.get(url + "config").json()
        time.sleep(2)
        idle = status_mb(proc.pid, "VmRSS")
        start = time.perf_counter()
        with ThreadPoolExecutor(a.sessions) as pool:
            list(pool.map(lambda i: session(url, config, exam, f"memory{i:04d}"), range(a.sessions)))
        took = time.perf_counter() - start
        time.sleep(a.settle)
        result = {"cpu": cpu_name(), "sessions": a.sessions, "slices": a.slices, "seconds": round(took, 1),
                  "idle_mb": idle, "peak_mb": status_mb(proc.pid, "VmHWM"), "settled_mb": status_mb(proc.pid, "VmRSS")}
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
