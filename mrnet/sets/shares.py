"""Shared uploads: a visitor who asks to share their exam gets a view link and a stop-sharing link; the server keeps
the exam's pixels (the planes as the app read them: no file names, no DICOM header text) until sharing is stopped
or `days` have passed, within `max_mb` for all shares together.

A link carries a token: a public id (16 hex characters, the shared exam's stable id) and a secret (128 bits from
`secrets`). SQLite keeps only the secrets' SHA-256, so the database alone opens nothing. A stopped or expired share
is deleted (its row and its file), so a wrong guess, a stopped link and an expired one take the same path and get
the same sentence. Tokens are never written to a log.
"""
from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import sqlite3
import threading
import time
import zipfile
from collections.abc import Callable
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from mrnet.core.config import PLANES
from mrnet.core.errors import MRNetError
from mrnet.core.exam import Exam
from mrnet.sets.limits import RateLimit

DAY = 86400
PUBLIC = 16                     # hex characters of the public id
TOKEN = re.compile(r"[0-9a-f]{16}[A-Za-z0-9_-]{22}")  # public id + secrets.token_urlsafe(16)
UNAVAILABLE = ("This shared exam is not available: the link is mistyped, or its sharing was stopped or has "
               "expired.")
SCHEMA = """CREATE TABLE IF NOT EXISTS shares (
    public TEXT PRIMARY KEY, secret_sha256 TEXT NOT NULL, stop_sha256 TEXT NOT NULL,
    created REAL NOT NULL, expires REAL NOT NULL, bytes INTEGER NOT NULL, weights TEXT NOT NULL)"""
SHARES_PER_HOUR_PER_ADDRESS = 20
BUSY_MS = 2000


@dataclass(frozen=True)
class Share:
    public: str         # the shared exam's id: what flags and the page may show
    token: str          # the view link's token (public id + secret)
    stop_token: str     # the stop-sharing link's token (public id + another secret)
    expires: float      # seconds since the epoch


@dataclass(frozen=True)
class Shared:
    public: str
    exam: Exam
    weights: str        # the digest of the weights the exam was shared with
    expires: float


def digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


class ShareStore:
    """Shares in `folder`: `shares.sqlite` and one `.npz` of uint8 planes per share (written without pickle, read
    with allow_pickle=False). `clock` is the time (a test moves it instead of sleeping)."""

    def __init__(self, folder: str | Path, days: float = 7, max_mb: int = 2000,
                 clock: Callable[[], float] = time.time, per_hour: int = SHARES_PER_HOUR_PER_ADDRESS):
        self.folder, self.days, self.max_bytes, self.clock = Path(folder), days, max_mb * 2**20, clock
        self.rate = RateLimit(per_hour, 3600, f"At most {per_hour} exams an hour can be shared from one address; "
                              "try again later.", clock=clock)
        self.lock = threading.Lock()                # one share is made at a time: the cap holds
        if self.enabled and self.folder.is_dir():
            try:
                self.purge()  # what expired while the server was down, and a share cut short by a crash
            except MRNetError:
                pass          # each use says that sharing is unavailable

    @property
    def enabled(self) -> bool:
        return self.days > 0

    def connect(self) -> sqlite3.Connection:
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
            db = sqlite3.connect(self.folder / "shares.sqlite", timeout=BUSY_MS / 1000)
            db.execute("PRAGMA journal_mode=WAL")
            with db:
                db.execute(SCHEMA)
        except (OSError, sqlite3.Error):
            raise MRNetError("Sharing is unavailable right now: its storage cannot be opened.") from None
        return db

    def pixels(self, public: str) -> Path:
        return self.folder / f"{public}.npz"

    def expire(self, db: sqlite3.Connection) -> None:
        """Delete expired shares: their rows, then their files."""
        with db:
            gone = [row[0] for row in db.execute("SELECT public FROM shares WHERE expires <= ?", (self.clock(),))]
            db.executemany("DELETE FROM shares WHERE public = ?", [(p,) for p in gone])
        for public in gone:
            self.pixels(public).unlink(missing_ok=True)

    def purge(self) -> None:
        """Delete expired shares, and files no row names (a share cut short by a crash)."""
        with closing(self.connect()) as db:
            self.expire(db)
            live = {row[0] for row in db.execute("SELECT public FROM shares")}
        for path in self.folder.glob("*.npz*"):
            if path.name.split(".")[0] not in live:
                path.unlink(missing_ok=True)

    def create(self, exam: Exam, weights: str, address: str) -> Share:
        """Keep the exam's planes and return its links' tokens; a full store or a busy address is one sentence,
        and nothing is kept then (no live share is ever evicted to make room)."""
        if not self.enabled:
            raise MRNetError("Sharing is turned off on this server.")
        volumes = {p: np.ascontiguousarray(exam.volumes[p], dtype=np.uint8) for p in PLANES if p in exam.volumes}
        if not volumes:
            raise MRNetError("There is no exam to share.")
        size = sum(v.nbytes for v in volumes.values())
        with self.lock:
            self.purge()
            with closing(self.connect()) as db:
                used = db.execute("SELECT COALESCE(SUM(bytes), 0) FROM shares").fetchone()[0]
            if used + size > self.max_bytes:  # refused before the address's count: a full store costs it nothing
                raise MRNetError(f"Sharing is full on this server ({self.max_bytes // 2**20} MB of shared exams); "
                                 "try again when older shares expire.")
            self.rate.check(address)
            public = secrets.token_hex(PUBLIC // 2)
            secret, stop = secrets.token_urlsafe(16), secrets.token_urlsafe(16)
            path, partial = self.pixels(public), self.folder / f"{public}.npz.partial"
            try:
                with partial.open("wb") as fh:
                    np.savez(fh, allow_pickle=False, **volumes)  # type: ignore[arg-type]  # plane names, arrays
                partial.replace(path)
                created = self.clock()
                with closing(self.connect()) as db, db:
                    db.execute("INSERT INTO shares VALUES (?, ?, ?, ?, ?, ?, ?)",
                               (public, digest(secret), digest(stop), created, created + self.days * DAY,
                                path.stat().st_size, weights))
            except (OSError, sqlite3.Error):
                partial.unlink(missing_ok=True)
                path.unlink(missing_ok=True)
                raise MRNetError("The exam could not be shared: the server's disk is full or busy. Try again "
                                 "later.") from None
        return Share(public, public + secret, public + stop, created + self.days * DAY)

    def find(self, token, column: str) -> tuple | None:
        """The live share a token names (its secret checked in constant time), or None. Every token, well formed
        or not, known or not, takes the same steps: one lookup and one comparison."""
        text = token if isinstance(token, str) and TOKEN.fullmatch(token) else "0" * PUBLIC + "-" * 22
        public, secret = text[:PUBLIC], text[PUBLIC:]
        with closing(self.connect()) as db:
            self.expire(db)
            row = db.execute(f"SELECT public, {column}, weights, expires FROM shares WHERE public = ?",
                             (public,)).fetchone()
        expected = row[1] if row else digest("not a share")
        matches = hmac.compare_digest(digest(secret), expected)
        return row if row and matches and text == token else None

    def open(self, token) -> Shared:
        row = self.find(token, "secret_sha256")
        if row is None:
            raise MRNetError(UNAVAILABLE)
        public, _, weights, expires = row
        try:
            with np.load(self.pixels(public), allow_pickle=False) as kept:
                volumes = {p: kept[p] for p in PLANES if p in kept.files}
        except (OSError, ValueError, zipfile.BadZipFile, EOFError):
            raise MRNetError(UNAVAILABLE) from None
        if not volumes or any(v.dtype != np.uint8 or v.ndim != 3 for v in volumes.values()):
            raise MRNetError(UNAVAILABLE)
        # the sharer's file names were never kept: the exam is named by its public id
        return Shared(public, Exam(volumes=volumes, sources={p: f"shared exam {public}" for p in volumes}), weights,
                      expires)

    def stop(self, stop_token) -> str:
        """Delete the share at once (its row, then its pixels); returns its public id."""
        row = self.find(stop_token, "stop_sha256")
        if row is None:
            raise MRNetError(UNAVAILABLE)
        with closing(self.connect()) as db, db:
            db.execute("DELETE FROM shares WHERE public = ?", (row[0],))
        self.pixels(row[0]).unlink(missing_ok=True)
        return row[0]
