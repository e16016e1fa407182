"""Which loader reads a file: by content first (magic bytes), then by name.

Zips are read in memory member by member (never extracted to disk by member name), with limits on
member count and uncompressed size against zip bombs. DICOM files are gathered and handed to
mrnet.inputs.dicom as one series set.
"""
from __future__ import annotations

from pathlib import Path

from mrnet.core.errors import MRNetError
from mrnet.core.exam import Exam
from mrnet.core.settings import settings
from mrnet.inputs.archive import open_zip, read_member
from mrnet.inputs.arrays import add_npy, add_npz
from mrnet.inputs.deadline import check, reading
from mrnet.inputs.nifti import add_nifti, is_nifti

NPY_MAGIC = b"\x93NUMPY"
ZIP_MAGIC = b"PK\x03\x04"


def max_upload_bytes() -> int:
    return settings().max_upload_mb * 1024 * 1024


def is_dicom(data: bytes, name: str) -> bool:
    return data[128:132] == b"DICM" or name.lower().endswith((".dcm", ".dicom"))


def read_path(path: Path) -> bytes:
    path = Path(path)
    if not path.exists():
        raise MRNetError(f"{path} does not exist.")
    try:
        if path.stat().st_size > max_upload_bytes():
            raise MRNetError(f"{path.name} is larger than {max_upload_bytes() // 2**20} MB, the most accepted.")
        return path.read_bytes()
    except OSError as exc:
        raise MRNetError(f"{path} cannot be read ({exc.strerror}).") from None


def load_exam(paths: list) -> Exam:
    """Files or folders on disk -> Exam."""
    items = []
    for path in map(Path, paths):
        if path.is_dir():
            items += [(str(c.relative_to(path.parent)), read_path(c)) for c in sorted(path.rglob("*")) if c.is_file()]
        else:
            items.append((str(path), read_path(path)))
    return load_items(items)


def load_items(items: list[tuple[str, bytes]]) -> Exam:
    """(name, content) pairs -> Exam. DICOM files are gathered over all items and read together,
    so that slices of one series can come in separate files."""
    if not items:
        raise MRNetError("No input files were given.")
    exam = Exam(volumes={})
    dicoms: list[tuple[str, bytes]] = []
    with reading(settings().max_read_seconds):
        for name, data in items:
            check(name)
            add_file(exam, data, name, dicoms)
        if dicoms:
            from mrnet.inputs.dicom import add_dicom_files
            add_dicom_files(exam, dicoms)
    if not exam.volumes:
        raise MRNetError("The input holds no plane of an exam.")
    return exam


def add_file(exam: Exam, data: bytes, name: str, dicoms: list) -> None:
    """Add one file's planes to the exam; DICOM files go to `dicoms`, to be read together."""
    base = Path(name).name
    if len(data) > max_upload_bytes():
        raise MRNetError(f"{base} is {len(data) / 2**20:.0f} MB; files up to {max_upload_bytes() // 2**20} MB are accepted.")
    if len(data) == 0:
        raise MRNetError(f"{base} is empty.")
    if data.startswith(NPY_MAGIC):
        add_npy(exam, data, name)
    elif is_nifti(data, name):
        add_nifti(exam, data, name)
    elif data.startswith(ZIP_MAGIC) and base.lower().endswith(".npz"):
        add_npz(exam, data, name)
    elif data.startswith(ZIP_MAGIC):
        add_zip(exam, data, name, dicoms)
    elif is_dicom(data, name):
        add_dicom_candidate(dicoms, name, data)
    else:
        raise MRNetError(f"{base} is not a file this tool reads: give per-plane .npy, a .npz, a .zip, NIfTI (.nii, .nii.gz) "
                         "or DICOM files.")


def add_zip(exam: Exam, data: bytes, name: str, dicoms: list) -> None:
    """A zip of per-plane .npy files (any folders, e.g. MRNet's layout for one exam) or of DICOM files; checked
    from its central directory (mrnet.inputs.archive) before any member is decompressed."""
    base = Path(name).name
    archive, members = open_zip(data, name)
    skipped, planes_before, dicoms_before = [], len(exam.volumes), len(dicoms)
    for member in members:
        inner = member.filename
        leaf = Path(inner).name
        if leaf.startswith(".") or "__MACOSX" in inner:
            continue
        check(inner)
        blob = read_member(archive, member, base)
        if blob.startswith(NPY_MAGIC):
            add_npy(exam, blob, f"{base}/{inner}")
        elif is_dicom(blob, inner):
            add_dicom_candidate(dicoms, f"{base}/{inner}", blob)
        else:
            skipped.append(leaf)
    if skipped:
        shown = ", ".join(skipped[:5]) + (f" and {len(skipped) - 5} more" if len(skipped) > 5 else "")
        exam.notes.append(f"{base}: skipped {len(skipped)} file(s) that are neither .npy nor DICOM: {shown}.")
    if len(exam.volumes) == planes_before and len(dicoms) == dicoms_before:
        raise MRNetError(f"{base} holds no .npy plane and no DICOM file.")


def add_dicom_candidate(dicoms: list, name: str, data: bytes) -> None:
    """Gather a DICOM file; the count limit is checked as they come, before any is parsed."""
    if len(dicoms) >= settings().max_dicom_files:
        raise MRNetError(f"More than {settings().max_dicom_files} DICOM files were given; at most "
                         f"{settings().max_dicom_files} are accepted.")
    dicoms.append((name, data))
