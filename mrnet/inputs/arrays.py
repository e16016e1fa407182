"""Plane arrays: the checks every plane passes before its data is read, the conversion to uint8 slices of
256 x 256, and the loaders for MRNet's per-plane .npy files and for one .npz with plane keys. Nothing is unpickled.
Every problem with the input becomes one MRNetError with a sentence a user understands.
"""
from __future__ import annotations

import io
import re
from pathlib import Path

import cv2
import numpy as np

from mrnet.core.config import PLANES
from mrnet.core.errors import MRNetError
from mrnet.core.exam import SIZE, Exam
from mrnet.core.settings import settings
from mrnet.inputs.archive import READ_ERRORS, member_stream, open_zip
from mrnet.inputs.deadline import check

NPY_MAX_HEADER = 10_000   # bytes; numpy's own default limit


def check_plane(shape: tuple, dtype: np.dtype, name: str) -> None:
    """What a plane's header (or array) says, checked before any of its data is read."""
    if dtype.hasobject:
        raise MRNetError(f"{name} holds pickled Python objects; refused (only plain numeric arrays are read).")
    if dtype.kind not in "uifb" or dtype.itemsize > 8 or dtype.fields is not None:
        raise MRNetError(f"{name} holds {dtype} data; a plane must be a numeric array of slices.")
    if len(shape) != 3:
        raise MRNetError(f"{name} has shape {tuple(shape)}; a plane must be a stack of slices (slices, height, width).")
    s, h, w = shape
    if s == 0 or h == 0 or w == 0:
        raise MRNetError(f"{name} is empty (shape {tuple(shape)}).")
    if s > settings().max_slices:
        raise MRNetError(f"{name} has {s} slices; at most {settings().max_slices} per plane are accepted.")
    if max(h, w) > settings().max_in_plane or min(h, w) < 16:
        raise MRNetError(f"{name} has slices of {h}x{w} pixels; between 16 and {settings().max_in_plane} pixels a side are accepted.")
    if s * h * w * dtype.itemsize > max_plane_bytes():
        raise MRNetError(f"{name} holds {s * h * w * dtype.itemsize / 2**20:.0f} MB of voxels; a plane may hold at most "
                         f"{max_plane_bytes() // 2**20} MB (for instance {settings().max_slices} slices of "
                         f"{settings().max_in_plane}x{settings().max_in_plane} at 16 bits).")


def max_plane_bytes() -> int:
    """What one plane's voxels may take before conversion: the largest plane at 16 bits (256 MB by default),
    so that no header, however it sizes its data, makes one input cost more than that."""
    return settings().max_slices * settings().max_in_plane ** 2 * 2


def to_uint8_volume(array: np.ndarray, name: str) -> tuple[np.ndarray, list[str]]:
    """Check a (S, H, W) array and bring it to uint8 (S, 256, 256), one slice at a time (a large plane is never
    copied whole); say what was changed."""
    if not isinstance(array, np.ndarray):
        raise MRNetError(f"{name} holds {type(array).__name__} data; a plane must be a numeric array of slices.")
    check_plane(array.shape, array.dtype, name)
    s, h, w = array.shape
    notes, scale = [], None
    if array.dtype == np.bool_:
        scale = (0.0, 1.0)
        notes.append(f"{name}: a yes/no (bool) volume, shown as black and white (0 and 255).")
    elif array.dtype != np.uint8:
        lo, hi = float(np.min(array)), float(np.max(array))
        if not (np.isfinite(lo) and np.isfinite(hi)):
            raise MRNetError(f"{name} contains NaN or infinite values.")
        if hi <= lo:
            raise MRNetError(f"{name} is constant (every voxel is {lo:g}); there is no image in it.")
        if not np.isfinite(hi - lo) or not np.isfinite(255.0 / (hi - lo)):
            raise MRNetError(f"{name} has values from {lo:g} to {hi:g}, a range that cannot be scaled to 0..255; "
                             "save the plane as integers or ordinary floats.")
        scale = (lo, hi)
        notes.append(f"{name}: {array.dtype.name} values {lo:g}..{hi:g} rescaled to 0..255 (min-max over the volume).")
    out = np.empty((s, SIZE, SIZE), np.uint8)
    for i in range(s):
        check(name)
        sl = array[i]
        if scale is not None:
            lo, hi = scale
            sl = np.round((sl.astype(np.float64) - lo) * (255.0 / (hi - lo))).astype(np.uint8)
        out[i] = resize_slice(sl, SIZE) if (h, w) != (SIZE, SIZE) else sl
    if int(out.max()) == int(out.min()):
        what = "is constant" if scale is None or array.dtype == np.bool_ else "has too little contrast to show"
        raise MRNetError(f"{name} {what}: after scaling to 0..255 every voxel is {int(out.min())}; there is no image in it.")
    if (h, w) != (SIZE, SIZE):
        notes.append(f"{name}: resized from {h}x{w} to {SIZE}x{SIZE} pixels.")
    return out, notes


def resize_slice(image: np.ndarray, size: int) -> np.ndarray:
    h, w = image.shape
    return cv2.resize(image, (size, size), interpolation=cv2.INTER_AREA if max(h, w) > size else cv2.INTER_LINEAR)


def read_npy_header(fh, name: str) -> tuple[tuple, np.dtype, bool]:
    """(shape, dtype, fortran order) from a .npy header, with our sentences; no data is read."""
    try:
        version = np.lib.format.read_magic(fh)
        if version == (1, 0):
            shape, fortran, dtype = np.lib.format.read_array_header_1_0(fh, max_header_size=NPY_MAX_HEADER)
        elif version == (2, 0):
            shape, fortran, dtype = np.lib.format.read_array_header_2_0(fh, max_header_size=NPY_MAX_HEADER)
        else:
            raise MRNetError(f"{name} is a .npy file of format version {version[0]}.{version[1]}, which is not read; "
                             "save it with numpy.save.")
    except MRNetError:
        raise
    except ValueError as exc:
        if "max_header_size" in str(exc) or "large" in str(exc):
            raise MRNetError(f"{name} has a .npy header longer than {NPY_MAX_HEADER} bytes; a plain array's header is "
                             "a few dozen bytes, so it is refused.") from None
        raise MRNetError(f"{name} is not a valid .npy file: its header does not describe a plain numeric array.") from None
    except (OSError, EOFError, TypeError, KeyError, SyntaxError) as exc:
        raise MRNetError(f"{name} is not a valid .npy file ({type(exc).__name__} in its header).") from None
    check_plane(shape, dtype, name)
    return shape, dtype, fortran


def array_from(fh, shape: tuple, dtype: np.dtype, fortran: bool, name: str) -> np.ndarray:
    """The array's data after its header, read exactly (a short file is an error, not a smaller array)."""
    count = int(np.prod(shape))
    data = fh.read(count * dtype.itemsize)
    if len(data) != count * dtype.itemsize:
        raise MRNetError(f"{name} is not a valid .npy file: it is cut short ({len(data)} of "
                         f"{count * dtype.itemsize} data bytes).")
    return np.frombuffer(data, dtype=dtype, count=count).reshape(shape, order="F" if fortran else "C")


def read_npy_bytes(data: bytes, name: str) -> np.ndarray:
    """A .npy file's plane, its header checked against the limits before the data is touched. Never unpickles."""
    fh = io.BytesIO(data)
    shape, dtype, fortran = read_npy_header(fh, name)
    return array_from(fh, shape, dtype, fortran, name)


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
    """A .npz with plane keys: a zip checked from its directory, then each plane's header before its data."""
    base = Path(name).name
    archive, members = open_zip(data, name)
    arrays = {Path(m.filename).name.removesuffix(".npy"): m for m in members}
    planes = [p for p in PLANES if p in arrays]
    if not planes:
        raise MRNetError(f"{base} has no array named axial, coronal or sagittal (it has {sorted(arrays)[:6]}).")
    for plane in planes:
        label = f"{base}[{plane}]"
        try:
            with member_stream(archive, arrays[plane], base) as fh:
                shape, dtype, fortran = read_npy_header(fh, label)
                array = array_from(fh, shape, dtype, fortran, label)
        except READ_ERRORS as exc:
            raise MRNetError(f"{label} cannot be read ({type(exc).__name__}).") from None
        volume, notes = to_uint8_volume(array, label)
        exam.add(plane, volume, label, notes)
    ignored = sorted(k for k in arrays if k not in PLANES)
    if ignored:
        exam.notes.append(f"{base}: ignored arrays {ignored}.")
