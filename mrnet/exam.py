"""An exam: one to three planes, each a uint8 volume (S, 256, 256), and what was done to get there.

Loaders for MRNet's per-plane .npy files and for one .npz with plane keys. Nothing is unpickled.
Every problem with the input becomes one MRNetError with a sentence a user understands.
"""
from __future__ import annotations

import io
import re
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from .config import PLANES
from .errors import MRNetError
from .settings import settings

SIZE = 256


@dataclass
class Exam:
    volumes: dict[str, np.ndarray]                    # plane -> uint8 (S, 256, 256)
    notes: list[str] = field(default_factory=list)    # what was rescaled, resized, chosen or skipped
    sources: dict[str, str] = field(default_factory=dict)  # plane -> file name it came from

    @property
    def planes(self) -> list[str]:
        return [p for p in PLANES if p in self.volumes]

    def add(self, plane: str, volume: np.ndarray, source: str, notes: list[str]) -> None:
        if plane in self.volumes:
            raise MRNetError(f"Two inputs give the {plane} plane ({self.sources[plane]} and {source}); give one file per plane.")
        self.volumes[plane] = volume
        self.sources[plane] = source
        self.notes.extend(notes)

    def describe(self) -> dict:
        return {"planes": {p: {"slices": int(v.shape[0]), "source": self.sources.get(p, "")} for p, v in self.volumes.items()},
                "missing_planes": [p for p in PLANES if p not in self.volumes], "notes": list(self.notes)}


def to_uint8_volume(array: np.ndarray, name: str) -> tuple[np.ndarray, list[str]]:
    """Check a (S, H, W) array and bring it to uint8 (S, 256, 256); say what was changed."""
    notes = []
    if not isinstance(array, np.ndarray) or array.dtype.kind not in "uifb":
        kind = getattr(getattr(array, "dtype", None), "name", type(array).__name__)
        raise MRNetError(f"{name} holds {kind} data; a plane must be a numeric array of slices.")
    if array.ndim != 3:
        raise MRNetError(f"{name} has shape {array.shape}; a plane must be a stack of slices (slices, height, width).")
    s, h, w = array.shape
    if s == 0 or h == 0 or w == 0:
        raise MRNetError(f"{name} is empty (shape {array.shape}).")
    if s > settings().max_slices:
        raise MRNetError(f"{name} has {s} slices; at most {settings().max_slices} per plane are accepted.")
    if max(h, w) > settings().max_in_plane or min(h, w) < 16:
        raise MRNetError(f"{name} has slices of {h}x{w} pixels; between 16 and {settings().max_in_plane} pixels a side are accepted.")
    if array.dtype == np.bool_:
        array = array.astype(np.uint8)
    if array.dtype != np.uint8:
        values = array.astype(np.float64, copy=False)
        if not np.isfinite(values).all():
            raise MRNetError(f"{name} contains NaN or infinite values.")
        lo, hi = float(values.min()), float(values.max())
        if hi <= lo:
            raise MRNetError(f"{name} is constant (every voxel is {lo:g}); there is no image in it.")
        notes.append(f"{name}: {array.dtype.name} values {lo:g}..{hi:g} rescaled to 0..255 (min-max over the volume).")
        array = np.round((values - lo) * (255.0 / (hi - lo))).astype(np.uint8)
    elif int(array.max()) == int(array.min()):
        raise MRNetError(f"{name} is constant (every voxel is {int(array.min())}); there is no image in it.")
    if (h, w) != (SIZE, SIZE):
        array = resize_volume(array, SIZE)
        notes.append(f"{name}: resized from {h}x{w} to {SIZE}x{SIZE} pixels.")
    return np.ascontiguousarray(array), notes


def resize_volume(volume: np.ndarray, size: int) -> np.ndarray:
    s, h, w = volume.shape
    interp = cv2.INTER_AREA if max(h, w) > size else cv2.INTER_LINEAR
    return np.stack([cv2.resize(sl, (size, size), interpolation=interp) for sl in volume])


def read_npy_bytes(data: bytes, name: str) -> np.ndarray:
    try:
        return np.load(io.BytesIO(data), allow_pickle=False)
    except ValueError as exc:
        if "pickle" in str(exc).lower() or "object" in str(exc).lower():
            raise MRNetError(f"{name} holds pickled Python objects; refused (only plain numeric arrays are read).") from None
        raise MRNetError(f"{name} is not a valid .npy file ({exc}).") from None
    except (OSError, EOFError, TypeError, KeyError, MemoryError) as exc:
        raise MRNetError(f"{name} is not a valid .npy file ({type(exc).__name__}).") from None


def plane_from_name(path: str) -> str | None:
    """'axial.npy', 'sagittal/0003.npy', 'exam_coronal.npy', 'train/axial/0001.npy' -> plane."""
    parts = re.split(r"[\\/]", path.lower())
    stem = Path(parts[-1]).stem
    for token in [stem, *reversed(parts[:-1])]:
        found = [p for p in PLANES if p in re.split(r"[^a-z]+", token)]
        if len(found) == 1:
            return found[0]
    return None


def add_npy(exam: Exam, data: bytes, name: str, plane: str | None = None) -> None:
    plane = plane or plane_from_name(name)
    if plane is None:
        raise MRNetError(f"Cannot tell the plane of {Path(name).name}: name the file or its folder axial, coronal or sagittal.")
    volume, notes = to_uint8_volume(read_npy_bytes(data, name), Path(name).name)
    exam.add(plane, volume, Path(name).name, notes)


def add_npz(exam: Exam, data: bytes, name: str) -> None:
    try:
        archive = np.load(io.BytesIO(data), allow_pickle=False)
    except (ValueError, OSError, EOFError, TypeError, zipfile.BadZipFile) as exc:
        raise MRNetError(f"{name} is not a valid .npz file ({type(exc).__name__}).") from None
    if not isinstance(archive, np.lib.npyio.NpzFile):
        raise MRNetError(f"{name} is not a .npz archive.")
    with archive:
        keys = list(archive.files)
        planes = [k for k in keys if k in PLANES]
        if not planes:
            raise MRNetError(f"{name} has no array named axial, coronal or sagittal (it has {keys[:6]}).")
        for plane in planes:
            try:
                array = archive[plane]
            except ValueError:
                raise MRNetError(f"{name}: array {plane!r} holds pickled Python objects; refused.") from None
            except Exception as exc:
                raise MRNetError(f"{name}: array {plane!r} cannot be read ({type(exc).__name__}).") from None
            volume, notes = to_uint8_volume(array, f"{Path(name).name}[{plane}]")
            exam.add(plane, volume, f"{Path(name).name}[{plane}]", notes)
        ignored = [k for k in keys if k not in PLANES]
        if ignored:
            exam.notes.append(f"{Path(name).name}: ignored arrays {ignored}.")
