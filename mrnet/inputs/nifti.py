"""NIfTI-1/2 (.nii, .nii.gz), the format of most research knee datasets, read through nibabel.

- The header is read and checked (dimensions, data type, what the data will take) before any voxel is
  read; a .nii.gz is decompressed only as far as the header says it needs, never more.
- The slice axis is the header's slice dimension when it names one, else the axis of clearly largest voxel
  spacing, else the axis with the fewest samples (a knee series has thick slices and fine pixels). Its
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

from mrnet.core.errors import MRNetError
from mrnet.core.exam import Exam
from mrnet.inputs.arrays import check_plane, plane_from_name, to_uint8_volume

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
    """The header, parsed without nibabel's own checks (they log to the console; ours say one sentence)."""
    import nibabel as nib
    for kind in (nib.Nifti1Header, nib.Nifti2Header):
        try:
            header = kind.from_fileobj(_Reader(raw), check=False)
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


MAX_EXTENSIONS = 1 << 20  # bytes of header extensions allowed between the header and the voxels


def first_volume_shape(header, base: str) -> tuple[tuple[int, int, int], list[str]]:
    """The 3-D shape to read, from every dimension the header declares (dim[0] and dim[1..7])."""
    dim = [int(d) for d in header["dim"]]
    ndim = dim[0]
    if not 1 <= ndim <= 7:
        raise MRNetError(f"{base} declares {ndim} dimensions in its header; the file is damaged.")
    shape = tuple(dim[1:ndim + 1])
    if any(d < 1 for d in shape):
        raise MRNetError(f"{base} declares a dimension of {min(shape)} voxels; the file is damaged.")
    while len(shape) > 3 and shape[-1] == 1:
        shape = shape[:-1]
    if len(shape) == 4:
        return shape[:3], [f"{base}: a 4-D image of {shape[3]} volumes; the first is used."]
    if len(shape) != 3:
        raise MRNetError(f"{base} has {len(shape)} dimensions {shape}; a knee series is a 3-D volume.")
    return shape, []


def data_offset(header, base: str) -> int:
    offset = float(header["vox_offset"])
    size = int(header.sizeof_hdr)
    if not math.isfinite(offset) or not size <= offset <= size + 4 + MAX_EXTENSIONS:
        raise MRNetError(f"{base} says its voxels start at byte {offset:g}; a single-file NIfTI's voxels follow its "
                         f"header within {MAX_EXTENSIONS // 2**20} MB, so the file is damaged or crafted.")
    return int(offset)


def geometry(header, base: str) -> np.ndarray:
    """The voxel-to-RAS affine (sform, else qform, else pixdim), refused in our words when it is not a
    finite, invertible map (NaN or infinite pixdim, sform or quaternion; a zero or rank-deficient sform)."""
    try:
        with np.errstate(all="ignore"):
            affine = np.asarray(header.get_best_affine(), dtype=np.float64)
    except Exception:  # nibabel raises several types for impossible quaternions and spacings
        affine = None
    if affine is None or affine.shape != (4, 4) or not np.isfinite(affine).all():
        raise MRNetError(f"{base} has a voxel geometry (pixdim, sform or qform) that is not a set of finite numbers; "
                         "the file is damaged.")
    singular = np.linalg.svd(affine[:3, :3], compute_uv=False)
    if not singular[-1] > 1e-6 * singular[0] or not singular[0] > 0:
        raise MRNetError(f"{base} has a degenerate voxel geometry (its affine maps the volume onto a plane or a "
                         "point); the file is damaged.")
    return affine


def slice_axis_of(header, affine: np.ndarray, shape: tuple) -> int:
    """The header's slice dimension when it names one; else the axis of clearly largest voxel spacing (a knee
    series has thick slices and fine pixels); else the axis with the fewest samples; ties: the third."""
    named = header.get_dim_info()[2]
    if named is not None and 0 <= int(named) <= 2:
        return int(named)
    spacing = np.linalg.norm(affine[:3, :3], axis=0)
    widest = int(np.argmax(spacing))
    if all(spacing[widest] > 1.2 * spacing[a] for a in range(3) if a != widest):
        return widest
    fewest = min(shape)
    return 2 if shape[2] == fewest else shape.index(fewest)


def add_nifti(exam: Exam, data: bytes, name: str) -> None:
    """Every header field that sizes the read is checked first; only the first volume's bytes are ever
    decompressed or looked at."""
    base = Path(name).name
    gz = data[:2] == b"\x1f\x8b"
    raw = gunzip(data, 544, base) if gz else data
    header = header_of(raw, base)
    shape, notes = first_volume_shape(header, base)
    try:
        dtype = header.get_data_dtype()
    except Exception:  # an unknown datatype code
        raise MRNetError(f"{base} declares a voxel data type this tool does not know; the file is damaged.") from None
    affine = geometry(header, base)
    slice_axis = slice_axis_of(header, affine, shape)
    in_plane = [shape[a] for a in range(3) if a != slice_axis]
    check_plane((shape[slice_axis], *in_plane), dtype, base)  # limits, bytes included, before any voxel is read
    offset = data_offset(header, base)
    needed = offset + math.prod(shape) * dtype.itemsize
    if gz:
        raw = gunzip(data, needed, base)
    if len(raw) < needed:
        raise MRNetError(f"{base} is cut short: its header announces {needed} bytes, it holds {len(raw)}.")
    volume = np.frombuffer(raw, dtype=dtype, count=math.prod(shape), offset=offset).reshape(shape, order="F")
    slope = float(header["scl_slope"]) if math.isfinite(float(header["scl_slope"])) else 0.0
    if slope < 0:  # the uint8 window is min-max over the volume: a positive scaling changes nothing, a negative one inverts
        volume = -volume.astype(np.float32)
    direction = affine[:3, slice_axis] / np.linalg.norm(affine[:3, slice_axis])
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
