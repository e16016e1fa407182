"""NIfTI-1/2 (.nii, .nii.gz), the format of most research knee datasets, read through nibabel.

- The header is read and checked (dimensions, data type, what the data will take) before any voxel is
  read; a .nii.gz is decompressed only as far as the header says it needs, never more.
- The slice axis is the header's slice dimension when it names one, else the third voxel axis. Its
  direction in the affine (RAS+) gives the plane: nearest of x (sagittal), y (coronal), z (axial); an
  oblique angle is reported.
- Slices are put in the orientation the DICOM path gives for the usual orientations, a radiologist's
  view (OpenCV row/column order, first pixel top left):
    sagittal: slices from patient left to right, rows downward (superior to inferior), columns anterior
              to posterior (anterior on the left of the image);
    coronal:  slices anterior to posterior, rows downward, columns patient right to left;
    axial:    slices inferior to superior, rows anterior to posterior, columns patient right to left.
  (DICOM's LPS row/column directions of a standard sagittal, coronal, axial series.)
- 4-D images: the first volume is used, and that is said.
"""
from __future__ import annotations

import math
import zlib
from pathlib import Path

import numpy as np

from .errors import MRNetError
from .exam import Exam, check_plane, plane_from_name, to_uint8_volume

NII_MAGICS = (b"n+1\x00", b"n+2\x00")
# output (slice, row, column) axis codes per plane, in nibabel's RAS letters (the direction each index grows)
ORIENTATION = {"sagittal": ("R", "I", "P"), "coronal": ("P", "I", "L"), "axial": ("S", "P", "L")}
AXIS_PLANE = {0: "sagittal", 1: "coronal", 2: "axial"}


def is_nifti(data: bytes, name: str) -> bool:
    if data[:2] == b"\x1f\x8b":
        return name.lower().endswith(".nii.gz")
    return data[344:348] in NII_MAGICS or data[4:8] in NII_MAGICS


def gunzip(data: bytes, at_most: int, name: str) -> bytes:
    """Up to `at_most` bytes of a gzip stream (a gzip bomb stops there)."""
    try:
        inflater = zlib.decompressobj(16 + zlib.MAX_WBITS)
        out = inflater.decompress(data, at_most)
    except zlib.error:
        raise MRNetError(f"{name} is not a readable .nii.gz file (its gzip stream is damaged).") from None
    return out


def header_of(raw: bytes, name: str):
    import nibabel as nib
    for kind in (nib.Nifti1Header, nib.Nifti2Header):
        try:
            header = kind.from_fileobj(_Reader(raw))
            if header["magic"].item() in (b"n+1", b"n+2"):
                return header
        except Exception:  # nibabel raises several types for a header of the other kind or a damaged one
            continue
    raise MRNetError(f"{name} is not a readable NIfTI file (its header is damaged or not single-file NIfTI).")


class _Reader:
    def __init__(self, raw: bytes):
        self.raw, self.pos = raw, 0

    def read(self, n: int = -1) -> bytes:
        end = len(self.raw) if n < 0 else self.pos + n
        out, self.pos = self.raw[self.pos:end], min(end, len(self.raw))
        return out

    def seek(self, pos: int, whence: int = 0) -> int:
        self.pos = pos if whence == 0 else self.pos + pos if whence == 1 else len(self.raw) + pos
        return self.pos

    def tell(self) -> int:
        return self.pos


def add_nifti(exam: Exam, data: bytes, name: str) -> None:
    import nibabel as nib
    base = Path(name).name
    gz = data[:2] == b"\x1f\x8b"
    raw = gunzip(data, 544, base) if gz else data
    header = header_of(raw, base)
    shape = tuple(int(d) for d in header.get_data_shape())
    dtype = header.get_data_dtype()
    notes = []
    if len(shape) == 4 and shape[3] >= 1:
        notes.append(f"{base}: a 4-D image of {shape[3]} volumes; the first is used.")
        shape = shape[:3]
    elif len(shape) != 3:
        raise MRNetError(f"{base} has {len(shape)} dimensions {shape}; a knee series is a 3-D volume.")
    slice_axis = header.get_dim_info()[2]
    slice_axis = 2 if slice_axis is None else int(slice_axis)
    in_plane = [shape[a] for a in range(3) if a != slice_axis]
    check_plane((shape[slice_axis], *in_plane), dtype, base)  # limits before any voxel is read
    needed = int(header.get_data_offset()) + math.prod(shape) * dtype.itemsize
    if gz:
        raw = gunzip(data, needed, base)
    if len(raw) < needed:
        raise MRNetError(f"{base} is cut short: its header announces {needed} bytes, it holds {len(raw)}.")
    try:
        image = nib.Nifti1Image.from_bytes(raw) if header["magic"].item() == b"n+1" else nib.Nifti2Image.from_bytes(raw)
        volume = np.asanyarray(image.dataobj)
    except Exception:  # nibabel's own exceptions for damaged data
        raise MRNetError(f"{base}: the voxel data cannot be read; the file is damaged.") from None
    if volume.ndim == 4:
        volume = volume[..., 0]
    affine = image.affine
    direction = affine[:3, slice_axis] / (np.linalg.norm(affine[:3, slice_axis]) or 1.0)
    axis = int(np.argmax(np.abs(direction)))
    plane = AXIS_PLANE[axis]
    named = plane_from_name(name)
    if named and named != plane:
        notes.append(f"{base}: named {named}, but its affine says {plane}; the affine is followed.")
    angle = math.degrees(math.acos(min(1.0, abs(float(direction[axis])))))
    volume = reoriented(volume, affine, plane, slice_axis)
    uint8, more = to_uint8_volume(volume, base)
    oblique = f", oblique by {angle:.0f} degrees" if angle >= 1 else ""
    exam.add(plane, uint8, base, notes + more + [f"{plane}: NIfTI {base}, {len(uint8)} slices{oblique}."])


def reoriented(volume: np.ndarray, affine: np.ndarray, plane: str, slice_axis: int) -> np.ndarray:
    """The volume as (slice, row, column) in the plane's orientation (see the module's docstring)."""
    from nibabel.orientations import apply_orientation, axcodes2ornt, io_orientation, ornt_transform
    current = io_orientation(affine)
    if int(np.argmax(np.abs(affine[:3, slice_axis]))) != int(current[slice_axis, 0]):
        raise MRNetError("The NIfTI affine is too oblique to tell its slice axis; reslice it to the nearest plane.")
    transform = ornt_transform(current, axcodes2ornt(ORIENTATION[plane]))
    return np.ascontiguousarray(apply_orientation(volume, transform))
