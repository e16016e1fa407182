"""Where the app leaves each plane's packed slices for the browser to fetch as files."""
from __future__ import annotations

import os
import time
import uuid
from pathlib import Path


class PixelStore:
    """Where the app leaves each plane's packed slices for the browser to fetch as a file (no base64, no
    7 MB of JSON through the event stream): a folder that `launch(allowed_paths=...)` serves, files named
    by a random id, each removed an hour after it was written."""

    def __init__(self, folder: Path, max_age_s: float = 3600):
        self.folder, self.max_age_s = Path(folder), max_age_s
        self.folder.mkdir(parents=True, exist_ok=True)

    def __call__(self, data: bytes, suffix: str = ".bin") -> str:
        """`data` as a file (`suffix`: how Gradio names its type: .bin, or .png for an image) -> its URL path."""
        now = time.time()
        for old in self.folder.glob("*.*"):
            try:
                if now - old.stat().st_mtime > self.max_age_s:
                    old.unlink()
            except OSError:
                pass  # another thread removed it
        self.folder.mkdir(parents=True, exist_ok=True)  # Gradio's own cache cleaning may have removed it
        path = self.folder / f"{uuid.uuid4().hex}{suffix}"
        write_private(path, data)
        return f"gradio_api/file={path}"   # relative to the page, so that it works under a proxy's path too


def write_private(path: Path, data: bytes) -> None:
    """Readable by the app's user only (0600), as Gradio keeps uploads: they are views of a visitor's exam."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(data)
