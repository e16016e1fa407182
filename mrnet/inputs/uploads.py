"""Files that arrive with a web request: read only regular files that were uploaded, by their own name.

A raw API call can name any path the server's upload cache holds, including the cache itself or another
visitor's upload folder; walking such a folder would hand one visitor's files to another. So a request's
files must each be a regular file (not a folder, not a link) directly inside one upload folder of the
cache (Gradio keeps an upload as CACHE/<content hash>/<name>). Messages never repeat a path: they name
the file by its own name, which the visitor gave. Local callers (the CLI) read folders with
`mrnet.inputs.load.load_exam` instead.
"""
from __future__ import annotations

import os
import stat
from pathlib import Path

from mrnet.core.errors import MRNetError
from mrnet.core.settings import settings
from mrnet.inputs.load import max_upload_bytes

NOT_AN_UPLOAD = ("One of the inputs is not a file uploaded with this request (a folder, a link or a path on the "
                 "server); upload the exam's files themselves, or a .zip of their folder.")


def read_uploads(paths: list, upload_root: str | Path) -> list[tuple[str, bytes]]:
    """Uploaded file paths -> [(file name, content)], or one sentence that names none of the paths. Everything a
    request names is checked (count, repeats, kind, sizes) before any byte is read."""
    root = Path(upload_root).resolve()
    paths = [Path(p) for p in paths]
    if len(paths) > settings().max_dicom_files:
        raise MRNetError(f"{len(paths)} files were sent; at most {settings().max_dicom_files} are accepted in one request.")
    total, total_limit = 0, settings().max_unzipped_mb * 2**20
    for path in paths:
        try:
            info = os.lstat(path)
        except (OSError, ValueError):
            raise MRNetError(NOT_AN_UPLOAD) from None
        if not stat.S_ISREG(info.st_mode) or path.resolve().parent.parent != root:
            raise MRNetError(NOT_AN_UPLOAD)
        if info.st_size > max_upload_bytes():
            raise MRNetError(f"{path.name} is larger than {max_upload_bytes() // 2**20} MB, the most accepted.")
        total += info.st_size
        if total > total_limit:
            raise MRNetError(f"The files sent add up to more than {total_limit // 2**20} MB, the most one exam may take.")
    # one file named many times would be read (and held) many times
    if len({p.resolve() for p in paths}) < len(paths):
        raise MRNetError("The same uploaded file is named more than once in this request; send each file once.")
    items = []
    for path in paths:
        try:
            with open(path, "rb", opener=lambda p, flags: os.open(p, flags | os.O_NOFOLLOW)) as fh:
                items.append((path.name, fh.read(max_upload_bytes() + 1)))
        except OSError:
            raise MRNetError(f"{path.name} could not be read; upload it again.") from None
    return items
