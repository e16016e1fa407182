"""What the server keeps between a visitor's events, bounded for all visitors together.

`KeptAnalyses`: each visitor's last analysis (what a flag and the zip need), in memory, the most recently used
first, up to a total size; the session's gr.State holds only its key. So memory follows the bound, not the
number of sessions (each session once kept its analysis and the renderer's volumes: about 280 MB).

`ZipFolder`: the zips visitors prepared, one per session (a new one replaces the session's last), and at most
`max_bytes` for all of them: the oldest are removed first. (A session id is the client's to choose, so the bound
for all of them is what holds the disk.)
"""
from __future__ import annotations

import secrets
import threading
import time
from collections import OrderedDict
from pathlib import Path

from mrnet.core.analysis import Analysis

GONE = ("This analysis is no longer kept on the server (many exams were analysed since): press Analyze, or open "
        "the case, again.")


def analysis_bytes(analysis: Analysis) -> int:
    """What an analysis holds, roughly: its exam's pixels and, per task and plane, each method's maps and the
    pooled features."""
    total = sum(v.nbytes for v in analysis.exam.volumes.values())
    for task in analysis.tasks.values():
        for plane in task.planes.values():
            total += sum(m.nbytes for m in plane.maps.values())
            total += plane.pooled.nbytes if plane.pooled is not None else 0
    return total


class KeptAnalyses:
    def __init__(self, max_bytes: int):
        self.max_bytes = max_bytes
        self.items: OrderedDict[str, tuple[Analysis, int]] = OrderedDict()
        self.lock = threading.Lock()

    def put(self, analysis: Analysis) -> str:
        """Keep an analysis; its key (unguessable: a session's state could be read back by nobody else, but a key
        is cheap to make so). The least recently used ones go when the total passes the bound (the newest stays)."""
        key, size = secrets.token_urlsafe(16), analysis_bytes(analysis)
        with self.lock:
            self.items[key] = (analysis, size)
            while len(self.items) > 1 and sum(s for _, s in self.items.values()) > self.max_bytes:
                self.items.popitem(last=False)
        return key

    def get(self, key: str | None) -> Analysis | None:
        if not isinstance(key, str):
            return None
        with self.lock:
            found = self.items.get(key)
            if found is None:
                return None
            self.items.move_to_end(key)
            return found[0]

    @property
    def nbytes(self) -> int:
        with self.lock:
            return sum(s for _, s in self.items.values())


class ZipFolder:
    def __init__(self, folder: Path, max_bytes: int):
        self.folder, self.max_bytes = Path(folder), max_bytes
        self.lock = threading.Lock()

    def new_path(self, session: str) -> Path:
        """Where the session's new zip goes; its previous zip is removed first. The name is new each time."""
        with self.lock:
            self.folder.mkdir(parents=True, exist_ok=True, mode=0o700)
            mine = "".join(c for c in str(session) if c.isalnum())[:32] or "anonymous"
            for old in self.folder.glob(f"{mine}-*/mrnet-overlays.zip"):
                remove(old)
            folder = self.folder / f"{mine}-{secrets.token_hex(8)}"
            folder.mkdir(mode=0o700)
            return folder / "mrnet-overlays.zip"

    def trim(self, keep: Path) -> None:
        """The oldest zips other than `keep` are removed until all of them fit in `max_bytes`."""
        with self.lock:
            zips = sorted((z for z in self.folder.glob("*/mrnet-overlays.zip") if z != keep), key=modified)
            total = size_of(keep) + sum(size_of(z) for z in zips)
            while zips and total > self.max_bytes:
                oldest = zips.pop(0)
                total -= size_of(oldest)
                remove(oldest)

    def total(self) -> int:
        return sum(size_of(z) for z in self.folder.glob("*/mrnet-overlays.zip"))


def modified(path: Path) -> float:
    try:
        return path.stat().st_mtime
    except OSError:
        return time.time()


def size_of(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError:
        return 0


def remove(path: Path) -> None:
    try:
        path.unlink()
        path.parent.rmdir()
    except OSError:
        pass  # another thread removed it


class SampleAnswers:
    """A sample's analysis and viewer payload, made once per (weights, sample, precision) and served from memory
    after: a sample's result never changes for given weights, and every visitor's first click is one. An answer
    is made again after `max_age_s`, before the viewer's slice files it names are removed (PixelStore: an hour)."""

    def __init__(self, make, max_age_s: float = 1800):
        self.make, self.max_age_s = make, max_age_s  # make(sample_key) -> (analysis, payload)
        self.answers: dict[str, tuple[float, object, dict]] = {}
        self.making: dict[str, threading.Lock] = {}
        self.lock = threading.Lock()

    def get(self, key: str) -> tuple[Analysis, dict]:
        with self.lock:
            making = self.making.setdefault(key, threading.Lock())
        with making:  # one visitor makes it; the others asking meanwhile wait for that one
            found = self.answers.get(key)
            if found is None or time.time() - found[0] > self.max_age_s:
                analysis, payload = self.make(key)
                found = self.answers[key] = (time.time(), analysis, payload)
        return found[1], found[2]  # type: ignore[return-value]

    def warm(self, key: str) -> threading.Thread:
        """Make one answer in the background (the default sample at start: the app serves meanwhile)."""
        thread = threading.Thread(target=self.get, args=(key,), daemon=True, name=f"mrnet-warm-{key}")
        thread.start()
        return thread
