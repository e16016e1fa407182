import os
from pathlib import Path

# Under pytest-xdist, three workers share the cores: one thread each (and in the apps and CLIs they start), since
# oversubscribed OpenMP threads spin. Three tiny trainings at once took 84 s so against 107 s with the default.
if "PYTEST_XDIST_WORKER" in os.environ:
    os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np
import pytest
import torch

ROOT = Path(__file__).resolve().parent.parent
os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")

from mrnet.core.config import PLANES, TASKS, ModelEntry, WeightsConfig  # noqa: E402
from mrnet.core.model import MRNet  # noqa: E402
from mrnet.core.weights import save_weights  # noqa: E402


def pytest_collection_modifyitems(items):
    """The longest tests first (marked `long`): with pytest-xdist handing out one test at a time
    (`--maxschedchunk 1`, see the Makefile), the other worker runs the short ones meanwhile, instead of one worker
    finishing a long test alone at the end."""
    items.sort(key=lambda item: item.get_closest_marker("long") is None)  # stable: the rest keep their order


def make_weights(folder: Path, seed: int = 0, fusion: dict | None = None, planes=PLANES) -> Path:
    """Randomly initialised (He init, so CAMs are not flat) weights in our folder format."""
    torch.manual_seed(seed)
    config = WeightsConfig(tasks=list(TASKS), planes=list(planes), models=[], fusion=fusion or {},
                           provenance={"trained_on": "nothing: random initialisation for tests"})
    models = [(ModelEntry(f"{p}.safetensors", p, list(TASKS)), MRNet(len(TASKS)).init_from_scratch()) for p in planes]
    save_weights(folder, config, models)
    return folder


@pytest.fixture
def set_env(monkeypatch):
    """Set MRNET_* variables for one test: settings are read once per process, so the cache is cleared."""
    from mrnet.core.settings import settings

    def set_(name: str, value: str) -> None:
        monkeypatch.setenv(name, value)
        settings.cache_clear()
    yield set_
    monkeypatch.undo()
    settings.cache_clear()


@pytest.fixture(scope="session")
def random_weights(tmp_path_factory) -> Path:
    return make_weights(tmp_path_factory.mktemp("weights"))


@pytest.fixture(scope="session")
def small_exam_files(tmp_path_factory) -> Path:
    """A 3-plane phantom exam with 12 slices per plane, as per-plane .npy files."""
    from mrnet.phantom import generate_exam
    folder = tmp_path_factory.mktemp("exam")
    ph = generate_exam(seed=424242, slices=12)
    for plane, vol in ph.volumes.items():
        np.save(folder / f"{plane}.npy", vol)
    return folder


@pytest.fixture(scope="session")
def browser():
    """One Debian chromium per test process (pytest-xdist worker), shared by the browser tests."""
    from playwright.sync_api import sync_playwright

    from browser import launch
    with sync_playwright() as pw:
        chromium = launch(pw)
        yield chromium
        chromium.close()
