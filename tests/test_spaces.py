"""ZeroGPU Spaces: with the real `spaces` package, the function that runs the model is wrapped in spaces.GPU when
the Space reports ZeroGPU (SPACES_ZERO_GPU=true), and left as it is everywhere else."""
import json
import os
import subprocess
import sys

import pytest

from server import ROOT

CHECK = """
import json
from mrnet.core.compute import for_zero_gpu
def analysis(): return 42
wrapped = for_zero_gpu(analysis, duration_s=60)
print(json.dumps({"same": wrapped is analysis, "zerogpu": hasattr(wrapped, "zerogpu")}))
"""


def wrapped_where(env_extra: dict) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SPACES_")}
    run = subprocess.run([sys.executable, "-c", CHECK], cwd=ROOT, env={**env, **env_extra}, capture_output=True,
                         text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    return json.loads(run.stdout.strip().splitlines()[-1])


def test_the_decorator_applies_on_zero_gpu_only():
    pytest.importorskip("spaces")  # a dev requirement: always there in CI
    assert wrapped_where({}) == {"same": True, "zerogpu": False}
    # the device API is never called: wrapping happens at start, the GPU is asked for per call
    zero = wrapped_where({"SPACES_ZERO_GPU": "true", "SPACES_ZERO_DEVICE_API_URL": "http://127.0.0.1:9"})
    assert zero == {"same": False, "zerogpu": True}
