"""A labelled set of exams to browse case by case: a folder in MRNet's layout, local or from a Hub dataset repo.

    DIR/{split}/{axial,coronal,sagittal}/NNNN.npy     one file per case and plane
    DIR/{split}-{abnormal,acl,meniscus}.csv            `id,label` rows (no header), label 0 or 1
    DIR/masks/{split}/{plane}/NNNN.npy                 optional: uint8 lesion bit fields aligned with the slices

A damaged set is read as far as it goes: each problem (a missing plane folder or label file, a malformed
line, a label for an absent case, a stray file) becomes one sentence in `problems`, and every good case stays
browsable. Files are read with the upload path's checks (header first, never unpickled).
"""
from __future__ import annotations

import hashlib
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from mrnet.core.config import PLANES, TASK_TITLES, TASKS
from mrnet.core.errors import MRNetError
from mrnet.core.exam import Exam
from mrnet.inputs.arrays import add_npy, read_npy_bytes
from mrnet.inputs.load import read_path
from mrnet.sets.labels import bad_lines_sentence, case_id, few, parse_labels

CASE_FILE = re.compile(r"^(\d{1,8})\.npy$")


@dataclass
class CaseSet:
    name: str                                   # what a link names: "phantom", a folder's name, a repo id
    title: str                                  # what the app shows
    split: str
    ids: list[str]
    labels: dict[str, dict[str, int]]           # case -> task -> 0/1 (a task without labels is absent)
    load_exam: Callable[[str], Exam]
    fingerprint: Callable[[str], str]           # changes when the case's content does (the score cache's key)
    load_masks: Callable[[str], dict[str, np.ndarray]] = lambda case: {}
    problems: list[str] = field(default_factory=list)
    has_masks: bool = False

    def exam(self, case: str) -> Exam:
        if case not in self.ids:
            raise MRNetError(f"The {self.title} set has no case {case!r}.")
        return self.load_exam(case)

    def masks(self, case: str) -> dict[str, np.ndarray]:
        return self.load_masks(case) if self.has_masks and case in self.ids else {}


def checked_mask(mask: np.ndarray) -> np.ndarray:
    """A lesion mask as the pointing game reads it: whole numbers of the task bits (config.TASK_BITS), as uint8.
    A float mask of whole numbers is taken as those; anything else is refused (the mask is then not used)."""
    if mask.dtype == np.uint8:
        return mask
    if mask.dtype.kind in "iuf" and mask.size and np.all(np.isfinite(mask)) and np.all(mask == np.round(mask)) \
            and mask.min() >= 0 and mask.max() <= 255:
        return mask.astype(np.uint8)
    raise MRNetError("A lesion mask holds values other than whole numbers from 0 to 255.")


def read_labels(csv: Path, problems: list[str]) -> dict[str, int]:
    """`id,label` rows; malformed lines are skipped with one sentence for all of them."""
    try:
        text = csv.read_text(encoding="utf-8-sig", errors="replace")  # a BOM (spreadsheets write one) is not a cell
    except OSError as exc:
        problems.append(f"{csv.name} cannot be read ({exc.strerror}): its task has no labels.")
        return {}
    rows, bad = parse_labels(text)
    if bad:
        problems.append(f"{bad_lines_sentence(csv, bad)}, and {'were' if len(bad) > 1 else 'was'} skipped.")
    return dict(rows)


def open_folder(root: Path, split: str = "valid", name: str | None = None) -> CaseSet:
    """A folder in MRNet's layout -> CaseSet (see the module's docstring)."""
    root = Path(root).expanduser()
    if not root.is_dir():
        raise MRNetError(f"{root} is not a folder.")
    problems: list[str] = []
    files: dict[str, dict[str, Path]] = {}       # case -> plane -> file
    planes = [p for p in PLANES if (root / split / p).is_dir()]
    if not planes:
        raise MRNetError(f"{root.name} is not in MRNet's layout: it has no {split}/axial, {split}/coronal or "
                         f"{split}/sagittal folder.")
    for plane in PLANES:
        if plane not in planes:
            problems.append(f"There is no {split}/{plane} folder: cases are shown without the {plane} plane.")
            continue
        stray: list[str] = []
        named: dict[str, list[str]] = {}
        for path in sorted((root / split / plane).iterdir()):
            match = CASE_FILE.match(path.name)
            if not (match and path.is_file()):
                stray.append(path.name)
                continue
            case = case_id(match.group(1))
            if case in named:  # 7.npy, 07.npy and 0007.npy are one case: none of them is chosen silently
                named[case].append(path.name)
                continue
            named[case] = [path.name]
            files.setdefault(case, {})[plane] = path
        for case, names in named.items():
            if len(names) > 1:
                files[case].pop(plane, None)
                problems.append(f"{split}/{plane}: {few(names)} all name case {case}: none of them is read; keep "
                                "one.")
        if stray:
            problems.append(f"{split}/{plane} holds {len(stray)} item{'s' if len(stray) > 1 else ''} that "
                            f"{'are' if len(stray) > 1 else 'is'} not NNNN.npy ({few(stray)}): ignored.")
    ids = sorted(case for case, planes_of in files.items() if planes_of)
    if not ids:
        raise MRNetError(f"{root.name} has no exams: {split}/{{plane}}/NNNN.npy files are expected.")
    lacking = {p: [c for c in ids if p not in files[c]] for p in planes}
    for plane, cases in lacking.items():
        if cases:
            problems.append(f"{len(cases)} case{'s' if len(cases) > 1 else ''} ({few(cases)}) "
                            f"{'have' if len(cases) > 1 else 'has'} no {plane} file: shown without that plane.")
    labels: dict[str, dict[str, int]] = {c: {} for c in ids}
    for task in TASKS:
        csv = root / f"{split}-{task}.csv"
        if not csv.is_file():
            problems.append(f"{csv.name} is missing: the {TASK_TITLES.get(task, task)} task has no ground truth.")
            continue
        task_labels = read_labels(csv, problems)
        absent = sorted(set(task_labels) - set(ids))
        if absent:
            problems.append(f"{csv.name} labels {len(absent)} case{'s' if len(absent) > 1 else ''} with no exam "
                            f"file ({few(absent)}): ignored.")
        for case in ids:
            if case in task_labels:
                labels[case][task] = task_labels[case]
    masks_root = root / "masks" / split

    def load_exam(case: str) -> Exam:
        exam = Exam(volumes={})
        for plane, path in files[case].items():
            add_npy(exam, read_path(path), f"{split}/{plane}/{path.name}", plane=plane)
        return exam

    def fingerprint(case: str) -> str:
        digest = hashlib.sha256()
        for plane in sorted(files[case]):
            digest.update(plane.encode() + read_path(files[case][plane]))
        return digest.hexdigest()

    def load_masks(case: str) -> dict[str, np.ndarray]:
        found = {}
        for plane, path in files[case].items():
            mask = masks_root / plane / path.name
            if mask.is_file():
                try:
                    found[plane] = checked_mask(read_npy_bytes(read_path(mask), f"masks/{split}/{plane}/{path.name}"))
                except MRNetError:
                    continue  # a broken mask only loses its outline (and its flags their pointing game)
        return found

    return CaseSet(name=name or root.name, title=name or root.name, split=split, ids=ids, labels=labels,
                   load_exam=load_exam, fingerprint=fingerprint, load_masks=load_masks, problems=problems,
                   has_masks=masks_root.is_dir())


def open_source(source: str, split: str = "valid") -> CaseSet:
    """A local folder, or a Hub dataset repo `owner/name[@revision]` (downloaded once into the HF cache)."""
    path = Path(source).expanduser()
    if path.is_dir():
        return open_folder(path, split)
    from mrnet.core.hub import dataset_folder
    folder, notice = dataset_folder(source, split)
    cases = open_folder(folder, split, name=source)
    if notice:
        cases.problems.insert(0, notice)
    return cases
