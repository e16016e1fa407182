"""Which loader reads a file: by content first (magic bytes), then by name.

Zips are read in memory member by member (never extracted to disk by member name), with limits on
member count and uncompressed size against zip bombs. DICOM files are gathered and handed to
mrnet.dicom as one series set.
"""
from __future__ import annotations

import io
import zipfile
from pathlib import Path

from .errors import MRNetError
from .exam import Exam, add_npy, add_npz
from .settings import settings

NPY_MAGIC = b"\x93NUMPY"
ZIP_MAGIC = b"PK\x03\x04"


def max_upload_bytes() -> int:
    return settings().max_upload_mb * 1024 * 1024


def max_unzipped_bytes() -> int:
    return settings().max_unzipped_mb * 1024 * 1024


def max_zip_members() -> int:
    return settings().max_zip_members


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
    exam, dicoms = Exam(volumes={}), []
    for name, data in items:
        add_file(exam, data, name, dicoms)
    if dicoms:
        from .dicom import add_dicom_files
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
    elif data.startswith(ZIP_MAGIC) and base.lower().endswith(".npz"):
        add_npz(exam, data, name)
    elif data.startswith(ZIP_MAGIC):
        add_zip(exam, data, name, dicoms)
    elif is_dicom(data, name):
        dicoms.append((name, data))
    else:
        raise MRNetError(f"{base} is not a file this tool reads: give per-plane .npy, a .npz, a .zip or DICOM files.")


def add_zip(exam: Exam, data: bytes, name: str, dicoms: list) -> None:
    """A zip of per-plane .npy files (any folders, e.g. MRNet's layout for one exam) or of DICOM files."""
    base = Path(name).name
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
        members = [m for m in archive.infolist() if not m.is_dir()]
    except (zipfile.BadZipFile, OSError, ValueError, EOFError) as exc:
        raise MRNetError(f"{base} is not a readable zip file ({exc}).") from None
    if len(members) > max_zip_members():
        raise MRNetError(f"{base} has {len(members)} files; at most {max_zip_members()} are accepted.")
    total = sum(m.file_size for m in members)
    if total > max_unzipped_bytes():
        raise MRNetError(f"{base} unpacks to {total / 2**20:.0f} MB; at most {max_unzipped_bytes() // 2**20} MB are accepted.")
    skipped, read_total, planes_before, dicoms_before = [], 0, len(exam.volumes), len(dicoms)
    for member in members:
        inner = member.filename
        leaf = Path(inner).name
        if leaf.startswith(".") or "__MACOSX" in inner:
            continue
        try:
            with archive.open(member) as fh:
                # read at most the declared size + 1: a member that lies about its size is caught here
                blob = fh.read(member.file_size + 1)
        except (zipfile.BadZipFile, OSError, ValueError, EOFError, NotImplementedError, RuntimeError) as exc:
            raise MRNetError(f"{base}: member {leaf} cannot be read ({exc}).") from None
        read_total += len(blob)
        if len(blob) > member.file_size or read_total > max_unzipped_bytes():
            raise MRNetError(f"{base} unpacks to more than it declares; refused.")
        if blob.startswith(NPY_MAGIC):
            add_npy(exam, blob, f"{base}/{inner}")
        elif is_dicom(blob, inner):
            dicoms.append((f"{base}/{inner}", blob))
        else:
            skipped.append(leaf)
    if skipped:
        shown = ", ".join(skipped[:5]) + (f" and {len(skipped) - 5} more" if len(skipped) > 5 else "")
        exam.notes.append(f"{base}: skipped {len(skipped)} file(s) that are neither .npy nor DICOM: {shown}.")
    if len(exam.volumes) == planes_before and len(dicoms) == dicoms_before:
        raise MRNetError(f"{base} holds no .npy plane and no DICOM file.")
