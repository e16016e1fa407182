"""The front door: how long `python app.py` takes to serve its page, and how long the default sample's Analyze
event takes through Gradio's queue (first click, then repeated clicks served from the sample cache).

    .venv/bin/python bench/front_door_bench.py [--starts 5] [--clicks 7]

Prints JSON with the CPU's name: the median start time (process start -> the page answers 200), and the Analyze
event's times (join -> the completed message; the browser's drawing is not in it: bench/network_bench.py has
that). The first click after start may find the default sample already made in the background."""
import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests" / "support"))  # the tests' helpers (server)

from helpers import event_messages  # noqa: E402
from server import start_app, stop  # noqa: E402


def cpu_name() -> str:
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return "unknown"


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--starts", type=int, default=5)
    p.add_argument("--clicks", type=int, default=7)
    a = p.parse_args()
    starts = []
    for _ in range(a.starts):
        began = time.perf_counter()
        url, proc, log = start_app(None, timeout=120, poll_s=0.05)
        starts.append(time.perf_counter() - began)
        stop(proc, log)
    url, proc, log = start_app(None, timeout=120, poll_s=0.05)
    try:
        config = httpx.get(url + "config").json()
        fn = next(i for i, d in enumerate(config["dependencies"]) if d.get("api_name") == "run_analysis")
        sample = next(c for c in config["components"] if c.get("props", {}).get("elem_id") == "sample")
        inputs = [sample["props"]["value"] if i == sample["id"] else None for i in config["dependencies"][fn]["inputs"]]
        clicks = []
        for i in range(a.clicks + 1):
            began = time.perf_counter()
            messages, _ = event_messages(url, config, fn, inputs, f"front{i:04d}")
            assert messages[-1].get("success"), messages[-1]
            clicks.append(time.perf_counter() - began)
    finally:
        stop(proc, log)
    print(json.dumps({"cpu": cpu_name(), "start_to_page_s": {"median": round(statistics.median(starts), 2),
                                                             "all": [round(s, 2) for s in starts]},
                      "analyze_default_sample_s": {"first": round(clicks[0], 3),
                                                   "median_after": round(statistics.median(clicks[1:]), 3)}},
                     indent=2))


if __name__ == "__main__":
    main()
