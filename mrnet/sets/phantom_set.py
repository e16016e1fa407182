"""The case browser's default set: 60 phantom exams from seeds never used in training (the bundled weights
were trained on `phantom --seed 0`; this set is what `phantom --seed 3 --n-valid 60` writes, one seed per case).

Labels come from the generator's first draw, so the set opens instantly; an exam (and its lesion masks) is
generated when it is first opened and cached as one .npz under the sample cache. The predictions ship with
the bundled weights (weights/scores-phantom.csv, made by `python -m mrnet score phantom --out ...`).
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from mrnet.core.config import PLANES
from mrnet.core.exam import Exam
from mrnet.core.files import atomic_write
from mrnet.core.hub import BUNDLED
from mrnet.phantom import GENERATOR_VERSION, choose_labels, generate_exam
from mrnet.sets.cases import CaseSet
from mrnet.sets.samples import cache_dir

SEED, COUNT = 3, 60
SCORES = BUNDLED / "scores-phantom.csv"


def case_seed(case: str) -> int:
    return SEED * 100000 + 50000 + int(case)   # write_dataset's seed for exam `case` of the valid split


def cached(case: str) -> Path:
    """The case's volumes and masks as one .npz, generated on first use (atomic rename: concurrent makers
    of the same case never expose half a file)."""
    path = cache_dir() / f"phantom-case-{case_seed(case)}-v{GENERATOR_VERSION}.npz"
    if not path.is_file():
        ph = generate_exam(case_seed(case))
        atomic_write(path, lambda fh: np.savez(fh, **ph.volumes, **{f"mask_{p}": m for p, m in ph.masks.items()}))
    return path


def load_exam(case: str) -> Exam:
    with np.load(cached(case), allow_pickle=False) as npz:
        return Exam(volumes={p: npz[p] for p in PLANES}, sources={p: f"phantom case {case} ({p})" for p in PLANES})


def load_masks(case: str) -> dict[str, np.ndarray]:
    with np.load(cached(case), allow_pickle=False) as npz:
        return {p: npz[f"mask_{p}"] for p in PLANES}


def phantom_cases(count: int = COUNT) -> CaseSet:
    ids = [f"{i:04d}" for i in range(count)]
    labels = {case: choose_labels(np.random.default_rng(case_seed(case)))[0] for case in ids}
    return CaseSet(name="phantom", title="Phantom validation set (60 synthetic knees)", split="valid", ids=ids,
                   labels=labels, load_exam=load_exam, load_masks=load_masks, has_masks=True,
                   fingerprint=lambda case: f"phantom-v{GENERATOR_VERSION}-seed{case_seed(case)}")
