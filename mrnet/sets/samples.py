"""Sample patients for the app: phantom exams (regenerated from their seed on first use: the generator
is deterministic, so the repo ships a seed instead of megabytes) and one real sagittal knee MRI.

The real knee: "Real knee MRI sample from the pyMSKT project (mskt on PyPI), MIT license."
(see mrnet/sets/sample_data/PROVENANCE.md). It is unlabelled: shown without ground truth.
"""
from __future__ import annotations

import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from mrnet.core.files import atomic_write
from mrnet.core.settings import settings

HERE = Path(__file__).resolve().parent / "sample_data"
REAL_KNEE_ATTRIBUTION = "Real knee MRI sample from the pyMSKT project (mskt on PyPI), MIT license."


@dataclass(frozen=True)
class Sample:
    key: str
    title: str
    seed: int | None = None                      # phantom seed; None for a shipped file
    shipped: str | None = None                   # file under sample_data/
    truth: dict = field(default_factory=dict)    # task -> 0/1; empty: unlabelled
    lesions: tuple = ()
    note: str = ""


SAMPLES = [
    Sample("phantom-normal", "Phantom — normal knee", seed=900004, truth={"abnormal": 0, "acl": 0, "meniscus": 0}),
    Sample("phantom-acl", "Phantom — ACL tear", seed=900009, truth={"abnormal": 1, "acl": 1, "meniscus": 0},
           lesions=("acl_tear",)),
    Sample("phantom-meniscus", "Phantom — meniscal tear", seed=900001, truth={"abnormal": 1, "acl": 0, "meniscus": 1},
           lesions=("meniscal_tear",)),
    Sample("phantom-acl-meniscus", "Phantom — ACL and meniscal tears", seed=900000,
           truth={"abnormal": 1, "acl": 1, "meniscus": 1}, lesions=("acl_tear", "meniscal_tear")),
    Sample("phantom-oedema", "Phantom — bone-marrow oedema (other abnormality)", seed=900002,
           truth={"abnormal": 1, "acl": 0, "meniscus": 0}, lesions=("bone_marrow_oedema",)),
    Sample("real-knee", "Real knee, sagittal only, unlabelled", shipped="real_knee_sagittal.npz",
           note=REAL_KNEE_ATTRIBUTION),
]
BY_KEY = {s.key: s for s in SAMPLES}
BY_TITLE = {s.title: s for s in SAMPLES}


def cache_dir() -> Path:
    return Path(settings().sample_dir or Path(tempfile.gettempdir()) / "mrnet-samples")


def sample_file(sample: Sample) -> Path:
    """The sample as one .npz file with plane keys (made on first use for phantoms)."""
    if sample.shipped:
        return HERE / sample.shipped
    from mrnet.phantom import GENERATOR_VERSION, generate_exam
    path = cache_dir() / f"{sample.key}-{sample.seed}-v{GENERATOR_VERSION}.npz"
    if not path.is_file():
        volumes = generate_exam(sample.seed).volumes  # the app and its callers may make the same sample at once
        atomic_write(path, lambda fh: np.savez_compressed(fh, **volumes))
    return path
