"""Small helpers several test modules share: the CLI as a subprocess, arrays as .npy bytes."""
import io
import subprocess
import sys
from pathlib import Path

import numpy as np

from server import ROOT


def mrnet_cli(*args, env=None, timeout: float = 300) -> subprocess.CompletedProcess:
    """`python -m mrnet ARGS` from the repo root, output captured as text."""
    return subprocess.run([sys.executable, "-m", "mrnet", *map(str, args)], cwd=ROOT, capture_output=True, text=True,
                          timeout=timeout, env=env)


def npy_bytes(array, allow_pickle: bool = False) -> bytes:
    buf = io.BytesIO()
    np.save(buf, array, allow_pickle=allow_pickle)
    return buf.getvalue()


def write_set(root: Path, n: int = 4, slices: int = 6, seed: int = 0) -> Path:
    """A small set in MRNet's layout (random pixels: reading does not need anatomy)."""
    rng = np.random.default_rng(seed)
    for plane in ("axial", "coronal", "sagittal"):
        (root / "valid" / plane).mkdir(parents=True, exist_ok=True)
        for i in range(n):
            np.save(root / "valid" / plane / f"{i:04d}.npy", rng.integers(0, 255, (slices, 64, 64), dtype=np.uint8))
    for t, labels in (("abnormal", [1, 0, 1, 1]), ("acl", [1, 0, 0, 1]), ("meniscus", [0, 0, 1, 1])):
        (root / f"valid-{t}.csv").write_text("".join(f"{i},{labels[i % 4]}\n" for i in range(n)))
    return root


def run_async(coroutine):
    """asyncio.run in a thread of its own: a test process's session-wide Playwright keeps an event loop running
    in the main thread, where asyncio.run refuses to start another."""
    import asyncio
    from concurrent.futures import ThreadPoolExecutor
    with ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, coroutine).result()


def event_messages(app_url: str, config: dict, fn: int, inputs: list, session: str, query: str = "",
                   **trigger) -> tuple[list, int]:
    """One event through Gradio's queue as the page sends it (`trigger`: its trigger_id and event_data; `query`:
    the page's link, as "?case=..."): every message of its stream up to the closing one, and where the viewer is
    among its outputs (-1 when it is not)."""
    import json

    import httpx
    joined = httpx.post(app_url + "gradio_api/queue/join" + query, json={"data": inputs, "fn_index": fn, "session_hash": session,
                                                                         "trigger_id": None, **trigger}, timeout=120)
    assert joined.status_code == 200, joined.text
    messages = []
    with httpx.stream("GET", app_url + "gradio_api/queue/data", params={"session_hash": session}, timeout=120) as s:
        for line in s.iter_lines():
            if line.startswith("data:"):
                messages.append(json.loads(line[5:]))
                if messages[-1].get("msg") == "process_completed":
                    break
    by_id = {c["id"]: c for c in config["components"]}
    outputs = [by_id[i].get("props", {}).get("elem_id") for i in config["dependencies"][fn]["outputs"]]
    return messages, outputs.index("viewer") if "viewer" in outputs else -1


class CallsAnalyzer:
    """A case browser's analyzer (mrnet.app.browse.CaseAnalyzer) made of two functions: exam -> the first weights'
    analysis, and (compare mode) the second weights'."""

    def __init__(self, first, second=None):
        self.first_fn, self.second_fn = first, second

    @property
    def has_second(self) -> bool:
        return self.second_fn is not None

    def first(self, exam):
        return self.first_fn(exam)

    def second(self, exam):
        return self.second_fn(exam)
