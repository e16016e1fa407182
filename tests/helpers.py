"""Small helpers several test modules share: the CLI as a subprocess, arrays as .npy bytes."""
import io
import subprocess
import sys

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
