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
